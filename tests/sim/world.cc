#include "sim/world.h"

#include "core/text.h"

#include <algorithm>
#include <cstdio>
#include <limits>

namespace raissim {

using namespace rais;

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
}

struct World::Process {
    std::uint32_t node = 0;
    std::string group;
    std::uint32_t pid = 0;
    std::uint64_t join_seq = 0;           // CPG order
    std::unique_ptr<Member> member;       // null for a stray CPG client
    bool alive = true;
    bool exited = false;                  // left gracefully
    bool hung = false;
    bool joined = false;                  // has received a view containing itself
    bool ever_viewed = false;
    struct Queued {
        Input input;
        std::string forged;
    };
    std::vector<Queued> backlog;          // inputs while hung
    bool overdue_reported = false;        // the wake invariant broke once: said once
    std::uint64_t unsent_seen = 0;        // unsent_messages already reported
    std::vector<Process*> last_view;
    double wake_at = kInf;
    std::uint64_t wake_gen = 0;
};

struct World::Node {
    std::uint32_t id = 0;
    std::string name;
    bool up = false;
    int part = 0;
    std::uint64_t ring = 0;
    bool health = true;
    struct Entry {
        std::string group;
        double expiry;
    };
    std::map<ServiceAddress, Entry> iface;
    std::map<std::string, bool> quiesce;  // persisted under /run/rais
    std::map<std::string, std::pair<double, double>> load;
    std::vector<std::unique_ptr<Process>> procs;  // every process ever started here
};

struct World::Group {
    std::string name;
    GroupConfig cfg;
};

World::World(std::uint64_t seed, WorldOptions opts)
    : seed_(seed), opts_(opts), random_(seed), wall_start_(std::chrono::steady_clock::now()) {}
World::~World() = default;

double World::wall_elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start_).count();
}

std::uint32_t World::add_node(const std::string& name) {
    auto n = std::make_unique<Node>();
    n->id = static_cast<std::uint32_t>(nodes_.size() + 1);
    n->name = name;
    nodes_.push_back(std::move(n));
    return nodes_.back()->id;
}

void World::add_group(const GroupConfig& cfg) {
    auto g = std::make_unique<Group>();
    g->name = cfg.group;
    g->cfg = cfg;
    group_names_.push_back(cfg.group);
    for (const auto& p : cfg.addresses) configured_.insert(p.address);
    groups_[cfg.group] = std::move(g);
}

std::optional<std::uint32_t> World::node_id(const std::string& name) const {
    for (const auto& n : nodes_)
        if (n->name == name) return n->id;
    return std::nullopt;
}

const std::string& World::node_name(std::uint32_t id) const { return nodes_.at(id - 1)->name; }

std::vector<std::uint32_t> World::node_ids() const {
    std::vector<std::uint32_t> v;
    for (const auto& n : nodes_) v.push_back(n->id);
    return v;
}

std::string World::when() const { return format_number("%8.3f", now_); }

void World::note(const std::string& line) { trace_.push_back(when() + " " + line); }

std::string World::who(const Process& p) const {
    return nodes_.at(p.node - 1)->name + " raisd " + p.group + " pid " + std::to_string(p.pid);
}

void World::violation(const std::string& what) {
    // A broken invariant tends to repeat every step: the first ones tell.
    if (violations_.size() < 50) violations_.push_back(when() + " " + what);
}

void World::halt(const std::string& why, bool timeout) {
    if (halted_) return;
    halted_ = true;
    timed_out_ = timeout;
    halt_reason_ = why;
    note("simulation stopped: " + why);
    violations_.push_back(when() + " " + why);
    queue_ = {};
}

std::vector<std::string> World::take_violations() {
    auto v = std::move(violations_);
    violations_.clear();
    return v;
}

void World::at(double t, std::function<void()> fn) { queue_.push(Item{std::max(t, now_), ++seq_, std::move(fn)}); }

