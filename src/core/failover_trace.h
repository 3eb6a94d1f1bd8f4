// FailoverTrace: where the milliseconds of one failover went, on this host
// (issue 13, DESIGN §7). The shell reports each step as it sees it — the
// CPG membership that reports departures, quorum for that ring, a fence
// confirmation, the leader's assignment multicast and its return, this
// host being told to acquire, each acquire's ARP probe, netlink ACK, first
// announcement and completion — and the trace turns them into one
// breakdown: milliseconds after the departure confchg, per step.
//
// Pure: no I/O and no clock; every call carries the caller's monotonic
// time in seconds. Invariants:
//  - a trace opens only at a membership change that reports departures,
//    and closes exactly once: when every acquire it was told of has ended,
//    when the leader's assignment left and this host was given nothing
//    within kQuietAfterPlan, at the next departure, or after kMaxSpan;
//  - a trace in which this host neither planned nor acquired anything is
//    dropped, not reported (hosts that took no part have nothing to say);
//  - per-address steps are reported for the LAST address to reach them
//    (the failover is over when the last address is back), and the first
//    announcement is kept beside it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/address.h"

namespace rais {

enum class FailoverStep : std::uint8_t {
    Membership,    // the CPG confchg reporting the departure (the origin)
    Totem,         // the totem confchg of the new ring (CPG delivers it after the group's)
    Quorum,        // quorate for the new ring (negative when it came first)
    Fence,         // a fence confirmation of a departed host
    Plan,          // leader: the first assignment multicast was handed to CPG
    Sent,          // leader: that multicast call returned
    Ordered,       // this host was first told to acquire (Plumb)
    ProbeSent,     // per address: its ARP probe went out
    ProbeSettled,  // per address: the probe window ended unanswered
    Plumbed,       // per address: the kernel acknowledged RTM_NEWADDR
    Announced,     // per address: its first gratuitous ARP / NA went out
    Done,          // per address: the acquire completed
};
constexpr std::size_t kFailoverSteps = 12;
// The key of a step in the breakdown line and in JSON ("probe_sent", ...).
const char* key_of(FailoverStep s);

struct FailoverBreakdown {
    std::uint64_t ring = 0;
    std::vector<std::string> departed;     // node names as the shell knows them
    std::size_t addresses = 0;             // acquires this host was told of
    std::size_t failed = 0;                // of those, how many failed
    bool complete = true;                  // every acquire ended before the trace closed
    // ms after the departure confchg; nullopt: the step did not happen here.
    std::array<std::optional<double>, kFailoverSteps> at{};
    std::optional<double> first_announced; // the first address's first announcement
    std::optional<double> first_done;

    const std::optional<double>& operator[](FailoverStep s) const { return at[static_cast<std::size_t>(s)]; }
    // "failover breakdown: departed=h2 ring=12 addresses=256 membership=+0.0ms quorum=+0.3ms fence=- ..."
    std::string line() const;
};

class FailoverTrace {
public:
    // Longest wait, after the leader's assignment left, for this host to be
    // told to acquire something; and longest span of one trace.
    static constexpr double kQuietAfterPlan = 0.25;
    static constexpr double kMaxSpan = 120.0;

    // Every CPG membership change, group or totem. One with departures
    // opens a trace (and closes the open one); the first change of ring
    // after it is the new totem ring, whose quorum counts; joins alone
    // change nothing else.
    void membership(double now, std::uint64_t ring, const std::vector<std::string>& departed);
    // Every quorum notification (kept even while no trace is open: it may
    // come before the confchg of its ring).
    void quorum(double now, std::uint64_t ring, bool quorate);
    void fenced(double now);
    void planned(double now);
    // The plan's multicast left (counts only after planned()).
    void sent(double now);
    // This host is told to acquire a (only while a trace is open).
    void ordered(double now, const ServiceAddress& a);
    // A milestone of an ordered acquire (ProbeSent .. Announced).
    void step(double now, const ServiceAddress& a, FailoverStep s);
    void done(double now, const ServiceAddress& a, bool ok);
    // Closes a trace whose time is up (kQuietAfterPlan, kMaxSpan).
    void tick(double now);

    bool open() const { return open_; }
    // The deadline tick() must be called by, when a trace is open.
    std::optional<double> next_wake() const;
    // A breakdown closed since the last call, once.
    std::optional<FailoverBreakdown> take_closed();
    // The last breakdown closed (what status shows).
    const std::optional<FailoverBreakdown>& last() const { return last_; }

private:
    void close(bool complete);
    void mark_first(double now, FailoverStep s);
    void mark_last(double now, FailoverStep s);

    bool open_ = false;
    double origin_ = 0;
    FailoverBreakdown cur_;
    std::set<ServiceAddress> pending_;                   // ordered, not yet done
    std::map<ServiceAddress, std::set<FailoverStep>> seen_;  // per address: steps already counted
    std::optional<double> plan_at_;                      // absolute time of Plan
    std::uint64_t quorum_ring_ = 0;
    std::optional<double> quorum_at_;                    // absolute time quorum_ring_ became quorate
    std::optional<FailoverBreakdown> closed_, last_;
};

}  // namespace rais
