// TrapSender: sends each rais event (DESIGN §5.3) as an SNMPv2c trap to the
// receivers of `snmp_traps`, with the net-snmp library and numeric OIDs, so
// nothing depends on MIB files being installed. mib/RAIS-MIB.txt defines the
// notifications and objects; the OIDs here must match it.
//
// Invariants: one net-snmp session (one UDP socket) per target, opened by
// create() and closed by the destructor; send() never blocks (non-blocking
// UDP, no name resolution after create()), never throws, and reports each
// kind of failure once per target until that target works again. net-snmp
// is initialised once per process without reading any configuration, MIB or
// persistent file, and its own messages reach our Log, never stderr.
// SNMPv3 is not supported (v2c only).
#pragma once

#include "core/log_level.h"
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace rais {

// One rais event as the trap carries it.
struct TrapEvent {
    std::string kind;         // "acquire", "release", "acquire_failed", "release_failed", "test_failed",
                              // "test_recovered", "cannot_assign", "orphaned", "expired", "leader",
                              // "dns_update", "dns_failed" (DESIGN §5.3)
    std::string group, node, address, reason;   // node and address may be empty
    std::int64_t unix_ms = 0; // wall-clock time of the event
};

// The numeric OIDs of RAIS-MIB, for tests and documentation.
// Notification of an event kind, e.g. "1.3.6.1.4.1.8072.9999.9999.7247.0.1"
// for "acquire"; empty for an unknown kind.
std::string trap_oid_for(const std::string& kind);
// Every notification and object of RAIS-MIB as the code sends it: (name in
// the MIB, numeric OID), objects without their ".0" instance. `make check`
// compares them with the MIB.
std::vector<std::pair<std::string, std::string>> trap_mib_oids();

class TrapSender {
public:
    // level: 0 debug, 1 info, 2 notice, 3 warning, 4 error
    using Log = std::function<void(LogLevel level, const std::string& text)>;

    // targets: "HOST[:PORT]": IPv4 address, host name, "[IPv6]:PORT", or an
    // IPv6 address without port; the port defaults to 162. Host names are
    // resolved here, once (a name that resolves slowly delays the caller).
    // Returns nullptr and sets *error naming the bad target when one cannot
    // be parsed, resolved or opened, or when the community is empty.
    static std::unique_ptr<TrapSender> create(const std::vector<std::string>& targets,
                                              const std::string& community, Log log, std::string* error);
    // The group-wide half of create()'s checks, without resolving: at least
    // one target, each "HOST[:PORT]" well formed, the community not empty.
    // nullopt when valid, else the reason naming the bad target.
    static std::optional<std::string> check(const std::vector<std::string>& targets, const std::string& community);
    // Resolves every target to net-snmp's numeric transport specifier
    // ("udp:192.0.2.1:162", "udp6:[2001:db8::1]:162"), in order. Blocks on
    // name resolution: call it from --check, before the main loop runs, or
    // from a worker thread (thread-safe). false and *error naming the target
    // when one does not resolve.
    static bool resolve_targets(const std::vector<std::string>& targets, std::vector<std::string>* peers,
                                std::string* error);
    // create() with the targets already resolved (peers as resolve_targets()
    // gives them, one per target): never resolves, never blocks.
    static std::unique_ptr<TrapSender> open(const std::vector<std::string>& targets,
                                            const std::vector<std::string>& peers, const std::string& community,
                                            Log log, std::string* error);
    ~TrapSender();
    TrapSender(const TrapSender&) = delete;
    TrapSender& operator=(const TrapSender&) = delete;

    // Sends one trap to every target. An unknown kind is logged and skipped.
    void send(const TrapEvent& e) noexcept;

    struct Impl;
    explicit TrapSender(std::unique_ptr<Impl> impl);  // use create()

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace rais