World::Process* World::find(std::uint32_t node, const std::string& group) {
    auto& n = *nodes_.at(node - 1);
    for (auto it = n.procs.rbegin(); it != n.procs.rend(); ++it)
        if ((*it)->group == group && (*it)->alive && (*it)->member) return it->get();
    return nullptr;
}

const World::Process* World::find(std::uint32_t node, const std::string& group) const {
    return const_cast<World*>(this)->find(node, group);
}

bool World::node_up(std::uint32_t node) const { return nodes_.at(node - 1)->up; }

int World::partition_of(std::uint32_t node) const {
    const auto& n = *nodes_.at(node - 1);
    return n.up ? n.part : -1;
}

bool World::quorate(std::uint32_t node) const {
    int p = partition_of(node);
    if (p < 0) return false;
    std::size_t in = 0;
    for (const auto& n : nodes_) in += n->up && n->part == p;
    return in * 2 > nodes_.size();
}

bool World::process_alive(std::uint32_t node, const std::string& group) const { return find(node, group) != nullptr; }

bool World::process_hung(std::uint32_t node, const std::string& group) const {
    const Process* p = find(node, group);
    return p && p->hung;
}

const Member* World::member(std::uint32_t node, const std::string& group) const {
    const Process* p = find(node, group);
    return p ? p->member.get() : nullptr;
}

std::vector<std::uint32_t> World::holders(const ServiceAddress& a) const {
    std::vector<std::uint32_t> out;
    for (const auto& n : nodes_)
        if (n->up && n->iface.count(a) && n->iface.at(a).expiry > now_) out.push_back(n->id);
    return out;
}

// ------------------------------------------------------------------ feeding

void World::feed(Process& p, const Input& in, const std::string& forged) {
    if (!p.alive || !p.member) return;
    if (p.hung) {
        p.backlog.push_back({in, forged});
        return;
    }
    // Whatever was already due is handled by a Tick first, so what the
    // forged input causes is told apart from what time causes (a lifetime
    // running out, a plan that became possible).
    if (!forged.empty()) step(p, in::Tick{}, "");
    step(p, in, forged);
}

void World::step(Process& p, const Input& in, const std::string& forged) {
    if (!p.alive) return;
    Member& m = *p.member;
    bool quiesced = m.quiesced();
    std::map<ServiceAddress, std::string> pins;
    if (!forged.empty()) pins = m.status(now_).pins;
    Effects fx = m.step(now_, in);
    if (!forged.empty()) check_forged(p, fx, forged, quiesced, pins);
    if (!p.overdue_reported) {
        // The busy-loop guard: a deadline a Tick did not clear would have the
        // shell wake again at once, forever.
        std::string why;
        if (m.wake_overdue())
            why = "a deadline is overdue after this input (wake_overdue)";
        else if (std::holds_alternative<in::Tick>(in) && m.next_wake() <= now_)
            why = "next_wake() " + format_number("%.6f", m.next_wake()) + " is not after the Tick it just handled";
        if (!why.empty()) {
            p.overdue_reported = true;
            violation(who(p) + ": " + why + "; the shell would spin");
        }
    }
    bool error_logged = false;
    for (const auto& e : fx)
        if (auto* lg = std::get_if<out::Log>(&e); lg && lg->level >= LogLevel::Error) error_logged = true;
    apply(p, std::move(fx));
    if (error_logged) check_unsent(p);
}

void World::check_forged(Process& p, const Effects& fx, const std::string& forged, bool quiesced_before,
                         const std::map<ServiceAddress, std::string>& pins_before) {
    const std::string w = who(p);
    for (const auto& e : fx) {
        if (auto* pl = std::get_if<out::Plumb>(&e))
            violation("forged " + forged + " made " + w + " plumb " + pl->address.str());
        else if (auto* up = std::get_if<out::Unplumb>(&e))
            violation("forged " + forged + " made " + w + " unplumb " + up->address.str());
    }
    if (p.member->quiesced() != quiesced_before)
        violation("forged " + forged + " made " + w + (quiesced_before ? " unquiesce" : " quiesce"));
    if (p.member->status(now_).pins != pins_before) violation("forged " + forged + " changed the pins of " + w);
}

