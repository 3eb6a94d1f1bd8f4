// PeerTable: who is in the group, as one member sees it (DESIGN §3, §4).
//
// One entry per CPG process of the current view: counted once it sent an
// Info (a second process on a counted node, or one that never speaks, is a
// stray and is reported once), silent when its Infos stopped while ours kept
// coming back, with the commands the leader sent it that its Infos do not
// reflect yet. Beside them: departed members whose addresses stay held
// (restart_grace, or until fencing confirms them down), nodes a new ring
// brought whose processes CPG has not reported yet (awaited), fence
// confirmations that came before the departure, and node names.
//
// Invariants:
//  - the leader is the lowest node id among counted, non-silent processes;
//  - a departed member leaves only when its grace ends, a fence confirms it,
//    fencing stops being possible, or it reports again;
//  - silence is measured in ring time (our own Infos coming back), never
//    across this process's own stall.
//
// Pure: no I/O, no clock (time comes with every call); its log lines are
// appended to the step's effects in the order they happen.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/codec.h"
#include "core/member_io.h"
#include "core/model.h"

namespace rais {

// What a member knows of one peer, for status output.
struct PeerStatus {
    Process process;
    std::string name;
    bool counted = false, silent = false, departed = false;
    std::string departed_why;
    HostView host;                          // as last reported (pending commands applied)
};

class PeerTable {
public:
    static constexpr std::uint32_t kInFlight = 0xffffffffu;

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

    PeerTable(Process self, const std::string& self_name, bool fencing_active);

    // The interval and restart_grace (s) the table judges by; set again on reload.
    void set_timing(double interval, double restart_grace);

    // A new CPG view: departures (held for restart_grace or a fence), nodes
    // to await, newcomers. `new_ring`: a view came before, of another ring.
    // `digest` is ours (a departed host's view compares against it).
    void on_membership(double now, const in::Membership& m, bool new_ring, const std::string& digest,
                       Effects& fx);
    // An Info from `p` (whose node it names): counts it unless another
    // process of its node is counted; false when it is ignored.
    bool on_info(double now, Peer& p, const InfoMsg& m, const std::string& group, Effects& fx);
    // Applies a leader command to the destination's pending list; index is
    // the delivery count, or kInFlight for one this leader has just sent.
    void note_command(std::uint32_t dest, bool acquire, const ServiceAddress& a, std::uint32_t index);
    // Reports strays, ends restart_grace waits.
    void on_tick(double now, Effects& fx);
    void on_fenced(double now, const in::Fenced& f, Effects& fx);
    // True when a's last holder is a departed host that fencing confirmed
    // down (within the fence memory): nothing can answer an ARP probe for
    // it, so its next holder skips the probe (issue 13). Once per address:
    // take_confirmed_gone forgets it.
    bool take_confirmed_gone(double now, const ServiceAddress& a);
    void on_fencing_mode(const in::FencingMode& f, Effects& fx);
    // This process was stopped or starved: nobody is judged silent until it
    // has listened again for a while.
    void listening_again(double now) { listening_since_ = now; }

    Peer* find(const Process& p);
    const Peer* counted(std::uint32_t node) const;
    const std::map<Process, Peer>& all() const { return peers_; }
    bool silent(const Peer& p) const;
    std::uint32_t leader() const;           // node id, 0 = none
    bool self_leads() const;                // this process, not only this node
    bool any_foreign() const;
    // Everyone a newcomer or a healed ring waits for has spoken (the part
    // of "ready" the table knows); `synced`: heard the whole group once.
    bool heard_everyone(double now, bool synced) const;
    double next_departure_end() const;      // infinity when none
    std::string name_of(std::uint32_t node) const;
    std::uint32_t id_of(const std::string& name) const;  // counted members only; 0 = none

    bool fencing_active() const { return fencing_active_; }
    bool two_node() const { return two_node_; }

    HostView host_of(const Peer& p, const std::string& digest) const;
    // Addresses a counted member holds statically (rule 4.10), and its node id.
    std::map<ServiceAddress, std::uint32_t> fixed_addresses() const;
    // The hosts of the view: counted members (a silent one departed, or
    // gone after restart_grace) and departed ones; `fixed` is left out of
    // what its static holder serves.
    void add_hosts(View& v, const std::map<ServiceAddress, std::uint32_t>& fixed, const std::string& digest) const;
    std::vector<PeerStatus> statuses(const std::string& digest) const;

private:
    struct Departed {
        std::string name;
        std::uint32_t node = 0;
        std::vector<Holding> serving;
        double until = 0;                   // restart grace end; infinity while awaiting fencing
        bool awaiting_fence = false;
        std::string why;
        std::uint64_t ring = 0;             // the ring of the membership that reported the departure
    };

    double quiet_for(const Peer& p) const;
    void depart(double now, const Peer& p, ChangeReason why, const in::Membership& m, const std::string& digest,
                Effects& fx);

    Process self_;
    double interval_ = 1, restart_grace_ = 0;
    bool fencing_active_;
    bool two_node_ = false;                 // corosync two_node: see in::FencingMode
    std::map<Process, Peer> peers_;
    std::map<std::uint32_t, Departed> departed_;
    std::vector<std::uint32_t> ring_nodes_;         // totem members of the current ring
    // Nodes that joined the ring with no process in our CPG view yet: after a
    // partition heals, totem and quorum report the merged ring before CPG
    // reports the other side's processes, and planning then would count only
    // our side and take addresses the other side still serves.
    std::set<std::uint32_t> awaited_nodes_;
    std::map<std::string, double> fenced_at_;  // node name -> when fencing confirmed it (may precede its departure)
    std::map<ServiceAddress, double> fenced_serving_;  // served by a host confirmed down -> when confirmed
    std::map<std::uint32_t, std::string> names_;    // node id -> name, learned from Infos
    double listening_since_ = 0;                    // end of our last stall
    double own_info_at_ = 0;                        // when our own last Info came back
};

}  // namespace rais
