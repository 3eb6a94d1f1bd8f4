// Validation shared by raisd --check, start and reload (issue 11, item 8)
// and the "unknown is not off" rule for fencing (DESIGN §4 rule 8):
//  - the one group-name rule raisd, raisctl and the agent use;
//  - BIND key files, hostile ones included (the parser DnsUpdater uses);
//  - dns_name within dns_zone, in its three forms;
//  - DnsUpdater::check, which says whether a fault is this host's (exit 5)
//    or the group's (exit 6);
//  - TrapSender::check (group-wide) apart from resolution (host-local);
//  - stonith-enabled across failed queries, and the FencingMode fed to the
//    Member, two_node included;
//  - quorum.two_node read from a corosync.conf.

#include <cppunit/TestFixture.h>
#include <cppunit/extensions/HelperMacros.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "common/group_name.h"
#include "core/config.h"
#include "daemon/outside/dns_updater.h"
#include "daemon/cluster/fencing_state.h"
#include "daemon/outside/notifier.h"
#include "daemon/outside/trap_sender.h"

using namespace rais;

namespace {

const char* kGoodKey =
    "key \"rais-key\" {\n"
    "\talgorithm hmac-sha256;\n"
    "\tsecret \"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=\";\n"
    "};\n";

// A key file in a fresh temporary directory, removed with the object.
struct TempFile {
    std::string dir, path;
    explicit TempFile(const std::string& text) {
        gchar* d = g_dir_make_tmp("rais-unit-XXXXXX", nullptr);
        CPPUNIT_ASSERT(d);
        dir = d;
        g_free(d);
        path = dir + "/key";
        CPPUNIT_ASSERT(g_file_set_contents(path.c_str(), text.c_str(), static_cast<gssize>(text.size()), nullptr));
    }
    ~TempFile() {
        g_unlink(path.c_str());
        g_rmdir(dir.c_str());
    }
};

}  // namespace

class ValidationTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ValidationTest);
    CPPUNIT_TEST(group_names);
    CPPUNIT_TEST(group_name_in_parse_config);
    CPPUNIT_TEST(key_file_good);
    CPPUNIT_TEST(key_file_bad);
    CPPUNIT_TEST(owner_names);
    CPPUNIT_TEST(dns_check_split);
    CPPUNIT_TEST(trap_check);
    CPPUNIT_TEST(stonith_failed_query_keeps_value);
    CPPUNIT_TEST(stonith_not_installed_is_off);
    CPPUNIT_TEST(fencing_modes);
    CPPUNIT_TEST(corosync_conf);
    CPPUNIT_TEST(notifier_resolves_off_the_caller);
    CPPUNIT_TEST(trap_resolution_cancelled);
    CPPUNIT_TEST_SUITE_END();