void World::check_unsent(Process& p) {
    if (!p.member) return;
    std::uint64_t n = p.member->status(now_).unsent_messages;
    if (n <= p.unsent_seen) return;
    violation(who(p) + " built " + std::to_string(n - p.unsent_seen) +
              " message(s) its peers would drop and did not send them (unsent_messages " + std::to_string(n) + ")");
    p.unsent_seen = n;
}

void World::schedule_wake(Process& p) {
    if (!p.alive || !p.member || p.hung) return;
    double w = p.member->next_wake();
    if (w >= p.wake_at) return;
    p.wake_at = w;
    std::uint64_t gen = ++p.wake_gen;
    Process* pp = &p;
    at(w, [this, pp, gen] {
        if (pp->wake_gen != gen || !pp->alive || pp->hung) return;
        pp->wake_at = kInf;
        feed(*pp, in::Tick{});
        schedule_wake(*pp);
    });
}

std::vector<World::Process*> World::cpg_view(const std::string& group, int part) const {
    std::vector<Process*> v;
    for (const auto& n : nodes_) {
        if (!n->up || n->part != part) continue;
        for (const auto& p : n->procs)
            if (p->group == group && p->alive) v.push_back(p.get());
    }
    std::sort(v.begin(), v.end(), [](const Process* a, const Process* b) { return a->join_seq < b->join_seq; });
    return v;
}

