// World: the simulator's stand-in for corosync, the kernel and the operator.
//
// Many real rais::Member state machines run in one process over a fake CPG
// that keeps agreed order and virtual synchrony per partition: every message
// and membership change of a group is delivered to the members of the
// sender's partition in one global order (a single time-ordered queue with a
// sequence number), messages sent in a view are delivered before the next
// view change, and quorum notifications arrive before or after the CPG
// change as the scenario asks. Time is virtual; randomness comes from one
// seeded source. Each node has an "interface": the kernel's address table,
// with the lifetimes the members set, so the dead-man rule and ARP probes
// act on what the kernel would hold.
//
// The World also checks what no scenario has to ask for (take_violations()):
//  - every message a Member multicasts decodes with the real codec, as its
//    peers would decode it, and is sent only by a process CPG has joined;
//    a Member never refuses to send what it built (unsent_messages stays 0);
//  - after every input a Member handles, no deadline it reported is overdue
//    (Member::wake_overdue()), and after a Tick next_wake() lies after it;
//  - a forged group message (forge(), garbage()) makes no Member plumb,
//    unplumb or change its quiesce flag or pins, and no interface ever holds
//    an address that is neither configured nor an outside machine's;
//  - the World itself stops (halted()) when more than kMaxBurst events run
//    within one virtual millisecond (a busy loop) or when the wall-clock
//    limit of WorldOptions::wall_limit has passed, so a hang fails a test
//    instead of stalling it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <vector>

#include "core/member.h"
#include "core/random.h"

namespace raissim {

using rais::ServiceAddress;

enum class QuorumOrder { Before, After };

struct WorldOptions {
    double latency = 0.001;          // CPG delivery
    double detect = 0.5;             // totem: crash/partition noticed after this
    double procdown = 0.02;          // CPG: a killed process is noticed after this
    double action = 0.005;           // netlink add/remove
    QuorumOrder quorum_order = QuorumOrder::Before;
    double quorum_delay = 0.0;       // extra delay of quorum notifications after the CPG change (order After)
    bool fencing = false;            // members are told fencing is active
    double auto_fence = -1;          // >= 0: fence nodes that leave the quorate partition after this delay
    bool trace_logs = false;         // include member logs (notice and above) in the trace
    std::map<std::string, double> slow_quorum;  // node name -> extra delay of its quorum notifications
    double wall_limit = 0;           // > 0: halt after this many seconds of wall-clock time
};

class World {
public:
    World(std::uint64_t seed, WorldOptions opts);
    ~World();

    // Setup
    std::uint32_t add_node(const std::string& name);
    void add_group(const rais::GroupConfig& cfg);
    const std::vector<std::string>& groups() const { return group_names_; }
    std::optional<std::uint32_t> node_id(const std::string& name) const;
    const std::string& node_name(std::uint32_t id) const;
    std::vector<std::uint32_t> node_ids() const;
    WorldOptions& options() { return opts_; }

    // Faults and operations (take effect now; consequences are scheduled)
    void boot(std::uint32_t node);                         // corosync + one raisd per group
    void crash(std::uint32_t node);                        // port down, every process killed
    void kill(std::uint32_t node, const std::string& group);      // kill -9 of raisd only
    void start(std::uint32_t node, const std::string& group);     // (re)start raisd
    void hang(std::uint32_t node, const std::string& group);      // SIGSTOP
    void resume(std::uint32_t node, const std::string& group);    // SIGCONT
    void partition(const std::vector<std::set<std::uint32_t>>& parts);
    void heal();
    void fence(std::uint32_t node);                        // fencing confirms node down (and it is)
    void command(std::uint32_t node, const std::string& group, const rais::in::Command& c);
    void set_health(std::uint32_t node, bool ok);
    void set_load(std::uint32_t node, const std::string& group, double load, double capacity);
    void reload(std::uint32_t node, const std::string& group, const rais::GroupConfig& cfg);
    void add_outside(const ServiceAddress& a) { outside_.insert(a); }
    void remove_outside(const ServiceAddress& a) { outside_.erase(a); }
    void stray(std::uint32_t node, const std::string& group);     // a CPG client that never sends Info
    void garbage(std::uint32_t node, const std::string& group, std::vector<std::uint8_t> bytes);
    // A well-formed group message multicast by a stray CPG client of `node`
    // (hostile: a process that is not a counted member, or not the leader's).
    void forge(std::uint32_t node, const std::string& group, const rais::Message& m, const std::string& what);