public:
    void group_names() {
        for (const char* good : {"web", "a", "web-1", "web_2", "web.example", "A9", "w.", "x..y"})
            CPPUNIT_ASSERT_MESSAGE(good, valid_group_name(good));
        std::string max(64, 'g');
        CPPUNIT_ASSERT(valid_group_name(max));
        for (const char* bad : {"", ".hidden", ".", "..", "a/b", "../x", "a b", "web\n", "wéb", "a:b", "-"})
            CPPUNIT_ASSERT_MESSAGE(std::string("accepted '") + bad + "'",
                                   !valid_group_name(bad) || std::string(bad) == "-");
        CPPUNIT_ASSERT(!valid_group_name(max + "g"));
        CPPUNIT_ASSERT(!valid_group_name(std::string("we\0b", 4)));
    }

    // raisd's parse must apply the same rule (the integrator wires
    // parse_config to valid_group_name).
    void group_name_in_parse_config() {
        GroupConfig c;
        auto e = parse_config({{"addresses", "n1=198.18.0.101/24"}, {"group", ".hidden"}}, &c);
        CPPUNIT_ASSERT_MESSAGE("parse_config accepts group=.hidden, which raisctl refuses", e.has_value());
        CPPUNIT_ASSERT_EQUAL(std::string("group"), e->key);
        e = parse_config({{"addresses", "n1=198.18.0.101/24"}, {"group", "web.1"}}, &c);
        CPPUNIT_ASSERT(!e);
    }

    void key_file_good() {
        std::string err;
        auto k = parse_bind_key(kGoodKey, &err);
        CPPUNIT_ASSERT_MESSAGE(err, k.has_value());
        CPPUNIT_ASSERT_EQUAL(std::string("hmac-sha256"), k->algorithm);
        // Comments of the three kinds, upper-case algorithm, tsig-keygen's layout.
        k = parse_bind_key("# made by tsig-keygen\n// another\n/* multi\nline */ key k.example. "
                           "{ algorithm HMAC-SHA512; secret \"QUJDRA==\"; };",
                           &err);
        CPPUNIT_ASSERT_MESSAGE(err, k.has_value());
        CPPUNIT_ASSERT_EQUAL(std::string("hmac-sha512"), k->algorithm);
    }

    void key_file_bad() {
        struct Case {
            const char* text;
            const char* says;   // part of the error
        } cases[] = {
            {"", "key statement"},
            {"garbage", "key statement"},
            {"key \"k\" { algorithm hmac-sha256; };", "no secret"},
            {"key \"k\" { secret \"QUJDRA==\"; };", "no algorithm"},
            {"key \"k\" { algorithm hmac-sha256; secret \"not base64!\"; };", "base64"},
            {"key \"k\" { algorithm hmac-sha256; secret \"QUJDRA=\"; };", "base64"},
            {"key \"k\" { algorithm hmac-sha256; secret \"\"; };", "secret"},
            {"key \"k\" { algorithm rot13; secret \"QUJDRA==\"; };", "algorithm"},
            {"key \"k\" { algorithm hmac-sha384; secret \"QUJDRA==\"; };", "hmac-sha384"},
            {"key \"k\" { algorithm hmac-sha256; secret \"QUJDRA==\"; }", "';'"},
            {"key \"k\" { algorithm hmac-sha256; secret \"QUJDRA==; };", "unterminated"},
            {"/* never closed", "unterminated"},
            {"key \"k\" { algorithm hmac-sha256; secret \"QUJDRA==\"; }; key \"j\" { };", "second key"},
            {"key \"bad..name\" { algorithm hmac-sha256; secret \"QUJDRA==\"; };", "domain name"},
        };
        for (const auto& c : cases) {
            std::string err;
            auto k = parse_bind_key(c.text, &err);
            CPPUNIT_ASSERT_MESSAGE(std::string("accepted: ") + c.text, !k.has_value());
            CPPUNIT_ASSERT_MESSAGE(std::string(c.text) + " -> " + err, err.find(c.says) != std::string::npos);
        }
        // Hostile sizes: a megabyte of braces or of one word neither crashes nor passes.
        std::string err;
        CPPUNIT_ASSERT(!parse_bind_key(std::string(1 << 20, '{'), &err));
        CPPUNIT_ASSERT(!parse_bind_key("key " + std::string(1 << 20, 'a'), &err));
        CPPUNIT_ASSERT(!parse_bind_key(std::string("key \"k\" {\0 algorithm", 20), &err));
    }

    void owner_names() {
        std::string err;
        CPPUNIT_ASSERT_EQUAL(std::string("web.rais.test."), dns_owner_name("rais.test", "web", &err).value_or(err));
        CPPUNIT_ASSERT_EQUAL(std::string("web.rais.test."), dns_owner_name("rais.test.", "web", &err).value_or(err));
        CPPUNIT_ASSERT_EQUAL(std::string("rais.test."), dns_owner_name("rais.test", "@", &err).value_or(err));
        CPPUNIT_ASSERT_EQUAL(std::string("a.b.rais.test."), dns_owner_name("rais.test", "a.b", &err).value_or(err));
        CPPUNIT_ASSERT_EQUAL(std::string("web.rais.test."),
                             dns_owner_name("rais.test", "web.rais.test.", &err).value_or(err));
        CPPUNIT_ASSERT_EQUAL(std::string("rais.test."), dns_owner_name("rais.test", "rais.test.", &err).value_or(err));

        const std::string long_label(300, 'a');
        struct Bad {
            const char *zone, *name, *says;
        } bad[] = {
            {"rais.test", "web.other.test.", "not within dns_zone"},
            {"rais.test", "test.", "not within dns_zone"},
            {"rais.test", "xrais.test.", "not within dns_zone"},
            {"rais.test", "web.rais.test", "trailing dot"},      // an FQDN without its dot
            {"rais.test", "rais.test", "trailing dot"},
            {"rais.test", "", "dns_name is empty"},
            {"", "web", "dns_zone is empty"},
            {"rais..test", "web", "dns_zone"},
            {"rais.test", "a..b", "not a domain name"},
            {"rais.test", long_label.c_str(), "not a domain name"},
        };
        for (const auto& b : bad) {
            err.clear();
            auto o = dns_owner_name(b.zone, b.name, &err);
            CPPUNIT_ASSERT_MESSAGE(std::string("accepted ") + b.name + " in " + b.zone + ": " + o.value_or(""),
                                   !o.has_value());
            CPPUNIT_ASSERT_MESSAGE(err, err.find(b.says) != std::string::npos);
        }
    }

    void dns_check_split() {
        DnsTarget t{"127.0.0.1:53", "rais.test", "web", 30, ""};
        CPPUNIT_ASSERT(!DnsUpdater::check(t));
        t.name = "web.other.test.";
        auto c = DnsUpdater::check(t);
        CPPUNIT_ASSERT(c);
        CPPUNIT_ASSERT_EQUAL(std::string("dns_name"), c->key);
        CPPUNIT_ASSERT(!c->host_local);
        t.name = "web";
        t.server = "not-an-address";
        c = DnsUpdater::check(t);
        CPPUNIT_ASSERT(c);
        CPPUNIT_ASSERT_EQUAL(std::string("dns_server"), c->key);
        CPPUNIT_ASSERT(!c->host_local);
        t.server = "127.0.0.1";
        t.zone = "";
        c = DnsUpdater::check(t);
        CPPUNIT_ASSERT(c);
        CPPUNIT_ASSERT_EQUAL(std::string("dns_zone"), c->key);
        t.zone = "rais.test";
        t.key_file = "/nonexistent/rais.key";
        c = DnsUpdater::check(t);
        CPPUNIT_ASSERT(c);
        CPPUNIT_ASSERT_EQUAL(std::string("dns_key"), c->key);
        CPPUNIT_ASSERT(c->host_local);
        {
            TempFile bad("key \"k\" { algorithm hmac-sha256; secret \"%%%\"; };");
            t.key_file = bad.path;
            c = DnsUpdater::check(t);
            CPPUNIT_ASSERT(c);
            CPPUNIT_ASSERT_EQUAL(std::string("dns_key"), c->key);
            CPPUNIT_ASSERT(c->host_local);
            CPPUNIT_ASSERT_MESSAGE(c->message, c->message.find(bad.path) != std::string::npos);
        }
        {
            TempFile good(kGoodKey);
            t.key_file = good.path;
            c = DnsUpdater::check(t);
            CPPUNIT_ASSERT_MESSAGE(c ? c->message : "", !c);
            std::string err;
            CPPUNIT_ASSERT(DnsUpdater::create(t, &err));
        }
    }

    void trap_check() {
        CPPUNIT_ASSERT(!TrapSender::check({"127.0.0.1", "[::1]:1162", "trap.example:162"}, "public"));
        auto e = TrapSender::check({"127.0.0.1"}, "");
        CPPUNIT_ASSERT(e && e->find("community") != std::string::npos);
        CPPUNIT_ASSERT(TrapSender::check({}, "public"));
        CPPUNIT_ASSERT(TrapSender::check({"host:"}, "public"));
        CPPUNIT_ASSERT(TrapSender::check({"host:99999"}, "public"));
        CPPUNIT_ASSERT(TrapSender::check({"[::1"}, "public"));
        // check() never resolves: a name that cannot resolve is well formed.
        CPPUNIT_ASSERT(!TrapSender::check({"no-such-host.invalid"}, "public"));
        std::vector<std::string> peers;
        std::string err;
        CPPUNIT_ASSERT(!TrapSender::resolve_targets({"no-such-host.invalid"}, &peers, &err));
        CPPUNIT_ASSERT_MESSAGE(err, err.find("no-such-host.invalid") != std::string::npos);
        CPPUNIT_ASSERT(TrapSender::resolve_targets({"127.0.0.1:1162", "[::1]"}, &peers, &err));
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), peers.size());
        CPPUNIT_ASSERT_EQUAL(std::string("udp:127.0.0.1:1162"), peers[0]);
        CPPUNIT_ASSERT_EQUAL(std::string("udp6:[::1]:162"), peers[1]);
        // open() refuses names: it must never resolve.
        auto s = TrapSender::open({"localhost"}, {"localhost"}, "public", [](LogLevel, const std::string&) {}, &err);
        CPPUNIT_ASSERT(!s);
    }

    // The finding: one failed crm_attribute query read as "stonith disabled".
    void stonith_failed_query_keeps_value() {
        StonithState s;
        CPPUNIT_ASSERT(!s.enabled);
        // No answer yet: unknown, which fencing=auto counts as on.
        s = next_stonith_state(s, StonithAnswer::Failed, false, "Pacemaker does not answer");
        CPPUNIT_ASSERT(!s.enabled);
        CPPUNIT_ASSERT(fencing_mode(Fencing::Auto, s, false).active);
        s = next_stonith_state(s, StonithAnswer::Value, true, "the cluster's stonith-enabled is true");
        CPPUNIT_ASSERT(s.enabled && *s.enabled);
        for (int i = 0; i < 5; i++) {
            s = next_stonith_state(s, StonithAnswer::Failed, false, "crm_attribute: exit status 102");
            CPPUNIT_ASSERT(s.enabled && *s.enabled);
            CPPUNIT_ASSERT(fencing_mode(Fencing::Auto, s, false).active);
            CPPUNIT_ASSERT_MESSAGE(s.detail, s.detail.find("keeping the last answer") != std::string::npos);
        }
        // A real "false" is honoured, and kept across failures too.
        s = next_stonith_state(s, StonithAnswer::Value, false, "the cluster's stonith-enabled is false");
        CPPUNIT_ASSERT(!fencing_mode(Fencing::Auto, s, false).active);
        s = next_stonith_state(s, StonithAnswer::Failed, true, "timeout");
        CPPUNIT_ASSERT(s.enabled && !*s.enabled);
    }

    void stonith_not_installed_is_off() {
        StonithState s;
        s = next_stonith_state(s, StonithAnswer::NotInstalled, true, "Pacemaker is not installed");
        CPPUNIT_ASSERT(s.enabled && !*s.enabled);
        auto m = fencing_mode(Fencing::Auto, s, false);
        CPPUNIT_ASSERT(!m.active);
        CPPUNIT_ASSERT_MESSAGE(m.why, m.why.find("not installed") != std::string::npos);
    }

    void fencing_modes() {
        StonithState off;
        off.enabled = false;
        off.detail = "the cluster's stonith-enabled is false";
        StonithState unknown;
        CPPUNIT_ASSERT(fencing_mode(Fencing::Require, off, false).active);
        CPPUNIT_ASSERT(!fencing_mode(Fencing::Off, unknown, false).active);
        CPPUNIT_ASSERT(fencing_mode(Fencing::Auto, unknown, false).active);
        // two_node passes through; unknown counts as set.
        CPPUNIT_ASSERT(fencing_mode(Fencing::Auto, off, true).two_node);
        CPPUNIT_ASSERT(!fencing_mode(Fencing::Auto, off, false).two_node);
        auto m = fencing_mode(Fencing::Auto, off, std::nullopt);
        CPPUNIT_ASSERT(m.two_node);
        CPPUNIT_ASSERT(!m.active);
        CPPUNIT_ASSERT_MESSAGE(m.why, m.why.find("two_node") != std::string::npos);
        m = fencing_mode(Fencing::Auto, off, true);
        CPPUNIT_ASSERT_MESSAGE(m.why, m.why.find("two_node") != std::string::npos);
    }

    void corosync_conf() {
        const char* two =
            "totem {\n  version: 2\n  cluster_name: c\n}\n"
            "nodelist {\n  node {\n    nodeid: 1\n    two_node: 0\n  }\n}\n"
            "quorum {\n    provider: corosync_votequorum\n    # two_node: 0\n    two_node: 1\n}\n";
        CPPUNIT_ASSERT(corosync_conf_two_node(two).value_or(false));
        const char* plain = "quorum {\n provider: corosync_votequorum\n}\n";
        CPPUNIT_ASSERT(!corosync_conf_two_node(plain).value_or(true));
        CPPUNIT_ASSERT(!corosync_conf_two_node("quorum {\n two_node: 0\n}\n").value_or(true));
        // Elsewhere than the top-level quorum section it means nothing.
        CPPUNIT_ASSERT(!corosync_conf_two_node("totem {\n quorum {\n two_node: 1\n }\n}\n").value_or(true));
        // Unbalanced: not readable, so unknown.
        CPPUNIT_ASSERT(!corosync_conf_two_node("quorum {\n two_node: 1\n"));
        CPPUNIT_ASSERT(!corosync_conf_two_node("}\n"));
    }

    // Notifier::create never resolves on the caller's thread: a trap raised
    // at once waits for the worker and is then sent.
    void notifier_resolves_off_the_caller() {
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        CPPUNIT_ASSERT(fd >= 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CPPUNIT_ASSERT(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
        socklen_t len = sizeof sa;
        CPPUNIT_ASSERT(getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
        // Numeric, so the test does not depend on how localhost resolves here;
        // it still goes through the worker (no peers given).
        std::string target = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));

        Notifier::Options o;
        o.group = "web";
        o.node = "n1";
        o.alerts = false;
        o.snmp_traps = {target};
        std::string err;
        std::vector<std::string> logs;
        auto n = Notifier::create(o, [&](LogLevel, const std::string& t) { logs.push_back(t); }, &err);
        CPPUNIT_ASSERT_MESSAGE(err, n);
        Event e;
        e.kind = EventKind::Leader;
        e.group = "web";
        e.node = "n1";
        e.reason = "test";
        n->notify(e, g_get_real_time());
        char buf[2048];
        ssize_t got = -1;
        gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
        while (got < 0 && g_get_monotonic_time() < deadline) {
            g_main_context_iteration(nullptr, FALSE);
            got = recv(fd, buf, sizeof buf, 0);
            if (got < 0) g_usleep(1000);
        }
        close(fd);
        CPPUNIT_ASSERT_MESSAGE("no trap arrived once the worker resolved " + target, got > 0);

        // The group-wide SNMP faults still fail create() at once, naming the parameter.
        o.snmp_community = "";
        CPPUNIT_ASSERT(!Notifier::create(o, [](LogLevel, const std::string&) {}, &err));
        CPPUNIT_ASSERT_MESSAGE(err, err.find("snmp_community") != std::string::npos);
        // A name that does not resolve is this host's fault, found off the
        // caller's thread: create() succeeds and the worker's failure is logged.
        o.snmp_community = "public";
        o.snmp_traps = {"no-such-host.invalid"};
        logs.clear();
        n = Notifier::create(o, [&](LogLevel, const std::string& t) { logs.push_back(t); }, &err);
        CPPUNIT_ASSERT(n);
        deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
        auto said = [&] {
            for (const auto& l : logs)
                if (l.find("no-such-host.invalid") != std::string::npos) return true;
            return false;
        };
        while (!said() && g_get_monotonic_time() < deadline) g_main_context_iteration(nullptr, TRUE);
        CPPUNIT_ASSERT_MESSAGE("the failed resolution was not logged", said());
    }

    void trap_resolution_cancelled() {
        bool ran = false;
        auto r = TrapResolution::start({"127.0.0.1"}, [&](bool, const std::vector<std::string>&, const std::string&) {
            ran = true;
        });
        r.reset();
        gint64 deadline = g_get_monotonic_time() + G_USEC_PER_SEC / 2;
        while (g_get_monotonic_time() < deadline) {
            g_main_context_iteration(nullptr, FALSE);
            g_usleep(1000);
        }
        CPPUNIT_ASSERT_MESSAGE("done ran after its handle was destroyed", !ran);
        // And one left alone completes with the numeric peer.
        std::vector<std::string> peers;
        r = TrapResolution::start({"127.0.0.1:1162"}, [&](bool ok, const std::vector<std::string>& p, const std::string&) {
            ran = ok;
            peers = p;
        });
        deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
        while (!ran && g_get_monotonic_time() < deadline) {
            g_main_context_iteration(nullptr, FALSE);
            g_usleep(1000);
        }
        CPPUNIT_ASSERT(ran);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), peers.size());
        CPPUNIT_ASSERT_EQUAL(std::string("udp:127.0.0.1:1162"), peers[0]);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ValidationTest);