void World::apply(Process& p, Effects fx) {
    Node& n = *nodes_.at(p.node - 1);
    const std::string gtag = groups_.size() > 1 ? p.group + " " : "";
    for (auto& e : fx) {
        if (auto* s = std::get_if<out::Send>(&e)) {
            // Decoded here once, exactly as each peer will decode it.
            auto decoded = decode(s->bytes.data(), s->bytes.size());
            if (auto* err = std::get_if<DecodeError>(&decoded)) {
                violation(who(p) + " sent " + s->what + " (" +
                          std::to_string(s->bytes.size()) + " bytes) that its peers drop: " + err->what);
                continue;
            }
            if (!p.joined || !n.up) {
                violation(who(p) + " sent " + s->what +
                          (n.up ? " before CPG delivered it a view: undeliverable" : " from a node that is down"));
                continue;
            }
            std::uint64_t ring = n.ring;
            int part = n.part;
            Process* sender = &p;
            auto bytes = std::make_shared<std::vector<std::uint8_t>>(std::move(s->bytes));
            at(now_ + opts_.latency, [this, ring, part, sender, bytes] {
                // Agreed order: one queue, one order; delivered within the
                // sender's ring only (virtual synchrony).
                for (Process* r : cpg_view(sender->group, part)) {
                    if (!r->joined || nodes_.at(r->node - 1)->ring != ring) continue;
                    feed(*r, in::Delivered{{sender->node, sender->pid}, *bytes});
                    schedule_wake(*r);
                }
            });
        } else if (auto* pl = std::get_if<out::Plumb>(&e)) {
            if (p.member && p.member->quiesced())
                violation("quiesced host " + n.name + " was told to plumb " + pl->address.str());
            double delay = opts_.action + (pl->probe ? p.member->config().arp_probe_ms / 1000.0 : 0);
            Process* pp = &p;
            ServiceAddress a = pl->address;
            bool probe = pl->probe;
            double lifetime = pl->lifetime;
            at(now_ + delay, [this, pp, a, probe, lifetime] {
                if (!pp->alive) return;
                Node& nn = *nodes_.at(pp->node - 1);
                std::string answered;
                if (probe) {
                    if (outside_.count(a)) answered = "a machine outside the group";
                    for (const auto& o : nodes_)
                        if (o.get() != &nn && o->up && o->part == nn.part && o->iface.count(a) &&
                            o->iface.at(a).expiry > now_)
                            answered = o->name;
                }
                if (!answered.empty()) {
                    feed(*pp, in::ActionDone{a, true, false, "ARP probe for " + a.ip() + " answered by " + answered});
                } else {
                    if (!configured_.count(a) && !outside_.count(a))
                        violation("the interface of " + nn.name + " now holds " + a.str() +
                                  ", which no configuration of any group names");
                    nn.iface[a] = {pp->group, now_ + lifetime};
                    at(now_ + lifetime, [this] { expire_addresses(); });
                    feed(*pp, in::ActionDone{a, true, true, ""});
                }
                schedule_wake(*pp);
            });
        } else if (auto* up = std::get_if<out::Unplumb>(&e)) {
            Process* pp = &p;
            ServiceAddress a = up->address;
            at(now_ + opts_.action, [this, pp, a] {
                Node& nn = *nodes_.at(pp->node - 1);
                nn.iface.erase(a);
                if (!pp->alive) return;
                feed(*pp, in::ActionDone{a, false, true, ""});
                schedule_wake(*pp);
            });
        } else if (auto* rf = std::get_if<out::Refresh>(&e)) {
            Process* pp = &p;
            for (const auto& a : rf->addresses) {
                auto it = n.iface.find(a);
                if (it != n.iface.end() && it->second.expiry > now_) {
                    it->second.expiry = now_ + rf->lifetime;
                    at(now_ + rf->lifetime, [this] { expire_addresses(); });
                } else {
                    // As the real backend does (address_sequencer: a held
                    // address missing at refresh is declared lost): the
                    // member learns that the kernel no longer has it.
                    at(now_ + opts_.action, [this, pp, a] {
                        if (!pp->alive) return;
                        feed(*pp, in::AddressLost{a, "it was not on the interface at refresh"});
                        schedule_wake(*pp);
                    });
                }
            }
        } else if (auto* em = std::get_if<out::Emit>(&e)) {
            const Event& ev = em->event;
            std::string line = gtag + (ev.node.empty() ? n.name + ":" : ev.node) + " " + to_string(ev.kind);
            if (ev.address) line += " " + ev.address->str();
            line += ": " + ev.reason;
            note(line);
        } else if (auto* lg = std::get_if<out::Log>(&e)) {
            if (opts_.trace_logs && lg->level >= LogLevel::Notice) note(gtag + n.name + " log: " + lg->text);
            else if (lg->level >= LogLevel::Warning && lg->text.find("dropped") != std::string::npos)
                note(gtag + n.name + " warning: " + lg->text);
        } else if (auto* dp = std::get_if<out::DnsPublish>(&e)) {
            // A DNS server that takes every update after the message latency.
            Process* pp = &p;
            auto want = dp->addresses;
            at(now_ + opts_.latency, [this, pp, want] {
                if (!pp->alive) return;
                if (zones_[pp->group] != want) {
                    std::string list;
                    for (const auto& a : want) list += " " + a.ip();
                    note((groups_.size() > 1 ? pp->group + " " : "") + "dns server: zone now" +
                         (list.empty() ? " empty" : list));
                }
                zones_[pp->group] = want;
                feed(*pp, in::DnsResult{true, false, "NOERROR", want});
                schedule_wake(*pp);
            });
        } else if (auto* pq = std::get_if<out::PersistQuiesce>(&e)) {
            n.quiesce[p.group] = pq->quiesced;
        } else if (auto* rp = std::get_if<out::Reply>(&e)) {
            note(gtag + n.name + " raisctl: " + rp->message + (rp->ok ? "" : " (exit 1)"));
        } else if (auto* ex = std::get_if<out::Exit>(&e)) {
            note(gtag + n.name + " raisd exits: " + ex->why);
            p.exited = true;
            p.alive = false;
            membership_changed(false, opts_.latency);
        }
    }
}

std::set<ServiceAddress> World::zone(const std::string& group) const {
    auto it = zones_.find(group);
    return it == zones_.end() ? std::set<ServiceAddress>{} : it->second;
}

