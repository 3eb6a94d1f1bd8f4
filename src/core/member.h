// Member: one host's protocol state machine for one service group.
//
// step(now, input) -> effects. Inputs are everything the shell observes (CPG
// membership and messages, quorum, ticks, fence confirmations, test results,
// load samples, outcomes of address actions, operator commands); effects are
// everything the shell must do (multicast, plumb, unplumb, refresh lifetimes,
// emit events, log, persist the quiesce flag, reply to a command, exit). The
// Member does no I/O, reads no clock (time comes with every step) and draws
// random choices only from the seeded source it was given.
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
#include <variant>
#include <vector>

#include "core/codec.h"
#include "core/config.h"
#include "core/model.h"
#include "core/random.h"

namespace rais {

// A CPG process: (node id, pid).
struct Process {
    std::uint32_t node = 0;
    std::uint32_t pid = 0;
    bool operator==(const Process& o) const { return node == o.node && pid == o.pid; }
    bool operator<(const Process& o) const { return node != o.node ? node < o.node : pid < o.pid; }
};

// The confchg reasons of corosync's CPG (values as in <corosync/cpg.h>).
enum class ChangeReason : std::uint8_t { Join = 1, Leave = 2, NodeDown = 3, NodeUp = 4, ProcDown = 5 };
const char* to_string(ChangeReason r);

enum class EventKind : std::uint8_t {
    Acquire, Release, AcquireFailed, ReleaseFailed, TestFailed, TestRecovered, CannotAssign,
    Orphaned, Expired, Leader, DnsUpdate, DnsFailed
};
const char* to_string(EventKind k);

struct Event {
    EventKind kind = EventKind::Acquire;
    double time = 0;
    std::string group;
    std::string node;
    std::optional<ServiceAddress> address;
    std::string reason;
};

enum class CommandKind : std::uint8_t { Quiesce, Unquiesce, Move, Unpin, Stop };

namespace in {
struct Membership {
    std::uint64_t ring = 0;                 // totem ring sequence of this view
    std::vector<Process> members;           // in CPG order
    std::vector<std::pair<Process, ChangeReason>> left;
    std::vector<std::pair<Process, ChangeReason>> joined;
    std::vector<std::uint32_t> nodes;       // totem members (node ids) of this ring
};
struct Quorum {
    std::uint64_t ring = 0;
    bool quorate = false;
};
struct Delivered {
    Process from;
    std::vector<std::uint8_t> bytes;
};
struct Tick {};
struct Fenced {
    std::uint32_t node = 0;                 // node id confirmed down by the cluster's fencing (0: unknown)
    std::string name;                       // its node name, as the fencer reports it (may be empty)
};
// Whether departures wait for fencing (fencing=require, or auto while the
// cluster has stonith-enabled); `why` reaches the log.
struct FencingMode {
    bool active = false;
    std::string why;
    // corosync two_node: both halves of a split stay quorate, so without
    // fencing a departed peer's addresses are never taken (rule 4.8).
    bool two_node = false;
};
struct TestResult {
    bool ok = true;
    std::string detail;                     // which test, and what it said
};
struct LoadSample {
    double load = 0, capacity = 100;
};
struct ActionDone {
    ServiceAddress address;
    bool acquire = true;                    // acquire or release action
    bool ok = true;
    std::string detail;
};
struct AddressLost {                        // vanished from the interface behind our back
    ServiceAddress address;
    std::string why;
};
struct Command {
    CommandKind kind = CommandKind::Quiesce;
    std::string node;                       // empty = this host
    std::optional<ServiceAddress> address;
};
struct Reload {
    GroupConfig config;
};
// A group address configured statically (permanent) on this host appeared
// or went away: it is the administrator's, held by this host and never
// released or refreshed by raisd (rule 4.10).
struct Fixed {
    ServiceAddress address;
    bool present = true;
};
// What the DNS server said to the leader's read or update (DESIGN §5.4).
struct DnsResult {
    bool ok = false;
    bool read = false;                      // a read of the current RRset, not an update
    std::string detail;                     // the server's answer, or why there was none
    std::optional<std::set<ServiceAddress>> published;  // the RRset at the server, when known
};
}  // namespace in

using Input = std::variant<in::Membership, in::Quorum, in::Delivered, in::Tick, in::Fenced, in::TestResult,
                           in::LoadSample, in::ActionDone, in::AddressLost, in::Command, in::Reload,
                           in::FencingMode, in::DnsResult, in::Fixed>;

namespace out {
struct Send {                               // multicast to the group, agreed order
    std::vector<std::uint8_t> bytes;
    std::string what;                       // one-line summary for traces
    // An Info: a full snapshot of this member's state that makes any Info
    // not yet sent obsolete, so the shell may send only the newest one.
    bool snapshot = false;
};
struct Plumb {                              // add the address; answer with ActionDone
    ServiceAddress address;
    bool probe = true;                      // ARP probe first (rule 4.5); false on handover
    double lifetime = 0;                    // kernel valid/preferred lifetime, s
};
struct Unplumb {                            // remove the address; answer with ActionDone
    ServiceAddress address;
};
struct Refresh {                            // re-arm kernel lifetimes of held addresses
    std::vector<ServiceAddress> addresses;
    double lifetime = 0;
};
struct Emit {
    Event event;
};
struct DnsPublish {                         // leader only: make the zone advertise exactly these
    std::set<ServiceAddress> addresses;
};
enum class Level : std::uint8_t { Debug, Info, Notice, Warning, Error };
struct Log {
    Level level = Level::Info;
    std::string text;
};
struct PersistQuiesce {
    bool quiesced = false;
};
struct Reply {                              // answer to a local Command
    bool ok = true;
    std::string message;
};
struct Exit {                               // stop the process (graceful stop done)
    int code = 0;
    std::string why;
};
}  // namespace out

using Effect = std::variant<out::Send, out::Plumb, out::Unplumb, out::Refresh, out::Emit, out::Log,
                            out::PersistQuiesce, out::Reply, out::Exit, out::DnsPublish>;
using Effects = std::vector<Effect>;

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

// What a member knows of one peer, for status output.
struct PeerStatus {
    Process process;
    std::string name;
    bool counted = false, silent = false, departed = false;
    std::string departed_why;
    HostView host;                          // as last reported (pending commands applied)
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
    struct Pending {
        bool acquire;
        ServiceAddress address;
        std::uint32_t index;                // command index, kInFlight until delivered
    };
    struct Peer {
        Process process;
        bool counted = false;
        bool reported = false;              // stray or duplicate already reported
        bool has_info = false;
        InfoMsg info;
        double last_info_at = 0;
        double seen_at = 0;                 // when it first appeared in a view
        bool fresh = false;                 // sent an Info since the last membership change
        std::vector<Pending> pending;
        std::uint8_t foreign = 0;           // speaks this major protocol version, not ours
    };
    struct Departed {
        std::string name;
        std::uint32_t node = 0;
        std::vector<Holding> serving;
        double until = 0;                   // restart grace end; infinity while awaiting fencing
        bool awaiting_fence = false;
        std::string why;
        std::uint64_t ring = 0;             // the ring of the membership that reported the departure
    };

