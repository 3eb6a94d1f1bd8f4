// What goes into a Member step and what comes out of it: the inputs the
// shell observes (in::), the effects it must carry out (out::), the events
// and log levels they carry. Shared by Member and the parts it owns (the
// peer table, the DNS leader), which add their effects to the step's list
// in the order they happen.
//
// Plain data, no behaviour beyond naming the enums.
#pragma once

#include "core/log_level.h"
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/config.h"
#include "core/model.h"

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
    Orphaned, Expired, Leader, DnsUpdate, DnsFailed,
    Failover,   // the shell's breakdown of a failover this host took part in (issue 13)
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
    // An Acquire, Release or Batch of the leader: the shell times failovers by it.
    bool assignment = false;
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
struct Log {
    LogLevel level = LogLevel::Info;
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

}  // namespace rais
