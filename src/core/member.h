// Member: one host's protocol state machine for one service group.
//
// step(now, input) -> effects. Inputs are everything the shell observes (CPG
// membership and messages, quorum, ticks, fence confirmations, test results,
// load samples, outcomes of address actions, operator commands); effects are
// everything the shell must do (multicast, plumb, unplumb, refresh lifetimes,
// emit events, log, persist the quiesce flag, reply to a command, exit). The
// Member does no I/O, reads no clock (time comes with every step) and draws
// random choices only from the seeded source it was given. Its vocabulary
// (inputs, effects, events) is member_io.h; it keeps who is in the group in
// a PeerTable and, while leading, the DNS zone's state in a DnsLeader.
//
// Invariants it keeps (DESIGN §3, §4):
//  - only the leader (lowest node id among counted, non-silent members) plans,
//    and only when quorate for the current ring and holding a fresh Info from
//    every counted member (or 3 x interval after the membership change);
//  - Acquire/Release are obeyed only from the leader of the current view,
//    repeats are ignored, and a host that is not OK, quiesced or stopping
//    acquires nothing;
//  - loss of quorum releases every address at once; with quorum unknown for
//    the current ring nothing is acquired (acquires wait) and nothing planned;
//  - a departed member's addresses stay held (unassignable) for
//    restart_grace after "process down" or silence, and until fencing is
//    confirmed after "node down" when fencing is active;
//  - every decision carries a reason, which reaches the log and the events.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/codec.h"
#include "core/config.h"
#include "core/dns_leader.h"
#include "core/member_io.h"
#include "core/model.h"
#include "core/peer_table.h"
#include "core/random.h"

namespace rais {

struct MemberSetup {
    GroupConfig config;
    Process self;
    std::string name;                       // this node's cluster name
    bool fencing_active = false;            // fencing=require, or auto with stonith-enabled
    bool quiesced = false;                  // persisted across restarts
    std::vector<ServiceAddress> found;      // group addresses already on our interfaces at start
    std::vector<ServiceAddress> fixed;      // of those, the permanent ones (the administrator's)
    std::uint64_t seed = 1;
};

struct MemberStatus {
    std::string group, name;
    Process self;
    std::uint32_t leader = 0;               // node id, 0 = none
    std::string leader_name;
    bool quorate = false, quorum_known = false, ready = false;
    // In the group, quorate, a leader known, nothing held in transition, and
    // the plan of the current view leaves nothing to do for this host: what
    // the agent's start waits for.
    bool settled = false;
    bool fencing_active = false;
    double load = 0, capacity = 100;        // this host's last sample
    std::uint64_t ring = 0;
    bool ok = true, quiesced = false, stopping = false;
    std::string failing_test;                // the last failing health test's report, while not ok
    std::map<ServiceAddress, AddressState> held;
    std::vector<PeerStatus> peers;
    std::map<ServiceAddress, double> orphans;        // since, local clock
    std::map<ServiceAddress, std::string> pins;      // node name
    std::set<ServiceAddress> cannot_assign;
    std::uint64_t dropped_messages = 0;
    std::uint64_t unsent_messages = 0;       // not sent: peers would have dropped them (a bug)
    std::set<ServiceAddress> fixed;          // held statically, the administrator's (rule 4.10)
    // Every group address some counted member holds statically, and where:
    // the view leaves them out of the plan, so status shows them from here.
    std::map<ServiceAddress, std::string> fixed_holders;
    bool two_node = false;                   // corosync two_node: departures wait for a fence
    // DNS (leader only): what the plan wants, and why it last changed.
    bool dns = false;
    std::set<ServiceAddress> dns_wanted;
    std::vector<std::string> dns_changes;
};

class Member {
public:
    explicit Member(MemberSetup setup);

    // Must be the first call: reports leftover addresses, sends nothing yet
    // (the first Membership triggers the first Info).
    Effects start(double now);
    Effects step(double now, const Input& input);

    // The latest time by which the shell must deliver a Tick. Never at or
    // before the last Tick: a deadline a Tick did not clear is looked at
    // again a millisecond later, never in a busy loop.
    double next_wake() const;
    // True when a deadline is still due right after a Tick (a bug the
    // simulator reports; next_wake() keeps the shell safe from it).
    bool wake_overdue() const;

    MemberStatus status(double now) const;
    // The view the leader plans from (hosts = counted members and departed ones).
    View view(double now) const;

    const Process& self() const { return self_; }
    const std::string& name() const { return name_; }
    bool is_leader() const;
    const std::map<ServiceAddress, AddressState>& held() const { return held_; }
    const GroupConfig& config() const { return cfg_; }
    bool quiesced() const { return quiesced_; }
    double utilization() const { return load_ * 100.0 / (capacity_ > 0 ? capacity_ : 100.0); }

private:
    using Peer = PeerTable::Peer;