    static constexpr std::uint32_t kInFlight = 0xffffffffu;

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
    // Applies a leader command to the destination's pending list; index is
    // the delivery count, or kInFlight for one this leader has just sent.
    void note_command(std::uint32_t dest, bool acquire, const ServiceAddress& a, std::uint32_t index);
    void on_action_done(double now, const in::ActionDone& d);
    void on_test(double now, const in::TestResult& t);
    void on_command(double now, const in::Command& c);
    void on_fenced(double now, const in::Fenced& f);
    void on_fencing_mode(double now, const in::FencingMode& f);
    void on_dns_result(double now, const in::DnsResult& r);
    void plan_zone(double now, const View& v);
    bool settled(double now) const;

    // local actions
    void send(Message m, std::string what);
    void send_info(double now);
    void do_acquire(double now, const ServiceAddress& a, bool handover, const std::string& why);
    void release_local(double now, const ServiceAddress& a, const std::string& why);
    void release_all(double now, const std::string& why);
    void emit(double now, EventKind k, const std::string& node, std::optional<ServiceAddress> a, std::string why);
    void log(out::Level l, std::string text);
    void maybe_plan(double now);
    void maybe_exit();
    void leader_check(double now);

    // derived state
    bool quorate_now() const { return quorum_known_ && quorate_ && quorum_ring_ == ring_; }
    bool quorum_lost() const { return quorum_known_ && !quorate_; }
    bool silent(const Peer& p) const;
    double quiet_for(const Peer& p) const;
    std::uint32_t leader_node() const;
    bool ready(double now) const;
    Peer* peer(const Process& p);
    const Peer* counted_peer(std::uint32_t node) const;
    std::string node_name(std::uint32_t node) const;
    std::uint32_t node_id(const std::string& name) const;
    HostView host_of(const Peer& p) const;
    double lifetime() const { return cfg_.restart_grace - 1.0; }
    double raw_wake() const;
    void expire_lifetimes(double now);
    bool holds_movable() const;
    void on_fixed(double now, const in::Fixed& f);
    void on_load(const in::LoadSample& l);
    double interval() const { return cfg_.interval_ms / 1000.0; }
    double acquire_backoff() const { return std::max(5.0, 5 * interval()); }