    void run_for(double seconds);
    // Gap measurement: the longest stretch of virtual time an address had no
    // holder on any interface, since watch() was called.
    void watch(const ServiceAddress& a);
    double max_gap(const ServiceAddress& a) const;
    double now() const { return now_; }
    // A busy loop or the wall-clock limit stopped the World: run_for does
    // nothing more; halt_reason() says which, and it is also a violation.
    bool halted() const { return halted_; }
    bool timed_out() const { return timed_out_; }
    const std::string& halt_reason() const { return halt_reason_; }
    double wall_elapsed() const;
    // Events run within one virtual millisecond before the World calls it a busy loop.
    static constexpr std::uint64_t kMaxBurst = 100000;

    // Observation
    // Nodes (up) whose interface holds a, per the kernel.
    std::vector<std::uint32_t> holders(const ServiceAddress& a) const;
    // The DNS zone of a group as the simulated server holds it (DESIGN §5.4).
    std::set<ServiceAddress> zone(const std::string& group) const;
    bool node_up(std::uint32_t node) const;
    bool quorate(std::uint32_t node) const;                // node's partition has a majority
    bool process_alive(std::uint32_t node, const std::string& group) const;
    bool process_hung(std::uint32_t node, const std::string& group) const;
    const rais::Member* member(std::uint32_t node, const std::string& group) const;
    std::vector<std::string>& trace() { return trace_; }
    void note(const std::string& line);                    // add a line to the trace
    std::vector<std::string> take_violations();            // continuous invariant violations

    // The partition a node is in (index), or -1 when down.
    int partition_of(std::uint32_t node) const;

private:
    struct Process;
    struct Node;
    struct Group;
    struct Item {
        double time;
        std::uint64_t seq;
        std::function<void()> fn;
        bool operator>(const Item& o) const { return time != o.time ? time > o.time : seq > o.seq; }
    };

    void at(double t, std::function<void()> fn);
    // `forged` names a hostile input (empty for an honest one): its effects
    // are checked before they are applied.
    void feed(Process& p, const rais::Input& in, const std::string& forged = "");
    void step(Process& p, const rais::Input& in, const std::string& forged);
    void check_forged(Process& p, const rais::Effects& fx, const std::string& forged, bool quiesced_before,
                      const std::map<ServiceAddress, std::string>& pins_before);
    void check_unsent(Process& p);
    void apply(Process& p, rais::Effects fx);
    Process& stray_on(std::uint32_t node, const std::string& group, bool* created);
    void multicast_from_stray(Process& sender, bool created, std::vector<std::uint8_t> bytes,
                              const std::string& forged);
    void violation(const std::string& what);
    std::string who(const Process& p) const;   // "n1 raisd web pid 1001"
    void halt(const std::string& why, bool timeout);
    void schedule_wake(Process& p);
    // Schedules CPG (and, when the ring changes, totem and quorum) updates
    // for every group, computed from the world as it is at delivery time.
    void membership_changed(bool totem_change, double delay);
    void expire_addresses();
    Process* find(std::uint32_t node, const std::string& group);
    const Process* find(std::uint32_t node, const std::string& group) const;
    std::string when() const;
    std::vector<Process*> cpg_view(const std::string& group, int part) const;

    std::uint64_t seed_;
    WorldOptions opts_;
    rais::RandomSource random_;
    double now_ = 0;
    std::uint64_t seq_ = 0;
    std::uint64_t ring_ = 0;
    std::uint32_t next_pid_ = 1000;
    std::priority_queue<Item, std::vector<Item>, std::greater<Item>> queue_;
    std::vector<std::unique_ptr<Node>> nodes_;
    std::map<std::string, std::unique_ptr<Group>> groups_;
    std::map<std::string, std::set<ServiceAddress>> zones_;   // group -> records at the simulated DNS server
    std::vector<std::string> group_names_;
    std::set<ServiceAddress> outside_;
    std::vector<std::string> trace_;
    std::vector<std::string> violations_;
    std::set<ServiceAddress> configured_;     // every address of every configuration a group had
    bool halted_ = false, timed_out_ = false;
    std::string halt_reason_;
    double burst_start_ = 0;                  // virtual time the current burst window opened
    std::uint64_t burst_events_ = 0;
    std::uint64_t events_ = 0;
    std::chrono::steady_clock::time_point wall_start_;
    struct Gap {
        double since = -1;       // start of the current gap, -1 when held
        double longest = 0;
    };
    std::map<ServiceAddress, Gap> watched_;
    void update_gaps();
};

}  // namespace raissim
