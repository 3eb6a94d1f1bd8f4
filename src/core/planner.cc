#include "core/planner.h"
#include "core/text.h"

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
};

// One row of the patent's control service address table (Fig. 6B): the
// address, its preferred host and the hosts that claim to serve it.
struct Row {
    const PreferredAddress& entry;
    Span holders;
    Host* pref;        // the preferred host, when it is a live member
    Host* pin;         // the host a manual move pinned the address to
    bool pref_usable;  // the patent sets a preferred id_address only for a host that is OK
    const ServiceAddress& address() const { return entry.address; }
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
    // The control database (Fig. 6A step 608), then the pins that survive.
    void build_host_table();
    void build_control_table();
    void keep_pins();
    Row row(std::size_t ai);
    void sort_holders(const Row& r);

    // The rules, in the order run() applies them. A rule returning true has
    // settled the row: the later rules do not see it.
    void release_unknown(Host& h, const Holding& s);
    bool expire_orphan(const Row& r);
    static bool in_transition(const Row& r);
    void assign_unserved(const Row& r);
    bool hand_over_from_stopping(const Row& r);
    bool move_to_pin(const Row& r);
    void settle_duplicates(const Row& r);

    // Shared by the rules.
    Host* pick(const std::vector<Host*>& tier);
    std::string why_picked(const Host* h, const char* tier) const;
    void acquire(const ServiceAddress& a, Host* h, bool handover, std::string reason);
    void release(const ServiceAddress& a, Host* h, Action act, std::string reason);
    // The patent's choice for an unserved address: pin, preferred host, hot
    // spare, non-spare eligible host; nullptr (with the reason) when none.
    Host* choose_new(const Row& r, const std::string& context, std::string* reason);

    const View& view_;
    RandomSource& random_;
    Plan out_;
    std::vector<Host> hosts_;
    std::unordered_map<std::string, Host*> by_name_;
    std::vector<Host*> spares_, non_spares_;
    // Address -> its index in config.addresses; hashing the raw bytes keeps
    // a pass over 10,000 addresses free of per-address allocations.
    std::unordered_map<ServiceAddress, std::size_t, AddressHash> index_;
    // The claims on address i are claims_[first_[i] .. first_[i + 1]), in host order.
    std::vector<std::uint32_t> first_;
    std::vector<Holder> claims_;
    std::vector<Host*> keepable_, stopping_, spare_holders_;  // reused: no allocation per address
};

Plan Pass::run() {
    build_host_table();
    build_control_table();
    keep_pins();
    for (std::size_t ai = 0; ai < view_.config.addresses.size(); ai++) {
        const Row r = row(ai);
        if (expire_orphan(r) || in_transition(r)) continue;
        if (r.holders.empty()) {
            assign_unserved(r);
            continue;
        }
        sort_holders(r);
        if (hand_over_from_stopping(r) || move_to_pin(r)) continue;
        settle_duplicates(r);
    }
    return std::move(out_);
}

// The patent's outer loop: each host's row, and the Spare_Host_List and
// Non_Spare_Eligible_List (spares_, non_spares_, in host order).
void Pass::build_host_table() {
    std::unordered_set<std::string> configured_nodes;
    for (const auto& p : view_.config.addresses) configured_nodes.insert(p.node);
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
}

// The patent's inner loop: for each address a host serves, add the host to
// the address's claimants, or tell it to release an address the group does
// not have.
void Pass::build_control_table() {
    const auto& addresses = view_.config.addresses;
    index_.reserve(addresses.size() * 2);
    for (std::size_t i = 0; i < addresses.size(); i++) index_.emplace(addresses[i].address, i);

    first_.assign(addresses.size() + 1, 0);
    std::vector<std::pair<std::size_t, Holder>> found;
    for (auto& h : hosts_) {
        for (const auto& s : h.view->serving) {
            auto it = index_.find(s.address);
            if (it != index_.end()) {
                found.push_back({it->second, {&h, s.state}});
                first_[it->second + 1]++;
            } else {
                release_unknown(h, s);
            }
        }
    }
    for (std::size_t i = 1; i < first_.size(); i++) first_[i] += first_[i - 1];
    claims_.resize(found.size());
    std::vector<std::uint32_t> fill(first_.begin(), first_.end() - 1);
    for (const auto& [i, holder] : found) claims_[fill[i]++] = holder;
}

