// trap-test: sends one SNMP trap of every rais event kind through TrapSender,
// with fixed fields, to check a receiver (snmptrapd) by hand or in the
// cluster tests.
//
//   trap-test [--community C] HOST[:PORT]...
//   trap-test --list      prints "NAME OID" for every notification and object
//                         of RAIS-MIB as the code sends them (tests/mib/check-mib
//                         compares them with the MIB)
//
// It prints "KIND OID" for each trap it sends. Fields: group "web", node
// "h1" (empty for cannot_assign), address "198.18.0.101/24" (empty for the
// kinds that concern no address), reason "trap-test KIND" (for dns_failed a
// 300-octet reason of 'é's, which must arrive cut to 254 octets: 127 whole
// characters), time 2023-11-14 22:13:20.123 UTC (DateAndTime
// 07 E7 0B 0E 16 0D 14 01 2B 00 00). TrapSender's log goes to stderr.
// Exit status: 0 when all traps were handed to the kernel, 1 when anything
// was logged as a warning or error, 2 on usage errors or a bad target.
#include <cstdio>
#include <string>
#include <vector>

#include "daemon/outside/trap_sender.h"

int main(int argc, char** argv) {
    std::string community = "public";
    std::vector<std::string> targets;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--list") {
            for (const auto& [name, oid] : rais::trap_mib_oids()) std::printf("%s %s\n", name.c_str(), oid.c_str());
            return 0;
        }
        if (a == "--community" && i + 1 < argc)
            community = argv[++i];
        else if (!a.empty() && a[0] == '-') {
            std::fprintf(stderr, "usage: trap-test [--community C] HOST[:PORT]... | trap-test --list\n");
            return 2;
        } else
            targets.push_back(a);
    }
    if (targets.empty()) {
        std::fprintf(stderr, "usage: trap-test [--community C] HOST[:PORT]... | trap-test --list\n");
        return 2;
    }

    bool trouble = false;
    auto log = [&trouble](rais::LogLevel level, const std::string& text) {
        static const char* const names[] = {"debug", "info", "notice", "warning", "error"};
        std::fprintf(stderr, "trap-test: %s: %s\n", names[static_cast<int>(level)], text.c_str());
        if (level >= rais::LogLevel::Warning) trouble = true;
    };
    std::string error;
    auto sender = rais::TrapSender::create(targets, community, log, &error);
    if (!sender) {
        std::fprintf(stderr, "trap-test: %s\n", error.c_str());
        return 2;
    }

    const char* kinds[] = {"acquire",        "release",       "acquire_failed", "release_failed",
                           "test_failed",    "test_recovered", "cannot_assign", "orphaned",
                           "expired",        "leader",         "dns_update",    "dns_failed"};
    for (const char* kind : kinds) {
        std::string k = kind;
        rais::TrapEvent e;
        e.kind = k;
        e.group = "web";
        bool no_address = k == "test_failed" || k == "test_recovered" || k == "leader" || k == "dns_update" ||
                          k == "dns_failed";
        e.node = k == "cannot_assign" ? "" : "h1";
        e.address = no_address ? "" : "198.18.0.101/24";
        if (k == "dns_failed") {
            for (int i = 0; i < 150; ++i) e.reason += "\xc3\xa9";   // U+00E9, 2 octets each
        } else {
            e.reason = "trap-test " + k;
        }
        e.unix_ms = 1700000000123;
        sender->send(e);
        std::printf("%s %s\n", kind, rais::trap_oid_for(k).c_str());
    }
    sender.reset();   // closes the sessions; the datagrams left with each send
    return trouble ? 1 : 0;
}