    // input handlers
    void on_membership(double now, const in::Membership& m);
    void on_quorum(double now, const in::Quorum& q);
    void on_delivered(double now, const in::Delivered& d);
    void on_tick(double now);
    void on_info(double now, Peer& p, const InfoMsg& m);
    void on_acquire(double now, const Process& from, const AcquireMsg& m);
    void on_release(double now, const Process& from, const ReleaseMsg& m);
    void on_request(double now, const Process& from, const RequestMsg& m);
    bool from_leader(const Process& from, std::uint32_t claimed, const char* what, const ServiceAddress& a);
    void on_action_done(double now, const in::ActionDone& d);
    void on_test(double now, const in::TestResult& t);
    void on_command(double now, const in::Command& c);
    bool settled(double now) const;

    // local actions
    void send(Message m, std::string what);
    void send_info(double now);
    void do_acquire(double now, const ServiceAddress& a, bool handover, const std::string& why);
    void release_local(double now, const ServiceAddress& a, const std::string& why);
    void release_all(double now, const std::string& why);
    void emit(double now, EventKind k, const std::string& node, std::optional<ServiceAddress> a, std::string why);
    void log(LogLevel l, std::string text);
    void maybe_plan(double now);
    void maybe_exit();
    void leader_check(double now);

    // derived state
    bool quorate_now() const { return quorum_known_ && quorate_ && quorum_ring_ == ring_; }
    bool quorum_lost() const { return quorum_known_ && !quorate_; }
    bool ready(double now) const;
    double lifetime() const { return cfg_.restart_grace - 1.0; }
    double raw_wake() const;
    void expire_lifetimes(double now);
    // True when a's kernel lifetime, last armed at armed_at_[a], has run out.
    bool lifetime_ran_out(double now, const ServiceAddress& a) const;
    // Stop holding an address whose lifetime ran out (and remove whatever
    // is left of it); returns the next entry of held_.
    std::map<ServiceAddress, AddressState>::iterator drop_expired(
        double now, std::map<ServiceAddress, AddressState>::iterator it, const std::string& why);
    bool holds_movable() const;
    void on_fixed(double now, const in::Fixed& f);
    void on_load(const in::LoadSample& l);
    double interval() const { return cfg_.interval_ms / 1000.0; }
    double acquire_backoff() const { return std::max(5.0, 5 * interval()); }

    GroupConfig cfg_;
    std::string digest_;
    Process self_;
    std::string name_;
    RandomSource random_;

    // group view
    bool have_membership_ = false;
    std::uint64_t ring_ = 0;
    std::vector<Process> members_;
    PeerTable peers_;
    DnsLeader dns_;                                 // leader only
    double view_change_at_ = 0;
    std::uint32_t cmd_count_ = 0;
    bool quorum_known_ = false, quorate_ = false;
    std::uint64_t quorum_ring_ = 0;
    std::uint32_t last_leader_ = 0;

    // this host
    bool ok_ = true, quiesced_ = false, stopping_ = false;
    unsigned fails_ = 0, passes_ = 0;
    std::string failing_test_;
    double load_ = 0, capacity_ = 100;
    std::map<ServiceAddress, AddressState> held_;
    std::map<ServiceAddress, std::string> reasons_;
    std::map<ServiceAddress, double> failed_at_;     // last failed acquire, for the backoff
    std::map<ServiceAddress, double> armed_at_;      // when its kernel lifetime was last (re)armed
    std::set<ServiceAddress> fixed_;                 // permanent, the administrator's (rule 4.10)
    bool bad_load_reported_ = false;
    double last_tick_at_ = -std::numeric_limits<double>::infinity();
    std::set<std::uint8_t> foreign_reported_;
    std::uint64_t unsent_ = 0;                      // messages not sent because peers would drop them
    bool synced_ = false;                           // heard the whole group once since starting
    std::vector<AcquireMsg> deferred_;              // acquires waiting for quorum of this ring
    std::uint64_t seq_ = 0;
    double next_info_at_ = 0;
    double next_refresh_at_ = 0;
    double stop_deadline_ = 0;
    bool exited_ = false;
    double last_step_at_ = 0;

    // group state the leader keeps (and every member mirrors)
    std::map<ServiceAddress, double> orphans_;
    std::map<ServiceAddress, std::uint32_t> pins_;
    std::set<ServiceAddress> cannot_assign_, expired_;
    std::set<std::string> notes_;
    std::uint64_t dropped_ = 0;

    Effects* fx_ = nullptr;                         // effects of the step under way
};

}  // namespace rais