void World::expire_addresses() {
    for (auto& n : nodes_)
        for (auto it = n->iface.begin(); it != n->iface.end();) {
            if (it->second.expiry <= now_) {
                note("kernel: " + it->first.str() + " expired on " + n->name + " (lifetime ran out)");
                it = n->iface.erase(it);
            } else {
                ++it;
            }
        }
}

// ------------------------------------------------------------------ membership

void World::membership_changed(bool totem, double delay) {
    at(now_ + delay, [this, totem] {
        std::set<int> parts;
        for (const auto& n : nodes_)
            if (n->up) parts.insert(n->part);
        std::map<int, std::uint64_t> rings;
        if (totem) {
            for (int p : parts) rings[p] = ++ring_;
            for (auto& n : nodes_)
                if (n->up) n->ring = rings[n->part];
        }
        auto deliver_quorum = [this](int part, std::uint64_t ring) {
            std::size_t in = 0;
            for (const auto& n : nodes_) in += n->up && n->part == part;
            bool q = in * 2 > nodes_.size();
            for (auto& n : nodes_) {
                if (!n->up || n->part != part || n->ring != ring) continue;
                auto deliver = [this, q, ring, id = n->id] {
                    for (auto& p : nodes_.at(id - 1)->procs)
                        if (p->alive && p->member) {
                            feed(*p, in::Quorum{ring, q});
                            schedule_wake(*p);
                        }
                };
                auto slow = opts_.slow_quorum.find(n->name);
                if (slow != opts_.slow_quorum.end()) at(now_ + slow->second, deliver);
                else deliver();
            }
        };
        if (totem && opts_.quorum_order == QuorumOrder::Before)
            for (int p : parts) deliver_quorum(p, rings[p]);

        for (const auto& gname : group_names_) {
            for (int part : parts) {
                auto view = cpg_view(gname, part);
                for (Process* r : view) {
                    bool changed = view != r->last_view;
                    if (!changed && !totem) continue;
                    in::Membership m;
                    m.ring = nodes_.at(r->node - 1)->ring;
                    for (const auto& nn : nodes_)
                        if (nn->up && nn->part == part) m.nodes.push_back(nn->id);
                    for (Process* x : view) m.members.push_back({x->node, x->pid});
                    for (Process* x : r->last_view) {
                        if (std::find(view.begin(), view.end(), x) != view.end()) continue;
                        const Node& xn = *nodes_.at(x->node - 1);
                        ChangeReason why = ChangeReason::NodeDown;
                        if (x->exited) why = ChangeReason::Leave;
                        else if (xn.up && xn.part == part) why = ChangeReason::ProcDown;
                        m.left.push_back({{x->node, x->pid}, why});
                    }
                    for (Process* x : view) {
                        if (std::find(r->last_view.begin(), r->last_view.end(), x) != r->last_view.end()) continue;
                        m.joined.push_back({{x->node, x->pid}, x->ever_viewed && x != r ? ChangeReason::NodeUp
                                                                                         : ChangeReason::Join});
                    }
                    r->last_view = view;
                    r->joined = true;
                    feed(*r, m);
                    schedule_wake(*r);
                }
                for (Process* r : view) r->ever_viewed = true;
            }
        }
        if (totem && opts_.quorum_order == QuorumOrder::After) {
            for (int p : parts) {
                std::uint64_t ring = rings[p];
                at(now_ + opts_.quorum_delay, [this, deliver_quorum, p, ring] { deliver_quorum(p, ring); });
            }
        }
        if (totem && opts_.fencing && opts_.auto_fence >= 0) {
            // Pacemaker in the quorate partition fences every node outside it.
            int qp = -1;
            for (int p : parts) {
                std::size_t in = 0;
                for (const auto& n : nodes_) in += n->up && n->part == p;
                if (in * 2 > nodes_.size()) qp = p;
            }
            if (qp >= 0)
                for (auto& n : nodes_)
                    if (!(n->up && n->part == qp)) {
                        std::uint32_t id = n->id;
                        at(now_ + opts_.auto_fence, [this, id] { fence(id); });
                    }
        }
    });
}