// Pins survive only while their host is a live member.
void Pass::keep_pins() {
    for (const auto& [addr, node] : view_.pins) {
        auto it = by_name_.find(node);
        if (!index_.count(addr))
            out_.notes.push_back("pin of " + addr.str() + " dropped: not one of the group's addresses");
        else if (it == by_name_.end() || !it->second->live)
            out_.notes.push_back("pin of " + addr.str() + " to " + node + " dropped: " + node + " is not a member");
        else
            out_.pins[addr] = node;
    }
}

Row Pass::row(std::size_t ai) {
    const PreferredAddress& p = view_.config.addresses[ai];
    auto pit = by_name_.find(p.node);
    Host* pref = pit != by_name_.end() && pit->second->live ? pit->second : nullptr;
    Host* pin = nullptr;
    if (auto q = out_.pins.find(p.address); q != out_.pins.end()) pin = by_name_.at(q->second);
    bool pref_usable = pref && pref->view->ok && !pref->view->stopping && pref->view->config_match;
    return Row{p, {claims_.data() + first_[ai], claims_.data() + first_[ai + 1]}, pref, pin, pref_usable};
}

// Rule 1 (DESIGN §5.2): an address outside config.addresses is released by
// the host that serves it; a decision, not an input error.
void Pass::release_unknown(Host& h, const Holding& s) {
    if (h.live && h.view->config_match && s.state != AddressState::Releasing)
        release(s.address, &h, Action::Release,
                h.view->node + " serves " + s.address.str() + ", which is not one of the group's addresses");
}

// Rule 2, the patent's expired entries: while the preferred host is not a
// member the orphan countdown runs; once orphan_timeout has passed, every
// holder releases the address and nobody is given it. True when expired.
bool Pass::expire_orphan(const Row& r) {
    if (r.pref) return false;
    const GroupConfig& cfg = view_.config;
    auto o = view_.orphans.find(r.address());
    double since = o == view_.orphans.end() ? view_.now : o->second;
    out_.orphans[r.address()] = since;
    bool expired = cfg.orphan_timeout > 0 && view_.now - since >= cfg.orphan_timeout;
    if (!expired) return false;
    for (const auto& h : r.holders)
        if (h.host->live && h.host->view->config_match && h.state != AddressState::Releasing)
            release(r.address(), h.host, Action::Expire,
                    "orphaned: " + r.entry.node + " has been away longer than orphan_timeout (" +
                        fmt_num(cfg.orphan_timeout) + " s)");
    return true;
}

// The patent: "if state including acquiring or releasing, continue".
bool Pass::in_transition(const Row& r) {
    for (const auto& h : r.holders)
        if (h.state != AddressState::Online) return true;
    return false;
}

// Rule 3, the patent's unserved rule (choose_new), or cannot assign.
void Pass::assign_unserved(const Row& r) {
    std::string reason;
    std::string context = r.pref ? "" : r.entry.node + " is not a member; ";
    if (Host* c = choose_new(r, context, &reason))
        acquire(r.address(), c, false, reason);
    else
        out_.decisions.push_back({Action::CannotAssign, r.address(), "", 0, false, reason});
}

// The holders of a served address that the leader may talk to, for rules 4
// to 6: keepable_ may keep it (live, same configuration, not stopping),
// stopping_ are handing everything over.
void Pass::sort_holders(const Row& r) {
    keepable_.clear();
    stopping_.clear();
    for (const auto& h : r.holders) {
        if (h.host->live && h.host->view->config_match) {
            if (h.host->view->stopping) stopping_.push_back(h.host);
            else keepable_.push_back(h.host);
        }
    }
}

