#include "core/planner.h"
#include "core/text.h"

#include <cstdio>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace rais {

namespace {

// One row of the patent's host table, with what the planner derives from it.
struct Host {
    const HostView* view;
    bool live;        // a member we can talk to
    bool eligible;    // may be given an address: live, OK, not quiesced, not stopping, same config
    bool spare;       // no configured address (whatever it serves now)
    double util;
    std::size_t count;  // addresses held, counting those given in this pass
};

struct Holder {
    Host* host;
    AddressState state;
};

// The holders of one address: a slice of the flat control table.
struct Span {
    const Holder* b;
    const Holder* e;
    const Holder* begin() const { return b; }
    const Holder* end() const { return e; }
    bool empty() const { return b == e; }
    std::size_t size() const { return static_cast<std::size_t>(e - b); }
    const Holder& front() const { return *b; }
};

struct AddressHash {
    std::size_t operator()(const ServiceAddress& a) const {
        std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
        for (std::size_t i = 0; i < a.size(); i++) h = (h ^ a.bytes()[i]) * 1099511628211ULL;
        return static_cast<std::size_t>(h);
    }
};

std::string fmt_num(double v) { return format_number("%g", v); }
std::string fmt_util(double u) { return format_number("%.1f%%", u); }

class Pass {
public:
    Pass(const View& v, RandomSource& r) : view_(v), random_(r) {}

    Plan run();

private:
    Host* pick(const std::vector<Host*>& tier);
    std::string why_picked(const Host* h, const char* tier) const;
    void acquire(const ServiceAddress& a, Host* h, bool handover, std::string reason);
    void release(const ServiceAddress& a, Host* h, Action act, std::string reason);
    // The unserved rule: pin, preferred, hot spare, non-spare eligible, cannot assign.
    Host* choose_new(const std::string& pref_name, Host* pin, Host* pref, bool pref_usable, std::string* reason,
                     const std::string& context);