// ------------------------------------------------------------------ operations

void World::boot(std::uint32_t node) {
    Node& n = *nodes_.at(node - 1);
    if (n.up) return;
    n.up = true;
    n.ring = 0;
    n.iface.clear();
    note("boot " + n.name);
    // corosync forms its ring first; the resource (raisd) starts after.
    membership_changed(true, opts_.latency * 10);
    at(now_ + opts_.latency * 20, [this, node] {
        for (const auto& g : group_names_) start(node, g);
    });
}

void World::crash(std::uint32_t node) {
    Node& n = *nodes_.at(node - 1);
    if (!n.up) return;
    n.up = false;
    n.iface.clear();
    for (auto& p : n.procs) p->alive = false;
    note("crash " + n.name);
    membership_changed(true, opts_.detect);
}

void World::kill(std::uint32_t node, const std::string& group) {
    Process* p = find(node, group);
    if (!p) return;
    p->alive = false;
    note("kill -9 raisd " + group + " on " + nodes_.at(node - 1)->name);
    membership_changed(false, opts_.procdown);
}

void World::start(std::uint32_t node, const std::string& group) {
    Node& n = *nodes_.at(node - 1);
    if (!n.up || n.ring == 0 || find(node, group)) return;
    const Group& g = *groups_.at(group);
    auto p = std::make_unique<Process>();
    p->node = node;
    p->group = group;
    p->pid = ++next_pid_;
    p->join_seq = ++seq_;
    MemberSetup s;
    s.config = g.cfg;
    s.self = {node, p->pid};
    s.name = n.name;
    s.fencing_active = opts_.fencing;
    s.quiesced = n.quiesce[group];
    s.seed = seed_ * 1000003u + p->pid;
    for (const auto& [a, e] : n.iface)
        if (e.group == group && e.expiry > now_) s.found.push_back(a);
    // A restarted daemon keeps its node's reloaded configuration.
    for (auto it = n.procs.rbegin(); it != n.procs.rend(); ++it)
        if ((*it)->group == group && (*it)->member) {
            s.config = (*it)->member->config();
            break;
        }
    p->member = std::make_unique<Member>(std::move(s));
    Process& ref = *p;
    n.procs.push_back(std::move(p));
    apply(ref, ref.member->start(now_));
    if (n.ring) feed(ref, in::Quorum{n.ring, quorate(node)});
    if (n.load.count(group)) feed(ref, in::LoadSample{n.load[group].first, n.load[group].second});
    // Health tests run every test_interval while the process lives.
    std::uint32_t pid = ref.pid;
    double ti = ref.member->config().test_interval_ms / 1000.0;
    auto loop = std::make_shared<std::function<void()>>();
    Process* pp = &ref;
    *loop = [this, pp, pid, ti, loop] {
        if (!pp->alive || pp->pid != pid) return;
        Node& nn = *nodes_.at(pp->node - 1);
        if (!pp->hung) feed(*pp, in::TestResult{nn.health, nn.health ? "" : "exec:/usr/lib/rais/check failed (exit 1)"});
        schedule_wake(*pp);
        at(now_ + ti, *loop);
    };
    at(now_ + ti, *loop);
    membership_changed(false, opts_.latency);
}

void World::hang(std::uint32_t node, const std::string& group) {
    Process* p = find(node, group);
    if (!p || p->hung) return;
    p->hung = true;
    note("SIGSTOP raisd " + group + " on " + nodes_.at(node - 1)->name);
}

void World::resume(std::uint32_t node, const std::string& group) {
    Process* p = find(node, group);
    if (!p || !p->hung) return;
    p->hung = false;
    note("SIGCONT raisd " + group + " on " + nodes_.at(node - 1)->name);
    auto backlog = std::move(p->backlog);
    p->backlog.clear();
    // Its main loop dispatches what queued up on its fds, then its timers.
    for (auto& q : backlog) feed(*p, q.input, q.forged);
    feed(*p, in::Tick{});
    p->wake_at = kInf;
    schedule_wake(*p);
}

