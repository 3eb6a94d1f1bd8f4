// DnsUpdater: the writing half of the patent's DNS thread (Fig. 6C). It reads
// and replaces the A and AAAA records of one owner name (`dns_name` in
// `dns_zone`, DESIGN §5.1, §5.4) at one DNS server with RFC 2136 dynamic
// updates, signed with TSIG (RFC 8945) when a `dns_key` is given, using ldns.
// The DNS plan in the core decides which addresses to publish; this module
// only talks to the server.
//
// Invariants:
// - One update replaces both RRsets as a whole, guarded by prerequisites on
//   what the caller believes is there (RFC 2136 §2.4.2 "RRset exists (value
//   dependent)" for a non-empty family, §2.4.3 "RRset does not exist" for an
//   empty one). So a lost or stale update never leaves a mixed zone: either
//   the server held exactly `expected` and now holds exactly `addresses`, or
//   nothing changed and the result says so (Outcome::Prerequisite, with the
//   server's current set read afresh in `published`).
// - ldns blocks: every operation runs in a GTask worker thread, bounded by a
//   2 s budget per exchange with the server (1 s per try, one retry over
//   UDP; TCP when the answer is truncated). The worker owns copies of
//   everything it uses; nothing of the updater is touched off the caller's
//   thread.
// - `done` runs on the thread-default main context of the thread that called
//   read() or replace() (the creator's: call them from that thread), exactly
//   once per call, never synchronously from inside read()/replace(), and
//   never after the DnsUpdater is destroyed (destroying it from inside
//   `done` is allowed).
// - When a key is set, every request is signed and every answer's TSIG is
//   verified; an answer whose signature does not verify is never taken as
//   success. A server's TSIG error (BADSIG, BADKEY, BADTIME...) is named in
//   the detail.
// - Every ldns object is owned by a smart pointer; no exceptions leave the
//   module.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "daemon/outside/tsig_key.h"   // TsigKey, parse_bind_key: the key files DnsTarget::key_file names

namespace rais {

struct DnsTarget {
    std::string server;        // "ADDRESS[:PORT]": IPv4, [IPv6]:PORT or a bare IPv6 address; port 53 by default
    std::string zone, name;    // zone apex; owner name relative to the zone ("@" = the apex), or absolute with a trailing dot
    unsigned ttl = 30;         // of the records added (0 .. 2^31-1)
    std::string key_file;      // BIND key file (key "NAME" { algorithm hmac-sha256; secret "..."; };), empty = unsigned
};

// The absolute owner name ("web.rais.test.") of dns_name within dns_zone
// (DESIGN §5.1): "@" is the zone's apex; a name with a trailing dot is
// absolute and must lie within the zone; any other name is relative to the
// zone, except one that already ends in the zone's name without the
// trailing dot ("web.rais.test" in rais.test), refused as ambiguous. On
// error returns nullopt and *error names the parameter and the value.
std::optional<std::string> dns_owner_name(const std::string& zone, const std::string& name, std::string* error);

// Why a DNS target cannot be used: the parameter (dns_server, dns_zone,
// dns_name, dns_ttl, dns_key), a message naming it, and whether the fault is
// this host's own (the key file: unreadable or malformed here) rather than
// the group-wide values'.
struct DnsCheck {
    std::string key, message;
    bool host_local = false;
};

enum class DnsOutcome {
    Ok,             // done; published is the server's set
    Prerequisite,   // the server's RRsets were not `expected` (NXRRSET/YXRRSET): nothing changed
    Rejected,       // the server answered an error (REFUSED, NOTAUTH, SERVFAIL, ...): nothing changed
    NoAnswer,       // timeout, connection refused, network error: the update may or may not have been applied
    BadAnswer,      // an answer that cannot be trusted (TSIG did not verify, wrong id, not authoritative)
    Invalid,        // a caller error (bad address, an operation already running): nothing was sent
};

struct DnsResult {
    bool ok = false;
    DnsOutcome outcome = DnsOutcome::Invalid;
    // One line for logs and events, e.g. "NOERROR", "server answered NOTAUTH (TSIG BADSIG)",
    // "timeout after 2 s: no answer from 127.0.0.1:15353 ...", "prerequisite failed (NXRRSET): ..."
    std::string detail;
    std::set<std::string> published;   // the A and AAAA addresses now at the server, canonical text (inet_ntop)
    bool published_known = false;      // published is the server's set (after a read, a successful update, or a
                                       // failed prerequisite followed by a successful read)
};

class DnsUpdater {
public:
    using Done = std::function<void(const DnsResult&)>;

    // Validates the target and reads and checks the key file. Returns nullptr
    // and sets *error naming the parameter or file and the problem.
    static std::unique_ptr<DnsUpdater> create(const DnsTarget& t, std::string* error);
    // What create() checks (the same code), keeping nothing: nullopt when
    // create() would succeed. Reads the key file; sends nothing.
    static std::optional<DnsCheck> check(const DnsTarget& t);
    ~DnsUpdater();   // cancels: a pending Done never runs after destruction
    DnsUpdater(const DnsUpdater&) = delete;
    DnsUpdater& operator=(const DnsUpdater&) = delete;

    // Reads the current A and AAAA RRsets of the name from the server (two
    // queries, TSIG-signed when a key is set, answers verified and required
    // to be authoritative). NXDOMAIN or no data is an empty set. Async.
    void read(Done done);
    // Replaces the A and AAAA RRsets of the name with `addresses` (IPv4 -> A,
    // IPv6 -> AAAA; "198.18.0.101", "2001:2::1") as one RFC 2136 update:
    // prerequisites that the RRsets are exactly `expected`, then delete both
    // RRsets and add the new records with the TTL. On a prerequisite failure
    // the outcome is Prerequisite and `published` holds a fresh read (when it
    // worked), so the caller retries with the truth. Async.
    void replace(const std::set<std::string>& expected, const std::set<std::string>& addresses, Done done);
    // An operation is running (one at a time: a call while busy fails with
    // Outcome::Invalid, through `done`).
    bool busy() const;

    // "web.rais.test." — the owner name as sent; "127.0.0.1:15353" — the server.
    const std::string& owner() const;
    const std::string& server() const;

    struct Impl;
    explicit DnsUpdater(std::shared_ptr<Impl> impl);   // use create()

private:
    std::shared_ptr<Impl> impl_;
};

// Canonical text of an IPv4 or IPv6 address ("2001:02::01" -> "2001:2::1");
// nullopt when `text` is not one.
std::optional<std::string> canonical_address(const std::string& text);

}  // namespace rais
