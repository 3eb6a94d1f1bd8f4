// DnsExchange: the shell's half of the leader's DNS records (DESIGN §5.4),
// between the Member (which decides what to publish: out::DnsPublish) and
// the DnsUpdater (which talks to the server). It holds what the plan wants,
// what the server is known to hold, the one exchange in flight and the retry
// timer, and hands every outcome back to the Member as an in::DnsResult.
//
// Invariants:
// - Only while `leading()` holds does anything go to the server, and then
//   one exchange at a time. A host that stops leading forgets both sets
//   (follow()), so a new leadership reads the zone before it writes.
// - An update is always guarded by the set last read or confirmed: after
//   any failure that set is forgotten and read again before the next update.
// - A failed exchange is retried 1 s later; a failed prerequisite (the zone
//   was not what we believed) is retried at once from the fresh read, at
//   most three times in a row.
// - `result` may call back into publish() and follow() (the Member answers
//   an outcome with new effects); it never runs after destruction.
#pragma once

#include <glib.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "core/config.h"
#include "core/member.h"
#include "daemon/outside/dns_updater.h"

namespace rais {

class DnsExchange {
public:
    struct Callbacks {
        std::function<bool()> leading;                      // this host leads now
        std::function<void(const in::DnsResult&)> result;   // to the Member
    };
    // The last exchange's outcome: "read: ok (NOERROR)", "update: FAILED (...)".
    struct Outcome {
        std::int64_t wall_us = 0;
        std::string text;
    };

    // `running` is the daemon's configuration, read at each use (it outlives
    // the exchange and changes in place on a reload).
    DnsExchange(const GroupConfig& running, Callbacks cb);
    ~DnsExchange();
    DnsExchange(const DnsExchange&) = delete;
    DnsExchange& operator=(const DnsExchange&) = delete;

    // (Re)targets the configured server (none when dns_server is empty),
    // dropping any exchange in flight and what was known of the old server;
    // the last outcome stays for status. False and *error ("DNS: ...") when
    // the target is unusable: then no updates are sent.
    bool configure(std::string* error);
    // out::DnsPublish: the addresses the records should hold now.
    void publish(const std::set<ServiceAddress>& wanted);
    // This host does not lead (any more).
    void follow();

    const std::optional<Outcome>& last() const { return last_; }

private:
    void pump();
    void retry_later();
    void done(bool read, const DnsResult& r);

    const GroupConfig& cfg_;
    Callbacks cb_;
    std::unique_ptr<DnsUpdater> updater_;
    std::optional<std::set<ServiceAddress>> wanted_;
    std::optional<std::set<std::string>> server_set_; // unknown until read
    guint retry_ = 0;
    unsigned prereq_failures_ = 0;
    std::optional<Outcome> last_;
};

}  // namespace rais