void World::partition(const std::vector<std::set<std::uint32_t>>& parts) {
    int next = 1;
    std::string desc;
    for (auto& n : nodes_) n->part = -1;
    for (const auto& s : parts) {
        int idx = next++;
        if (!desc.empty()) desc += " | ";
        for (auto id : s) {
            nodes_.at(id - 1)->part = idx;
            desc += nodes_.at(id - 1)->name + " ";
        }
    }
    for (auto& n : nodes_)
        if (n->part < 0) n->part = next++;
    note("partition " + desc);
    membership_changed(true, opts_.detect);
}

void World::heal() {
    for (auto& n : nodes_) n->part = 0;
    note("heal");
    membership_changed(true, opts_.detect);
}

void World::fence(std::uint32_t node) {
    Node& n = *nodes_.at(node - 1);
    note("fence " + n.name + " (confirmed)");
    if (n.up) {
        n.up = false;
        n.iface.clear();
        for (auto& p : n.procs) p->alive = false;
        membership_changed(true, opts_.detect);
    }
    for (auto& o : nodes_)
        if (o->up)
            for (auto& p : o->procs)
                if (p->alive && p->member) {
                    feed(*p, in::Fenced{node, ""});
                    schedule_wake(*p);
                }
}

void World::command(std::uint32_t node, const std::string& group, const in::Command& c) {
    Process* p = find(node, group);
    if (!p) {
        note(nodes_.at(node - 1)->name + " raisctl: no group " + group + " running here (exit 3)");
        return;
    }
    feed(*p, c);
    schedule_wake(*p);
}

void World::set_health(std::uint32_t node, bool ok) {
    nodes_.at(node - 1)->health = ok;
    note(std::string(ok ? "service recovers on " : "service fails on ") + nodes_.at(node - 1)->name);
}

void World::set_load(std::uint32_t node, const std::string& group, double load, double capacity) {
    nodes_.at(node - 1)->load[group] = {load, capacity};
    if (Process* p = find(node, group)) {
        feed(*p, in::LoadSample{load, capacity});
        schedule_wake(*p);
    }
}

void World::reload(std::uint32_t node, const std::string& group, const GroupConfig& cfg) {
    note("reload " + group + " on " + nodes_.at(node - 1)->name);
    for (const auto& p : cfg.addresses) configured_.insert(p.address);
    if (Process* p = find(node, group)) {
        feed(*p, in::Reload{cfg});
        schedule_wake(*p);
    }
}

void World::stray(std::uint32_t node, const std::string& group) {
    Node& n = *nodes_.at(node - 1);
    if (!n.up) return;
    auto p = std::make_unique<Process>();
    p->node = node;
    p->group = group;
    p->pid = ++next_pid_;
    p->join_seq = ++seq_;
    n.procs.push_back(std::move(p));
    note("a stray CPG client joins " + group + " on " + n.name + " and never sends Info");
    membership_changed(false, opts_.latency);
}

World::Process& World::stray_on(std::uint32_t node, const std::string& group, bool* created) {
    Node& n = *nodes_.at(node - 1);
    *created = false;
    for (auto& p : n.procs)
        if (p->group == group && p->alive && !p->member) return *p;
    stray(node, group);
    *created = true;
    return *n.procs.back();
}