    const View& view_;
    RandomSource& random_;
    Plan out_;
    std::vector<Host> hosts_;
    std::unordered_map<std::string, Host*> by_name_;
    std::vector<Host*> spares_, non_spares_;
};

Host* Pass::pick(const std::vector<Host*>& tier) {
    if (tier.empty()) return nullptr;
    if (view_.config.placement == Placement::Random) return tier[random_.below(tier.size())];
    Host* best = tier.front();
    for (Host* h : tier) {
        if (h->util < best->util ||
            (h->util == best->util &&
             (h->count < best->count || (h->count == best->count && h->view->id < best->view->id))))
            best = h;
    }
    return best;
}

std::string Pass::why_picked(const Host* h, const char* tier) const {
    if (view_.config.placement == Placement::Random) return std::string(tier) + " " + h->view->node + " (random pick)";
    return std::string(tier) + " " + h->view->node + " is least loaded (" + fmt_util(h->util) + ", " +
           std::to_string(h->count) + (h->count == 1 ? " address)" : " addresses)");
}

void Pass::acquire(const ServiceAddress& a, Host* h, bool handover, std::string reason) {
    out_.decisions.push_back({Action::Acquire, a, h->view->node, h->view->id, handover, std::move(reason)});
    h->count++;
}

void Pass::release(const ServiceAddress& a, Host* h, Action act, std::string reason) {
    out_.decisions.push_back({act, a, h->view->node, h->view->id, false, std::move(reason)});
}

Host* Pass::choose_new(const std::string& pref_name, Host* pin, Host* pref, bool pref_usable, std::string* reason,
                       const std::string& context) {
    if (pin && pin->eligible) {
        *reason = context + "pinned to " + pin->view->node + " by a move";
        return pin;
    }
    if (pref && pref_usable && pref->eligible) {
        *reason = context + "preferred host " + pref->view->node;
        return pref;
    }
    if (Host* s = pick(spares_)) {
        *reason = context + why_picked(s, "hot spare");
        return s;
    }
    if (Host* n = pick(non_spares_)) {
        *reason = context + why_picked(n, "no hot spare left;");
        return n;
    }
    std::string why = context + "no eligible host";
    const std::string* pn = &pref_name;
    {
        if (!pref) why += context.empty() ? ": preferred host " + *pn + " is not a member" : "";
        else if (!pref->view->ok) why += ": preferred host " + *pn + " is failing its tests";
        else if (pref->view->quiesced) why += ": preferred host " + *pn + " is quiesced";
        else if (pref->view->stopping) why += ": preferred host " + *pn + " is stopping";
        else if (!pref->view->config_match) why += ": preferred host " + *pn + " has a different configuration";
    }
    why += "; no hot spare or other host can take it";
    *reason = why;
    return nullptr;
}

Plan Pass::run() {
    const GroupConfig& cfg = view_.config;
    std::unordered_set<std::string> configured_nodes;
    for (const auto& p : cfg.addresses) configured_nodes.insert(p.node);
    // Address -> its index in cfg.addresses; hashing the raw bytes keeps a
    // pass over 10,000 addresses free of per-address allocations.
    std::unordered_map<ServiceAddress, std::size_t, AddressHash> index;
    index.reserve(cfg.addresses.size() * 2);
    for (std::size_t i = 0; i < cfg.addresses.size(); i++) index.emplace(cfg.addresses[i].address, i);

    hosts_.reserve(view_.hosts.size());
    for (const auto& hv : view_.hosts) {
        Host h;
        h.view = &hv;
        h.live = !hv.departed;
        h.eligible = h.live && hv.ok && !hv.quiesced && !hv.stopping && hv.config_match;
        h.spare = configured_nodes.count(hv.node) == 0;
        h.util = hv.utilization();
        h.count = hv.serving.size();
        hosts_.push_back(h);
    }
    for (auto& h : hosts_) {
        by_name_[h.view->node] = &h;
        if (h.eligible) (h.spare ? spares_ : non_spares_).push_back(&h);
        if (h.live && !h.view->config_match)
            out_.notes.push_back(h.view->node + " has a different configuration digest: it keeps what it holds and is given nothing");
    }

    // The control table: for each address, who claims it (flat, in host order).
    std::vector<std::uint32_t> first(cfg.addresses.size() + 1, 0);
    std::vector<std::pair<std::size_t, Holder>> found;
    for (auto& h : hosts_) {
        for (const auto& s : h.view->serving) {
            auto it = index.find(s.address);
            if (it != index.end()) {
                found.push_back({it->second, {&h, s.state}});
                first[it->second + 1]++;
            } else if (h.live && h.view->config_match && s.state != AddressState::Releasing) {
                release(s.address, &h, Action::Release,
                        h.view->node + " serves " + s.address.str() + ", which is not one of the group's addresses");
            }
        }
    }
    for (std::size_t i = 1; i < first.size(); i++) first[i] += first[i - 1];
    std::vector<Holder> claims(found.size());
    {
        std::vector<std::uint32_t> fill(first.begin(), first.end() - 1);
        for (const auto& [i, holder] : found) claims[fill[i]++] = holder;
    }

    // Pins survive only while their host is a live member.
    for (const auto& [addr, node] : view_.pins) {
        auto it = by_name_.find(node);
        if (!index.count(addr))
            out_.notes.push_back("pin of " + addr.str() + " dropped: not one of the group's addresses");
        else if (it == by_name_.end() || !it->second->live)
            out_.notes.push_back("pin of " + addr.str() + " to " + node + " dropped: " + node + " is not a member");
        else
            out_.pins[addr] = node;
    }

    std::vector<Host*> keepable, stopping, spare_holders;  // reused: no allocation per address
    for (std::size_t ai = 0; ai < cfg.addresses.size(); ai++) {
        const auto& p = cfg.addresses[ai];
        const ServiceAddress& a = p.address;
        const Span holders{claims.data() + first[ai], claims.data() + first[ai + 1]};

        auto pit = by_name_.find(p.node);
        Host* pref = pit != by_name_.end() && pit->second->live ? pit->second : nullptr;
        Host* pin = nullptr;
        if (auto q = out_.pins.find(a); q != out_.pins.end()) pin = by_name_[q->second];

        // Orphans: the preferred host is not a member. The countdown runs
        // until it returns; once orphan_timeout has passed, nobody serves it.
        if (!pref) {
            auto o = view_.orphans.find(a);
            double since = o == view_.orphans.end() ? view_.now : o->second;
            out_.orphans[a] = since;
            if (cfg.orphan_timeout > 0 && view_.now - since >= cfg.orphan_timeout) {
                for (const auto& h : holders)
                    if (h.host->live && h.host->view->config_match && h.state != AddressState::Releasing)
                        release(a, h.host, Action::Expire,
                                "orphaned: " + p.node + " has been away longer than orphan_timeout (" +
                                    fmt_num(cfg.orphan_timeout) + " s)");
                continue;
            }
        }

        // Addresses in transition are left alone.
        bool moving = false;
        for (const auto& h : holders) moving = moving || h.state != AddressState::Online;
        if (moving) continue;

        // The patent sets a preferred id_address only for a host that is OK.
        bool pref_usable = pref && pref->view->ok && !pref->view->stopping && pref->view->config_match;

        if (holders.empty()) {
            std::string reason;
            std::string context = pref ? "" : p.node + " is not a member; ";
            if (Host* c = choose_new(p.node, pin, pref, pref_usable, &reason, context)) {
                acquire(a, c, false, reason);
            } else {
                out_.decisions.push_back({Action::CannotAssign, a, "", 0, false, reason});
            }
            continue;
        }

        // A holder may keep the address when it is a live member that is not
        // stopping and shares the leader's configuration.
        keepable.clear();
        stopping.clear();
        for (const auto& h : holders) {
            if (h.host->live && h.host->view->config_match) {
                if (h.host->view->stopping) stopping.push_back(h.host);
                else keepable.push_back(h.host);
            }
        }

        if (keepable.empty()) {
            if (stopping.empty()) continue;  // held only by departed or foreign-config hosts: wait
            // Graceful stop: hand over (make before break), or give it up.
            std::string reason;
            std::string context = stopping.front()->view->node + " is stopping; ";
            if (Host* c = choose_new(p.node, pin, pref, pref_usable, &reason, context)) {
                acquire(a, c, true, reason + " takes over");
            } else {
                for (Host* s : stopping) release(a, s, Action::Release, reason);
            }
            continue;
        }

        bool pin_holds = false;
        for (Host* k : keepable) pin_holds = pin_holds || k == pin;
        if (pin && pin->eligible && !pin_holds) {
            acquire(a, pin, true, "moved to " + pin->view->node + " by the operator (handover)");
            continue;
        }

        bool pref_holds = false;
        for (const auto& h : holders) pref_holds = pref_holds || h.host == pref;
        // Failback: inject the preferred host so the duplicate rule releases
        // the current holder first; the preferred host acquires next pass.
        bool injected = !pin && cfg.failback && pref_usable && !pref->view->quiesced && pref->live && !pref_holds;
        std::size_t ids = holders.size() + (injected ? 1 : 0);
        if (ids <= 1) continue;

        Host* choice = nullptr;
        std::string why;
        if (pin && pin_holds) {
            choice = pin;
            why = "pinned to " + pin->view->node;
        } else if (pref && (pref_holds || injected) && pref_usable && !pref->view->quiesced) {
            choice = pref;
            why = injected ? "failback: preferred host " + pref->view->node + " is back"
                           : "preferred host " + pref->view->node + " keeps it";
        } else {
            spare_holders.clear();
            for (Host* k : keepable)
                if (k->spare && k->eligible) spare_holders.push_back(k);
            if (!spare_holders.empty()) {
                choice = pick(spare_holders);
                why = why_picked(choice, "hot spare") + " and keeps it";
            } else {
                choice = pick(keepable);
                why = why_picked(choice, "holder") + " and keeps it";
            }
        }
        for (const auto& h : holders) {
            if (h.host == choice || !h.host->live || !h.host->view->config_match) continue;
            release(a, h.host, Action::Release,
                    (injected ? why + "; " + h.host->view->node + " releases first"
                              : "duplicate: " + why));
        }
    }
    return std::move(out_);
}

}  // namespace

Plan plan(const View& view, RandomSource& random) {
    Pass pass(view, random);
    return pass.run();
}

}  // namespace rais