// Rule 4 (DESIGN §4.7), a graceful stop: when no holder may keep the
// address, a stopping holder hands it over, make before break, or gives it
// up. True when no holder may keep it: handed over, given up, or (held only
// by departed or foreign-configuration hosts) waited for.
bool Pass::hand_over_from_stopping(const Row& r) {
    if (!keepable_.empty()) return false;
    if (stopping_.empty()) return true;
    std::string reason;
    std::string context = stopping_.front()->view->node + " is stopping; ";
    if (Host* c = choose_new(r, context, &reason)) {
        acquire(r.address(), c, true, reason + " takes over");
    } else {
        for (Host* s : stopping_) release(r.address(), s, Action::Release, reason);
    }
    return true;
}

// Rule 5 (DESIGN §4.7), a manual move: the pinned host acquires while the
// holder still serves; the duplicate rule then releases the old holder.
bool Pass::move_to_pin(const Row& r) {
    if (!r.pin || !r.pin->eligible) return false;
    for (Host* k : keepable_)
        if (k == r.pin) return false;
    acquire(r.address(), r.pin, true, "moved to " + r.pin->view->node + " by the operator (handover)");
    return true;
}

// Rule 6, the patent's failback injection and duplicate rule: a usable,
// unquiesced preferred host that does not hold its address is injected as a
// claimant (failback), so the holder releases first and the preferred host
// acquires in a later pass; of several claimants one is chosen (pin,
// preferred host, a hot spare holding it, any holder) and the others release.
void Pass::settle_duplicates(const Row& r) {
    Host* const pin = r.pin;
    Host* const pref = r.pref;
    bool pin_holds = false;
    for (Host* k : keepable_) pin_holds = pin_holds || k == pin;
    bool pref_holds = false;
    for (const auto& h : r.holders) pref_holds = pref_holds || h.host == pref;
    bool injected =
        !pin && view_.config.failback && r.pref_usable && !pref->view->quiesced && pref->live && !pref_holds;
    std::size_t ids = r.holders.size() + (injected ? 1 : 0);
    if (ids <= 1) return;

    Host* choice = nullptr;
    std::string why;
    if (pin && pin_holds) {
        choice = pin;
        why = "pinned to " + pin->view->node;
    } else if (pref && (pref_holds || injected) && r.pref_usable && !pref->view->quiesced) {
        choice = pref;
        why = injected ? "failback: preferred host " + pref->view->node + " is back"
                       : "preferred host " + pref->view->node + " keeps it";
    } else {
        spare_holders_.clear();
        for (Host* k : keepable_)
            if (k->spare && k->eligible) spare_holders_.push_back(k);
        if (!spare_holders_.empty()) {
            choice = pick(spare_holders_);
            why = why_picked(choice, "hot spare") + " and keeps it";
        } else {
            choice = pick(keepable_);
            why = why_picked(choice, "holder") + " and keeps it";
        }
    }
    for (const auto& h : r.holders) {
        if (h.host == choice || !h.host->live || !h.host->view->config_match) continue;
        release(r.address(), h.host, Action::Release,
                (injected ? why + "; " + h.host->view->node + " releases first" : "duplicate: " + why));
    }
}

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

Host* Pass::choose_new(const Row& r, const std::string& context, std::string* reason) {
    Host* const pin = r.pin;
    Host* const pref = r.pref;
    if (pin && pin->eligible) {
        *reason = context + "pinned to " + pin->view->node + " by a move";
        return pin;
    }
    if (pref && r.pref_usable && pref->eligible) {
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
    const std::string& name = r.entry.node;
    std::string why = context + "no eligible host";
    if (!pref) why += context.empty() ? ": preferred host " + name + " is not a member" : "";
    else if (!pref->view->ok) why += ": preferred host " + name + " is failing its tests";
    else if (pref->view->quiesced) why += ": preferred host " + name + " is quiesced";
    else if (pref->view->stopping) why += ": preferred host " + name + " is stopping";
    else if (!pref->view->config_match) why += ": preferred host " + name + " has a different configuration";
    why += "; no hot spare or other host can take it";
    *reason = why;
    return nullptr;
}

}  // namespace

Plan plan(const View& view, RandomSource& random) {
    Pass pass(view, random);
    return pass.run();
}

}  // namespace rais