void World::multicast_from_stray(Process& stray, bool created, std::vector<std::uint8_t> bytes,
                                 const std::string& forged) {
    Process* sender = &stray;
    auto data = std::make_shared<std::vector<std::uint8_t>>(std::move(bytes));
    // A new client sends once CPG has shown it the group (its join first).
    double delay = created ? opts_.latency * 20 : opts_.latency;
    at(now_ + delay, [this, sender, data, forged] {
        Node& sn = *nodes_.at(sender->node - 1);
        if (!sender->alive || !sn.up || !sender->joined) return;
        for (Process* r : cpg_view(sender->group, sn.part)) {
            if (!r->joined || nodes_.at(r->node - 1)->ring != sn.ring) continue;
            feed(*r, in::Delivered{{sender->node, sender->pid}, *data}, forged);
            schedule_wake(*r);
        }
    });
}

void World::garbage(std::uint32_t node, const std::string& group, std::vector<std::uint8_t> bytes) {
    Node& n = *nodes_.at(node - 1);
    if (!n.up) return;
    // Sent by a joined stray client of that node (created if needed).
    bool created = false;
    Process& sender = stray_on(node, group, &created);
    note("garbage (" + std::to_string(bytes.size()) + " bytes) multicast into " + group + " from " + n.name);
    multicast_from_stray(sender, created, std::move(bytes), "garbage from " + n.name);
}

void World::forge(std::uint32_t node, const std::string& group, const Message& m, const std::string& what) {
    Node& n = *nodes_.at(node - 1);
    if (!n.up) return;
    bool created = false;
    Process& sender = stray_on(node, group, &created);
    auto bytes = encode(m);
    // Hostile but well formed: a message the codec rejects would test the
    // decoder, not the trust rules.
    auto back = decode(bytes.data(), bytes.size());
    if (auto* err = std::get_if<DecodeError>(&back)) {
        violation("simulator bug: forged " + what + " does not decode: " + err->what);
        return;
    }
    std::string desc = what + " (from node " + std::to_string(node) + " pid " + std::to_string(sender.pid) + ")";
    note((groups_.size() > 1 ? group + " " : "") + "a stray client on " + n.name + " forges " + what);
    multicast_from_stray(sender, created, std::move(bytes), desc);
}

void World::run_for(double seconds) {
    if (halted_) return;
    double end = now_ + seconds;
    while (!queue_.empty() && queue_.top().time <= end) {
        Item it = queue_.top();
        queue_.pop();
        now_ = it.time;
        // A busy loop: events without virtual time moving on.
        if (now_ >= burst_start_ + 0.001) {
            burst_start_ = now_;
            burst_events_ = 0;
        }
        if (++burst_events_ > kMaxBurst) {
            halt("busy loop: more than " + std::to_string(kMaxBurst) + " events within 1 ms of virtual time from " +
                     format_number("%.6f", burst_start_) + " s",
                 false);
            return;
        }
        // The clock is read every few hundred events: cheap, and a hang
        // still ends within a fraction of a second of the limit.
        if (opts_.wall_limit > 0 && ++events_ % 256 == 0 && wall_elapsed() > opts_.wall_limit) {
            halt("timeout after " + format_number("%g", opts_.wall_limit) + " s at virtual time " +
                     format_number("%.3f", now_),
                 true);
            return;
        }
        it.fn();
        if (!watched_.empty()) update_gaps();
    }
    now_ = end;
    expire_addresses();
    update_gaps();
    // Members log an error when they refuse to send; this sweep catches a
    // refusal that was not logged.
    for (auto& n : nodes_)
        for (auto& p : n->procs)
            if (p->alive && p->member) check_unsent(*p);
}

void World::watch(const ServiceAddress& a) {
    watched_[a] = Gap{};
    update_gaps();
}

void World::update_gaps() {
    for (auto& [a, g] : watched_) {
        bool held = !holders(a).empty();
        if (!held && g.since < 0) g.since = now_;
        if (held && g.since >= 0) {
            g.longest = std::max(g.longest, now_ - g.since);
            g.since = -1;
        }
    }
}

double World::max_gap(const ServiceAddress& a) const {
    auto it = watched_.find(a);
    if (it == watched_.end()) return -1;
    double l = it->second.longest;
    if (it->second.since >= 0) l = std::max(l, now_ - it->second.since);
    return l;
}

}  // namespace raissim
