#include "core/peer_table.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "core/text.h"

namespace rais {

namespace {
constexpr double kNever = std::numeric_limits<double>::infinity();
// How long a fence confirmation that came before the node's departure counts.
constexpr double kFenceMemory = 60;


void log(Effects& fx, LogLevel l, std::string text) { fx.push_back(out::Log{l, std::move(text)}); }
}  // namespace

PeerTable::PeerTable(Process self, const std::string& self_name, bool fencing_active)
    : self_(self), fencing_active_(fencing_active) {
    names_[self_.node] = self_name;
}

void PeerTable::set_timing(double interval, double restart_grace) {
    interval_ = interval;
    restart_grace_ = restart_grace;
}

// ---------------------------------------------------------------- membership

void PeerTable::on_membership(double now, const in::Membership& m, bool new_ring, const std::string& digest,
                              Effects& fx) {
    // Nodes new to the ring whose processes CPG has not reported yet (see
    // awaited_nodes_). A first membership has nothing to compare with: a
    // newcomer waits for the whole group anyway (Member's ready()).
    if (new_ring)
        for (auto n : m.nodes)
            if (std::find(ring_nodes_.begin(), ring_nodes_.end(), n) == ring_nodes_.end()) awaited_nodes_.insert(n);
    for (auto it = awaited_nodes_.begin(); it != awaited_nodes_.end();) {
        bool in_ring = std::find(m.nodes.begin(), m.nodes.end(), *it) != m.nodes.end();
        bool in_view = std::any_of(m.members.begin(), m.members.end(), [&](const Process& p) { return p.node == *it; });
        if (!in_ring || in_view) it = awaited_nodes_.erase(it);
        else ++it;
    }
    if (!awaited_nodes_.empty() && new_ring) {
        std::string ns;
        for (auto n : awaited_nodes_) ns += (ns.empty() ? "" : ", ") + name_of(n);
        log(fx, LogLevel::Info, "ring " + std::to_string(m.ring) + " brought node(s) " + ns +
                                      " not yet in the group's view: planning waits for their processes (at most " +
                                      secs(3 * interval_) + ")");
    }
    ring_nodes_ = m.nodes;

    for (const auto& [proc, why] : m.left) {
        auto it = peers_.find(proc);
        if (it == peers_.end()) continue;
        if (it->second.counted && it->second.has_info && !(proc == self_)) depart(now, it->second, why, m, digest, fx);
        peers_.erase(it);
    }
    // A node we were waiting to see fenced is back in the cluster: whatever
    // raisd it had is either alive (and will report) or dead long enough for
    // the kernel lifetimes to run out within restart_grace.
    // Only a newer ring counts: CPG may report the departure before totem
    // reports the ring without the node, with the old ring's node list.
    for (auto& [node, d] : departed_) {
        if (!d.awaiting_fence || m.ring <= d.ring || std::find(m.nodes.begin(), m.nodes.end(), node) == m.nodes.end())
            continue;
        d.awaiting_fence = false;
        d.until = now + restart_grace_;
        d.why = d.name + " rejoined the cluster without its raisd; its addresses wait restart_grace (" +
                secs(restart_grace_) + ")";
        log(fx, LogLevel::Notice, d.why);
    }
    for (const auto& proc : m.members)
        if (!peers_.count(proc)) {
            peers_[proc].process = proc;
            peers_[proc].seen_at = now;
        }
    // Drop peers CPG no longer lists (defensive: a view is authoritative).
    for (auto it = peers_.begin(); it != peers_.end();) {
        if (std::find(m.members.begin(), m.members.end(), it->first) == m.members.end()) it = peers_.erase(it);
        else ++it;
    }
    for (auto& [proc, p] : peers_) {
        (void)proc;
        p.fresh = false;
        p.pending.clear();
    }
}

// A counted member left the view: how long what it served stays held.
void PeerTable::depart(double now, const Peer& p, ChangeReason why, const in::Membership& m,
                       const std::string& digest, Effects& fx) {
    const Process& proc = p.process;
    std::string nm = name_of(proc.node);
    HostView hv = host_of(p, digest);
    bool node_present = false;
    for (const auto& mm : m.members) node_present = node_present || mm.node == proc.node;
    Departed d{nm, proc.node, hv.serving, now, false, "", m.ring};
    if (why == ChangeReason::Leave) {
        log(fx, LogLevel::Notice, "raisd on " + nm + " left the group");
    } else if (why == ChangeReason::ProcDown || node_present) {
        d.until = now + restart_grace_;
        d.why = "raisd on " + nm + " went down (process down); its addresses wait restart_grace (" +
                secs(restart_grace_) + ")";
    } else if (fencing_active_ && fenced_at_.count(nm) && now - fenced_at_[nm] < kFenceMemory) {
        log(fx, LogLevel::Notice, nm + " left the membership (" + std::string(to_string(why)) +
                                        ") after fencing confirmed it down; its addresses may move at once");
        for (const auto& h : hv.serving) fenced_serving_[h.address] = now;
    } else if (fencing_active_) {
        d.until = kNever;
        d.awaiting_fence = true;
        d.why = nm + " left the membership (" + to_string(why) + "); waiting for fencing to confirm it down";
    } else if (two_node_) {
        d.until = kNever;
        d.awaiting_fence = true;
        d.why = nm + " left the membership (" + to_string(why) + ") of a two_node cluster without fencing: "
                "it may still serve on the other half, so its addresses stay unserved until it returns or "
                "is fenced";
    } else {
        log(fx, LogLevel::Notice, nm + " left the membership (" + std::string(to_string(why)) +
                                        "); fencing is off, its addresses may move at once");
    }
    if (!d.why.empty() && !d.serving.empty()) {
        log(fx, LogLevel::Notice, d.why);
        departed_[proc.node] = d;
    }
}

bool PeerTable::on_info(double now, Peer& p, const InfoMsg& m, const std::string& group, Effects& fx) {
    if (!p.counted) {
        const Peer* other = counted(m.node);
        if (other && !(other->process == p.process)) {
            if (!p.reported) {
                p.reported = true;
                log(fx, LogLevel::Warning, "a second raisd for group " + group + " on " + m.name + " (pid " +
                                                 std::to_string(p.process.pid) + ") is ignored; pid " +
                                                 std::to_string(other->process.pid) + " keeps the place");
            }
            return false;
        }
        p.counted = true;
        if (!(p.process == self_))
            log(fx, LogLevel::Info, m.name + " (node " + std::to_string(m.node) + ") joined the group");
    }
    names_[m.node] = m.name;
    if (p.process == self_) own_info_at_ = now;
    p.info = m;
    p.has_info = true;
    p.last_info_at = now;
    p.fresh = true;
    p.pending.erase(std::remove_if(p.pending.begin(), p.pending.end(),
                                   [&](const Pending& x) { return x.index != kInFlight && x.index <= m.cmd_seen; }),
                    p.pending.end());
    if (departed_.erase(m.node)) log(fx, LogLevel::Info, m.name + " is back; it reports what it holds");
    return true;
}

void PeerTable::note_command(std::uint32_t dest, bool acquire, const ServiceAddress& a, std::uint32_t index) {
    for (auto& [proc, p] : peers_) {
        if (proc.node != dest || !p.counted) continue;
        if (index != kInFlight) {
            // The delivery of a command this member sent itself: now it has an index.
            auto it = std::find_if(p.pending.begin(), p.pending.end(), [&](const Pending& x) {
                return x.index == kInFlight && x.acquire == acquire && x.address == a;
            });
            if (it != p.pending.end()) {
                it->index = index;
                continue;
            }
        }
        p.pending.push_back({acquire, a, index});
    }
}

void PeerTable::on_tick(double now, Effects& fx) {
    for (auto& [proc, p] : peers_) {
        if (p.counted || p.reported || now - p.seen_at < 3 * interval_) continue;
        p.reported = true;
        log(fx, LogLevel::Warning, "CPG member node " + std::to_string(proc.node) + " pid " +
                                         std::to_string(proc.pid) + " has sent no Info in " + secs(now - p.seen_at) +
                                         " (a stray client or another version); ignoring it");
    }
    for (auto it = departed_.begin(); it != departed_.end();) {
        if (now >= it->second.until) {
            log(fx, LogLevel::Notice, "restart_grace passed for " + it->second.name + "; its addresses may move");
            it = departed_.erase(it);
        } else {
            ++it;
        }
    }
}

// ---------------------------------------------------------------- fencing

void PeerTable::on_fenced(double now, const in::Fenced& f, Effects& fx) {
    for (auto it = departed_.begin(); it != departed_.end(); ++it) {
        Departed& d = it->second;
        if (!(f.node && d.node == f.node) && !(!f.name.empty() && d.name == f.name)) continue;
        if (d.awaiting_fence)
            log(fx, LogLevel::Notice, "fencing confirmed " + d.name + " down; its addresses may move");
        for (const auto& h : d.serving) fenced_serving_[h.address] = now;
        departed_.erase(it);
        return;
    }
    // Not departed (yet): the fencer may report before CPG tells us the node
    // left. Remember it for a while, so that departure need not wait.
    std::string name = !f.name.empty() ? f.name : name_of(f.node);
    if (name.empty()) return;
    fenced_at_[name] = now;
    for (auto it = fenced_at_.begin(); it != fenced_at_.end();)
        it = now - it->second >= kFenceMemory ? fenced_at_.erase(it) : std::next(it);
}

bool PeerTable::take_confirmed_gone(double now, const ServiceAddress& a) {
    for (auto it = fenced_serving_.begin(); it != fenced_serving_.end();)
        it = now - it->second >= kFenceMemory ? fenced_serving_.erase(it) : std::next(it);
    return fenced_serving_.erase(a) > 0;
}

void PeerTable::on_fencing_mode(const in::FencingMode& f, Effects& fx) {
    if (f.two_node != two_node_) {
        two_node_ = f.two_node;
        if (two_node_)
            log(fx, LogLevel::Notice, "corosync two_node cluster: both halves of a split stay quorate, so a "
                                        "departed peer's addresses move only after a fence confirms it down");
    }
    if (f.active == fencing_active_) return;
    fencing_active_ = f.active;
    log(fx, LogLevel::Notice, std::string(f.active ? "fencing on: " : "fencing off: ") + f.why);
    // In a two_node cluster nothing but a fence (or the peer's return) ends the wait.
    if (f.active || two_node_) return;
    // Nothing will confirm a fence any more: stop waiting for one.
    for (auto it = departed_.begin(); it != departed_.end();) {
        if (!it->second.awaiting_fence) {
            ++it;
            continue;
        }
        log(fx, LogLevel::Notice, it->second.name + ": no longer waiting for fencing; its addresses may move");
        it = departed_.erase(it);
    }
}

// ---------------------------------------------------------------- queries

double PeerTable::quiet_for(const Peer& p) const {
    // Silence is measured in ring time: how long our own Infos kept coming
    // back while the peer's did not. While corosync re-forms the ring
    // nobody's messages arrive (seconds after a crash), and that says
    // nothing about any peer; and after our own stall we start afresh.
    double ring_now = std::max(own_info_at_, listening_since_);
    return ring_now - std::max(p.last_info_at, listening_since_);
}

bool PeerTable::silent(const Peer& p) const {
    if (p.process == self_) return false;
    return p.counted && quiet_for(p) > 3 * interval_;
}

std::uint32_t PeerTable::leader() const {
    std::uint32_t best = 0;
    for (const auto& [proc, p] : peers_)
        if (p.counted && !silent(p) && (best == 0 || proc.node < best)) best = proc.node;
    return best;
}

bool PeerTable::self_leads() const {
    const Peer* me = counted(self_.node);
    return me && me->process == self_ && leader() == self_.node;
}

bool PeerTable::any_foreign() const {
    for (const auto& [proc, p] : peers_)
        if (p.foreign) return true;
    return false;
}

bool PeerTable::heard_everyone(double now, bool synced) const {
    // A ring that grew: the other side's processes are about to appear in
    // CPG, and they may hold addresses (a healed partition).
    if (!awaited_nodes_.empty()) return false;
    for (const auto& [proc, p] : peers_) {
        if (p.counted && !p.fresh) return false;
        // A process that appeared in the view and has not spoken yet: a
        // newcomer waits for every CPG member (otherwise it would count only
        // itself and plan alone), and everyone waits for a process that just
        // appeared, which may be the other side of a healed partition still
        // serving its addresses. One that stays silent for 3 x interval is a
        // stray and no longer waited for.
        if (!p.counted && !p.reported && (!synced || now - p.seen_at < 3 * interval_)) return false;
    }
    return true;
}

double PeerTable::next_departure_end() const {
    double t = kNever;
    for (const auto& [n, d] : departed_) t = std::min(t, d.until);
    return t;
}

PeerTable::Peer* PeerTable::find(const Process& p) {
    auto it = peers_.find(p);
    return it == peers_.end() ? nullptr : &it->second;
}

const PeerTable::Peer* PeerTable::counted(std::uint32_t node) const {
    for (const auto& [proc, p] : peers_)
        if (proc.node == node && p.counted) return &p;
    return nullptr;
}

std::string PeerTable::name_of(std::uint32_t node) const {
    auto it = names_.find(node);
    return it == names_.end() ? "node" + std::to_string(node) : it->second;
}

std::uint32_t PeerTable::id_of(const std::string& name) const {
    for (const auto& [id, n] : names_)
        if (n == name && counted(id)) return id;
    return 0;
}

// ---------------------------------------------------------------- views

HostView PeerTable::host_of(const Peer& p, const std::string& digest) const {
    HostView h;
    h.node = p.info.name;
    h.id = p.process.node;
    h.ok = p.info.ok;
    h.quiesced = p.info.quiesced;
    h.stopping = p.info.stopping;
    h.config_match = p.info.digest == digest;
    h.load = p.info.load;
    h.capacity = p.info.capacity;
    h.serving = p.info.serving;
    for (const auto& x : p.pending) {
        auto it = std::find_if(h.serving.begin(), h.serving.end(),
                               [&](const Holding& s) { return s.address == x.address; });
        if (x.acquire) {
            if (it == h.serving.end()) h.serving.push_back({x.address, AddressState::Acquiring});
        } else if (it != h.serving.end()) {
            it->state = AddressState::Releasing;
        }
    }
    return h;
}

std::map<ServiceAddress, std::uint32_t> PeerTable::fixed_addresses() const {
    std::map<ServiceAddress, std::uint32_t> fixed;
    for (const auto& [proc, p] : peers_)
        if (p.counted && p.has_info)
            for (const auto& a : p.info.fixed) fixed.emplace(a, proc.node);
    return fixed;
}

void PeerTable::add_hosts(View& v, const std::map<ServiceAddress, std::uint32_t>& fixed,
                          const std::string& digest) const {
    for (const auto& [proc, p] : peers_) {
        if (!p.counted || !p.has_info) continue;
        HostView h = host_of(p, digest);
        if (!fixed.empty())
            h.serving.erase(std::remove_if(h.serving.begin(), h.serving.end(),
                                           [&](const Holding& x) {
                                               auto f = fixed.find(x.address);
                                               return f != fixed.end() && f->second == proc.node;
                                           }),
                            h.serving.end());
        if (silent(p)) {
            double quiet = quiet_for(p);
            if (quiet >= restart_grace_) continue;  // gone: what it held is free
            h.departed = true;
            h.departed_why = "silent for " + secs(quiet);
        }
        v.hosts.push_back(std::move(h));
    }
    for (const auto& [node, d] : departed_) {
        bool present = false;
        for (const auto& h : v.hosts) present = present || h.id == node;
        if (present) continue;
        HostView h;
        h.node = d.name;
        h.id = node;
        h.departed = true;
        h.departed_why = d.why;
        h.serving = d.serving;
        v.hosts.push_back(std::move(h));
    }
}

std::vector<PeerStatus> PeerTable::statuses(const std::string& digest) const {
    std::vector<PeerStatus> out;
    for (const auto& [proc, p] : peers_) {
        PeerStatus ps;
        ps.process = proc;
        ps.name = p.has_info ? p.info.name : name_of(proc.node);
        ps.counted = p.counted;
        ps.silent = silent(p);
        if (p.has_info) ps.host = host_of(p, digest);
        out.push_back(ps);
    }
    for (const auto& [node, d] : departed_) {
        PeerStatus ps;
        ps.process = {node, 0};
        ps.name = d.name;
        ps.departed = true;
        ps.departed_why = d.why;
        ps.host.node = d.name;
        ps.host.id = node;
        ps.host.serving = d.serving;
        out.push_back(ps);
    }
    return out;
}

}  // namespace rais