    GroupConfig cfg_;
    std::string digest_;
    Process self_;
    std::string name_;
    bool fencing_active_;
    bool two_node_ = false;                 // corosync two_node: see in::FencingMode
    RandomSource random_;

    // group view
    bool have_membership_ = false;
    std::uint64_t ring_ = 0;
    std::vector<Process> members_;
    std::vector<std::uint32_t> ring_nodes_;         // totem members of ring_
    // Nodes that joined the ring with no process in our CPG view yet: after a
    // partition heals, totem and quorum report the merged ring before CPG
    // reports the other side's processes, and planning then would count only
    // our side and take addresses the other side still serves.
    std::set<std::uint32_t> awaited_nodes_;
    std::map<Process, Peer> peers_;
    std::map<std::uint32_t, Departed> departed_;
    std::map<std::string, double> fenced_at_;  // node name -> when fencing confirmed it (may precede its departure)
    // DNS (leader only): the last advertised set (the patent's table M, for
    // hysteresis), seeded from the server's RRset when this host starts
    // leading, and the reasons of the last change.
    std::set<ServiceAddress> dns_prev_;
    std::set<ServiceAddress> dns_confirmed_;        // what the server last confirmed
    std::map<ServiceAddress, std::string> dns_why_; // the latest plan's reason per address
    std::vector<std::string> dns_changes_;
    bool dns_leading_ = false;
    std::string dns_failing_;                       // the failure last reported as an event, until a success
    std::map<std::uint32_t, std::string> names_;    // node id -> name, learned from Infos
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
    double last_refresh_at_ = -1;
    double next_refresh_at_ = 0;
    double stop_deadline_ = 0;
    bool exited_ = false;
    double last_step_at_ = 0;
    double listening_since_ = 0;                    // end of our last stall
    double own_info_at_ = 0;                        // when our own last Info came back

    // group state the leader keeps (and every member mirrors)
    std::map<ServiceAddress, double> orphans_;
    std::map<ServiceAddress, std::uint32_t> pins_;
    std::set<ServiceAddress> cannot_assign_, expired_;
    std::set<std::string> notes_;
    std::uint64_t dropped_ = 0;

    Effects* fx_ = nullptr;                         // effects of the step under way
};

}  // namespace rais
