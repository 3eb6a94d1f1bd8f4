// The per-address operation sequence (see address_sequencer.h).
//
// Shape: one Entry per service address with an operation in flight or held.
// An Entry moves through Phase values; each asynchronous step (netlink ACK,
// probe, hook) comes back with the operation number it was asked under, and
// find_op() drops it when the operation was superseded. Effects are only
// collected here; the backend applies them after the step, in order.

#include "daemon/kernel/address_sequencer.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <type_traits>
#include <utility>

#include "daemon/kernel/address_backend.h"

namespace rais::kernel {

// Timer deadlines a Tick counts as come: GLib timeouts have millisecond
// granularity, so a wake a hair early must not cost another round.
constexpr double kTimerSlack = 1e-4;

struct AddressSequencer::Entry {
    ServiceAddress requested;  // as the caller named it; returned in callbacks
    ServiceAddress plumbed;    // with the prefix on the interface
    Phase phase = Phase::Idle;
    std::uint64_t op = 0;
    std::string nic;
    int ifindex = 0;
    LinkInfo link;
    double lifetime = 0;
    double expires = 0;  // when the kernel lifetime runs out
    // The table generation this entry last decided on; older events about
    // it describe a state it has already acted on.
    std::uint64_t seen_gen = 0;
    bool tentative = false;  // held IPv6 address redoing DAD (link came back)
    // The plumb replaces a copy already there (ours, from before); otherwise
    // it is exclusive, so an address that appeared meanwhile (perhaps the
    // administrator's) makes it fail instead of being overwritten.
    bool replace = false;
    bool nodad = false;                  // IPv6 plumbed without DAD (see out::Add)
    bool hook = false;                   // a hook runs for it
    // The options the operation under way began with (reconfigure() leaves it be).
    std::shared_ptr<const SequencerOptions> cfg;
    // Kept in step with timers_/announces_ through set_timer/set_announce only.
    std::optional<double> timer_at;      // end of the probe window, or DAD limit
    std::optional<double> announce_at;   // next announcement
    unsigned announce_left = 0;          // of the first burst
    std::deque<QueuedOp> queue;
};

AddressSequencer::AddressSequencer(SequencerOptions opts, KernelPort& kernel)
    : opts_(std::make_shared<const SequencerOptions>(std::move(opts))), kernel_(kernel) {}

AddressSequencer::~AddressSequencer() = default;

void AddressSequencer::reconfigure(SequencerOptions opts) {
    opts.nic = opts_->nic;  // the held addresses live there
    opts_ = std::make_shared<const SequencerOptions>(std::move(opts));
}

Effects AddressSequencer::step(double now, const Input& input) {
    Effects fx;
    now_ = now;
    fx_ = &fx;
    step_promoted_.clear();
    step_links_.clear();
    step_ifindex_.clear();
    std::visit(
        [this](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, in::Acquire>) {
                on_acquire(x);
            } else if constexpr (std::is_same_v<T, in::Release>) {
                on_release(x);
            } else if constexpr (std::is_same_v<T, in::Refresh>) {
                on_refresh(x);
            } else if constexpr (std::is_same_v<T, in::KernelEvents>) {
                on_kernel_events(x);
            } else if constexpr (std::is_same_v<T, in::Added>) {
                on_added(x);
            } else if constexpr (std::is_same_v<T, in::Removed>) {
                on_removed(x);
            } else if constexpr (std::is_same_v<T, in::ProbeAnswered>) {
                Entry* e = find_op(x.key, x.op);
                if (e && e->phase == Phase::Probe)
                    finish_acquire(*e, false, "ARP probe for " + e->requested.ip() + " answered by " + x.mac);
            } else if constexpr (std::is_same_v<T, in::ProbeSkipped>) {
                Entry* e = find_op(x.key, x.op);
                if (e && e->phase == Phase::Probe) probe_over(*e);
            } else if constexpr (std::is_same_v<T, in::ProbesSent>) {
                on_probes_sent(x);
            } else if constexpr (std::is_same_v<T, in::AcquireBatch>) {
                for (const auto& a : x.list) on_acquire(a);
            } else if constexpr (std::is_same_v<T, in::AddedBatch>) {
                for (const auto& a : x.list) on_added(a);
            } else if constexpr (std::is_same_v<T, in::HookDone>) {
                on_hook_done(x);
            } else if constexpr (std::is_same_v<T, in::Tick>) {
                on_tick();
            } else {
                on_continue();
            }
        },
        input);
    if (!resume_.empty()) fx.push_back(out::Continue{});
    if (auto at = next_wake()) fx.push_back(out::Wake{*at});
    fx_ = nullptr;
    return fx;
}

// ---- queries ---------------------------------------------------------------

std::vector<ServiceAddress> AddressSequencer::watch(const std::vector<ServiceAddress>& group) {
    const AddressTable& t = kernel_.table();
    watched_.clear();
    fixed_.clear();
    std::vector<ServiceAddress> out;
    for (const auto& a : group) {
        watched_.insert(a);
        if (!t.fixed_now(a)) continue;
        fixed_.insert(a);
        out.push_back(a);
    }
    return out;
}

std::string AddressSequencer::interface_of(const ServiceAddress& a) const {
    auto it = entries_.find(a);
    if (it == entries_.end()) return {};
    const Entry& e = *it->second;
    return e.phase != Phase::Idle && e.phase != Phase::Probe ? e.nic : std::string();
}

std::optional<double> AddressSequencer::next_wake() const {
    std::optional<double> at;
    if (!timers_.empty()) at = timers_.begin()->first;
    if (!announces_.empty() && (!at || announces_.begin()->first < *at)) at = announces_.begin()->first;
    return at;
}

namespace {

void unindex(std::map<double, std::set<ServiceAddress>>& d, double at, const ServiceAddress& key) {
    auto it = d.find(at);
    if (it == d.end()) return;
    it->second.erase(key);
    if (it->second.empty()) d.erase(it);
}

}  // namespace

void AddressSequencer::set_timer(Entry& e, std::optional<double> at) {
    if (e.timer_at) unindex(timers_, *e.timer_at, e.requested);
    e.timer_at = at;
    if (at) timers_[*at].insert(e.requested);
}

void AddressSequencer::set_announce(Entry& e, std::optional<double> at) {
    if (e.announce_at) unindex(announces_, *e.announce_at, e.requested);
    if (at) {
        // Join an announcement time this close: one timer for many.
        auto it = announces_.lower_bound(*at - kAnnounceJoin);
        if (it != announces_.end() && it->first <= *at + kAnnounceJoin) at = it->first;
        announces_[*at].insert(e.requested);
    }
    e.announce_at = at;
}

void AddressSequencer::report(const Entry& e, AcquireStep s) { fx_->push_back(out::Step{e.requested, s}); }

// ---- helpers ---------------------------------------------------------------

bool AddressSequencer::acquiring(Phase p) {
    return p == Phase::Probe || p == Phase::Plumb || p == Phase::Dad || p == Phase::HookAcquire;
}

void AddressSequencer::log(LogLevel level, const std::string& text) { fx_->push_back(out::Log{level, text}); }

void AddressSequencer::done(const ServiceAddress& a, bool acquire, bool ok, const std::string& detail) {
    fx_->push_back(out::Done{a, acquire, ok, detail});
}

// Call before deciding anything on the table; remembers for e what it saw.
const AddressTable& AddressSequencer::look(Entry* e) {
    const AddressTable& t = kernel_.table();
    if (e) e->seen_gen = t.gen();
    return t;
}

AddressSequencer::Entry& AddressSequencer::entry_for(const ServiceAddress& a) {
    auto& slot = entries_[a];
    if (!slot) {
        slot = std::make_unique<Entry>();
        slot->requested = a;
        slot->plumbed = a;
    }
    return *slot;
}

AddressSequencer::Entry* AddressSequencer::find_op(const ServiceAddress& key, std::uint64_t op) {
    auto it = entries_.find(key);
    return it != entries_.end() && it->second->op == op ? it->second.get() : nullptr;
}

// Busy: an operation in flight, or one queued to start at Continue.
bool AddressSequencer::busy(const Entry& e) const {
    return !(e.phase == Phase::Idle || e.phase == Phase::Held) || !e.queue.empty();
}

// ---- requests --------------------------------------------------------------

void AddressSequencer::on_acquire(const in::Acquire& r) {
    Entry& e = entry_for(r.addr);
    if (!busy(e)) return start_acquire(e, r.addr, r.probe, r.lifetime);
    log(LogLevel::Debug, r.addr.str() + ": acquire queued behind the operation in progress");
    e.queue.push_back(QueuedOp{true, r.addr, r.probe, r.lifetime});
}

void AddressSequencer::on_release(const in::Release& r) {
    Entry& e = entry_for(r.addr);
    // A release supersedes every acquire not yet done.
    std::deque<QueuedOp> kept;
    for (auto& q : e.queue) {
        if (q.acquire)
            done(q.addr, true, false, "superseded by a release");
        else
            kept.push_back(q);
    }
    e.queue = std::move(kept);
    if (acquiring(e.phase)) {
        abandon_acquire(e, "superseded by a release");
        start_release(e, r.addr);
    } else if (!busy(e)) {
        start_release(e, r.addr);
    } else {
        e.queue.push_back(QueuedOp{false, r.addr, false, 0});
    }
}

void AddressSequencer::on_refresh(const in::Refresh& r) {
    std::uint32_t secs = lifetime_secs(r.lifetime);
    out::Refresh batch;
    batch.lifetime = secs;
    const AddressTable& t = look(nullptr);
    for (const auto& a : r.held) {
        auto it = entries_.find(a);
        Entry* e = it == entries_.end() ? nullptr : it->second.get();
        if (e) e->lifetime = r.lifetime;
        if (e && (e->phase == Phase::Idle || e->phase == Phase::Probe || e->phase == Phase::HookRelease ||
                  e->phase == Phase::Unplumb))
            continue;  // not plumbed yet (it will use the new lifetime), or on its way out
        const AddrRecord* rec = e ? t.find_record(e->plumbed, e->ifindex, true) : t.find_ours(a, 0);
        if (rec && rec->permanent()) rec = nullptr;  // never give the administrator's a lifetime
        if (!rec && t.find_permanent(a, false)) {
            log(LogLevel::Debug, "refresh: " + a.str() + " is a permanent address (the administrator's); left alone");
            if (e && e->phase == Phase::Held) relinquish(*e);
            continue;
        }
        if (!rec) {
            if (e && e->phase == Phase::Held) {
                declare_lost(*e, "it was not on " + e->nic + " at refresh");
            } else if (!e) {
                log(LogLevel::Warning, "refresh: " + a.str() + " is on no interface; not adding it back");
            }
            continue;
        }
        batch.items.push_back(out::Refresh::Item{a, rec->addr, rec->ifindex});
        if (e) e->expires = now_ + secs;
    }
    if (!batch.items.empty()) fx_->push_back(std::move(batch));
}

void AddressSequencer::on_continue() {
    std::set<ServiceAddress> keys;
    keys.swap(resume_);
    for (const auto& k : keys) {
        auto it = entries_.find(k);
        if (it == entries_.end()) continue;
        Entry& e = *it->second;
        if (e.phase != Phase::Idle && e.phase != Phase::Held) continue;
        if (e.queue.empty()) {
            next_op(e);
            continue;
        }
        QueuedOp q = e.queue.front();
        e.queue.pop_front();
        if (q.acquire)
            start_acquire(e, q.addr, q.probe, q.lifetime);
        else
            start_release(e, q.addr);
    }
}

void AddressSequencer::on_tick() {
    // Everything due now, taken from the indexes before anything is handled
    // (handling re-arms later deadlines).
    auto due = [this](const Deadlines& d) {
        std::vector<ServiceAddress> keys;
        for (auto it = d.begin(); it != d.end() && now_ + kTimerSlack >= it->first; ++it)
            keys.insert(keys.end(), it->second.begin(), it->second.end());
        return keys;
    };
    std::vector<ServiceAddress> timed = due(timers_), announced = due(announces_);
    for (const auto& k : timed) {
        auto it = entries_.find(k);
        if (it == entries_.end()) continue;
        Entry& e = *it->second;
        if (!e.timer_at || now_ + kTimerSlack < *e.timer_at) continue;
        set_timer(e, std::nullopt);
        if (e.phase == Phase::Probe) {
            probe_over(e);
        } else if (e.phase == Phase::Dad) {
            fail_and_unplumb(e, "duplicate address detection did not finish within " +
                                    std::to_string(kDadLimitSeconds) + " s (link down?)");
        }
    }
    for (const auto& k : announced) {
        auto it = entries_.find(k);  // the entry may be gone
        if (it == entries_.end()) continue;
        Entry& e = *it->second;
        if (e.announce_at && now_ + kTimerSlack >= *e.announce_at) announce_due(e);
    }
}

// ---- kernel events ---------------------------------------------------------

void AddressSequencer::on_kernel_events(const in::KernelEvents& r) {
    std::set<ServiceAddress> touched;
    bool all = false;
    for (const auto& ev : r.events) {
        if (ev.resync) {
            all = true;
            resync();
        } else {
            touched.insert(ev.rec.addr);
            if (ev.add)
                on_new_address(ev.rec);
            else
                on_del_address(ev.rec, ev.portid);
        }
    }
    if (all) {
        touched.insert(watched_.begin(), watched_.end());
        touched.insert(fixed_.begin(), fixed_.end());
    }
    for (const auto& a : touched) check_fixed(a);
}

AddressSequencer::Entry* AddressSequencer::entry_on(const AddrRecord& r) {
    auto it = entries_.find(r.addr);
    if (it == entries_.end()) return nullptr;
    Entry* e = it->second.get();
    if (e->ifindex != r.ifindex || e->plumbed.prefix() != r.addr.prefix()) return nullptr;
    if (r.gen <= e->seen_gen) return nullptr;  // already acted on a later state
    return e;
}

void AddressSequencer::on_new_address(const AddrRecord& r) {
    Entry* e = entry_on(r);
    if (!e) return;
    if (r.permanent()) return relinquish(*e);
    if (r.addr.family() != Family::V6) return;
    if (e->phase == Phase::Dad) {
        if (r.dadfailed()) {
            fail_and_unplumb(*e, "duplicate address detected (DAD failed)");
        } else if (!r.tentative()) {
            set_timer(*e, std::nullopt);
            log(LogLevel::Debug, e->plumbed.str() + ": duplicate address detection passed");
            after_plumb(*e);
        }
    } else if (e->phase == Phase::Held) {
        if (r.dadfailed()) {
            unplumb_quietly(*e);
            declare_lost(*e, "duplicate address detected (DAD after the link came back)");
        } else if (r.tentative()) {
            e->tentative = true;
        } else if (e->tentative) {
            e->tentative = false;
            log(LogLevel::Info, e->plumbed.str() + ": DAD passed again after a link change; announcing");
            start_announcements(*e);
        }
    }
}

void AddressSequencer::on_del_address(const AddrRecord& r, std::uint32_t portid) {
    Entry* e = entry_on(r);
    if (!e) return;
    switch (e->phase) {
    case Phase::Dad:
        finish_acquire(*e, false, "the kernel removed it during duplicate address detection "
                                  "(another node uses it?)");
        break;
    case Phase::HookAcquire:
        finish_acquire(*e, false, "removed from " + e->nic + " behind our back while the acquire hook ran");
        break;
    case Phase::Held: {
        std::string why;
        if (r.valid == 0 || now_ >= e->expires - 0.5)
            why = "its lifetime ran out (not refreshed in time)";
        else if (portid)
            why = "deleted from " + e->nic + " by another process (netlink port " + std::to_string(portid) + ")";
        else
            why = "removed from " + e->nic + " behind our back";
        declare_lost(*e, why);
        break;
    }
    default:
        break;  // not plumbed yet, or we are removing it ourselves
    }
}

// The monitor lost events and the table was reloaded: compare what we hold
// with it, as if each address had just changed.
void AddressSequencer::resync() {
    std::vector<ServiceAddress> keys;
    for (auto& [k, e] : entries_) keys.push_back(k);
    for (const auto& k : keys) {
        auto it = entries_.find(k);
        if (it == entries_.end()) continue;
        Entry& e = *it->second;
        if (e.phase != Phase::Dad && e.phase != Phase::HookAcquire && e.phase != Phase::Held) continue;
        const AddressTable& t = look(nullptr);
        AddrRecord now;
        now.ifindex = e.ifindex;
        now.addr = e.plumbed;
        const AddrRecord* rec = t.find_record(e.plumbed, e.ifindex, true);
        if (rec) now = *rec;
        now.gen = t.gen();
        if (rec)
            on_new_address(now);
        else
            on_del_address(now, 0);
    }
}

// Reports a change of a's permanent presence, if a is watched or was
// reported before.
void AddressSequencer::check_fixed(const ServiceAddress& a) {
    auto w = watched_.find(a);
    auto f = fixed_.find(a);
    if (w == watched_.end() && f == fixed_.end()) return;
    ServiceAddress name = w != watched_.end() ? *w : *f;  // as the owner named it
    bool now = kernel_.table().fixed_now(a);
    if (now == (f != fixed_.end())) return;
    if (now)
        fixed_.insert(name);
    else
        fixed_.erase(f);
    log(LogLevel::Notice, name.str() + (now ? " is now a permanent address on this host (the administrator's)"
                                   : " is no longer a permanent address on this host"));
    fx_->push_back(out::Fixed{name, now});
}

// An operation found a permanent: tell the owner before its answer.
void AddressSequencer::mark_fixed(const ServiceAddress& a) {
    if (fixed_.count(a) || !kernel_.table().fixed_now(a)) return;
    fixed_.insert(a);
    fx_->push_back(out::Fixed{a, true});
}

// ---- ending operations -----------------------------------------------------

void AddressSequencer::stop_activity(Entry& e) {
    if (e.phase == Phase::Probe) fx_->push_back(out::ProbeStop{e.requested});
    set_timer(e, std::nullopt);
    set_announce(e, std::nullopt);
    if (e.hook) fx_->push_back(out::StopHook{e.requested});
    e.hook = false;
    e.tentative = false;
}

// Queues the next operation for Continue, or forgets an idle entry. The
// entry may be gone on return.
void AddressSequencer::next_op(Entry& e) {
    if (e.phase != Phase::Idle && e.phase != Phase::Held) return;
    if (!e.queue.empty()) {
        resume_.insert(e.requested);
        return;
    }
    if (e.phase == Phase::Idle) {
        set_timer(e, std::nullopt);  // nothing is left indexed for a gone entry
        set_announce(e, std::nullopt);
        ServiceAddress key = e.requested;
        entries_.erase(key);
    }
}

// The entry may be gone on return from the finish_* and declare_lost.
void AddressSequencer::finish_acquire(Entry& e, bool ok, const std::string& detail) {
    if (ok) {
        log(LogLevel::Info, "acquired " + e.plumbed.str() + " on " + e.nic);
        e.phase = Phase::Held;
    } else {
        log(LogLevel::Warning, "acquire of " + e.requested.str() + " failed: " + detail);
        stop_activity(e);
        e.phase = Phase::Idle;
    }
    done(e.requested, true, ok, detail);
    next_op(e);
}

void AddressSequencer::finish_release(Entry& e, bool ok, const std::string& detail) {
    if (ok)
        log(LogLevel::Info, "released " + e.requested.str() + (detail.empty() ? "" : " (" + detail + ")"));
    else
        log(LogLevel::Warning, "release of " + e.requested.str() + " failed: " + detail);
    stop_activity(e);
    e.phase = Phase::Idle;
    done(e.requested, false, ok, detail);
    next_op(e);
}

void AddressSequencer::declare_lost(Entry& e, const std::string& why) {
    log(LogLevel::Warning, "lost " + e.plumbed.str() + ": " + why);
    stop_activity(e);
    e.phase = Phase::Idle;
    fx_->push_back(out::Lost{e.requested, why});
    next_op(e);
}

// The address is (or became) permanent: the operation ends without
// touching it, successfully. The entry may be gone on return.
void AddressSequencer::finish_fixed(Entry& e, bool acquire) {
    log(LogLevel::Notice, e.requested.str() + (e.nic.empty() ? "" : " on " + e.nic) +
                     " is a permanent address (configured by the administrator): " +
                     (acquire ? "not adopted" : "not removed"));
    stop_activity(e);
    e.phase = Phase::Idle;
    mark_fixed(e.requested);
    done(e.requested, acquire, true, AddressBackend::kPermanentDetail);
    next_op(e);
}

// The administrator made one of ours permanent (ip addr change ...
// valid_lft forever): it is theirs now. Acquires in flight end as for a
// permanent address; a held one is dropped without Lost: it is still there,
// reported through Fixed. A release in flight checks before it deletes. The
// entry may be gone on return.
void AddressSequencer::relinquish(Entry& e) {
    switch (e.phase) {
    case Phase::Dad:
    case Phase::HookAcquire:
        return finish_fixed(e, true);
    case Phase::Held:
        log(LogLevel::Notice, e.plumbed.str() + " on " + e.nic +
                         " was made permanent by the administrator: no longer refreshed or removed by raisd");
        stop_activity(e);
        e.phase = Phase::Idle;
        mark_fixed(e.requested);
        return next_op(e);
    default:
        return;
    }
}

// Ends an acquire in flight without touching the interface (the caller goes
// on to release); its answer is "failed".
void AddressSequencer::abandon_acquire(Entry& e, const std::string& why) {
    log(LogLevel::Info, "acquire of " + e.requested.str() + " abandoned: " + why);
    stop_activity(e);
    e.phase = Phase::Idle;
    e.op = ++next_op_;
    done(e.requested, true, false, why);
}

// Asked once per interface and step: a batch of a thousand acquires reads
// the sysctl once, not a thousand times.
bool AddressSequencer::promote(const std::string& nic) {
    if (auto it = step_promoted_.find(nic); it != step_promoted_.end()) return it->second;
    PromoteResult p = kernel_.promote_secondaries(nic);
    if (!p.note.empty()) log(p.level, p.note);
    step_promoted_[nic] = p.on;
    return p.on;
}

LinkInfo AddressSequencer::link_of(const std::string& nic) {
    auto it = step_links_.find(nic);
    if (it == step_links_.end()) it = step_links_.emplace(nic, kernel_.link(nic)).first;
    return it->second;
}

// Whether deleting `victim` (one of ours, in the table) leaves every
// permanent address where it is. Deleting the primary IPv4 address of a
// subnet deletes the secondaries with it unless promote_secondaries is on.
bool AddressSequencer::safe_to_delete(const ServiceAddress& victim, int ifindex, const std::string& nic,
                                      std::string* why) {
    const AddressTable& t = look(nullptr);
    const AddrRecord* r = t.find_record(victim, ifindex, true);
    if (!r) return true;  // gone already; the kernel answers EADDRNOTAVAIL
    if (r->permanent()) {
        *why = AddressBackend::kPermanentDetail;
        return false;
    }
    if (victim.family() != Family::V4 || r->secondary()) return true;
    if (promote(nic)) return true;
    if (const AddrRecord* o = t.permanent_in_subnet(r->addr, ifindex)) {
        *why = "removing it would also remove " + o->addr.str() +
               ", a permanent address of the administrator (net.ipv4.conf." + nic +
               ".promote_secondaries is not 1); left in place";
        return false;
    }
    return true;
}

// Removes e's address without waiting for the answer (a failed acquire,
// a held address that failed DAD): failures are only logged.
void AddressSequencer::unplumb_quietly(Entry& e) {
    std::string why;
    const ServiceAddress& a = e.plumbed;
    if (!safe_to_delete(a, e.ifindex, e.nic, &why)) {
        log(LogLevel::Warning, "not removing " + a.str() + " from " + e.nic + ": " + why);
        return;
    }
    fx_->push_back(out::Remove{e.requested, 0, e.plumbed, e.ifindex});
}

void AddressSequencer::fail_and_unplumb(Entry& e, const std::string& why) {
    unplumb_quietly(e);
    finish_acquire(e, false, why);
}

// ---- acquire ---------------------------------------------------------------

// Picks the interface: the configured one, else the one that already holds
// the address, else the one whose connected subnet covers it most narrowly
// (IPaddr2's findif).
bool AddressSequencer::resolve_interface(Entry& e, std::string* why) {
    const ServiceAddress& a = e.requested;
    const std::string& nic = opts_->nic;
    if (!nic.empty()) {
        auto cached = step_ifindex_.find(nic);
        if (cached == step_ifindex_.end()) cached = step_ifindex_.emplace(nic, kernel_.ifindex(nic)).first;
        int idx = cached->second;
        if (idx == 0) {
            *why = "interface " + nic + " does not exist";
            return false;
        }
        e.nic = nic;
        e.ifindex = idx;
        return true;
    }
    const AddressTable& t = kernel_.table();
    const AddrRecord* best = t.find_any(a);
    if (!best) best = t.narrowest_cover(a);
    if (!best) {
        *why = "no interface has a connected subnet that covers " + a.ip() + " (set nic)";
        return false;
    }
    e.ifindex = best->ifindex;
    e.nic = kernel_.ifname(best->ifindex);
    if (e.nic.empty()) {
        *why = "interface " + std::to_string(best->ifindex) + " vanished";
        return false;
    }
    return true;
}

void AddressSequencer::start_acquire(Entry& e, const ServiceAddress& a, bool probe, double lifetime) {
    stop_activity(e);
    e.op = ++next_op_;
    e.requested = a;
    e.plumbed = a;
    e.lifetime = lifetime;
    e.cfg = opts_;
    e.phase = Phase::Plumb;  // provisional: not Idle, so next_op leaves it alone
    std::string why;
    const AddressTable& t = look(&e);
    // The administrator's, on whatever interface: held by this host already,
    // and not ours to change.
    if (const AddrRecord* p = t.find_permanent(a, true)) {
        e.ifindex = p->ifindex;
        e.nic = kernel_.ifname(p->ifindex);
        return finish_fixed(e, true);
    }
    if (const AddrRecord* p = t.find_permanent(a, false))
        return finish_acquire(e, false, "a permanent copy on " + kernel_.ifname(p->ifindex) +
                                            " (the administrator's) failed duplicate address detection; "
                                            "left alone");
    if (!resolve_interface(e, &why)) return finish_acquire(e, false, why);
    std::optional<AddrRecord> existing;
    if (const AddrRecord* r = t.find_record(a, e.ifindex, false)) existing = *r;
    e.link = link_of(e.nic);
    if (a.family() == Family::V4) promote(e.nic);
    if (existing && existing->dadfailed()) {
        log(LogLevel::Notice, a.str() + ": removing a copy on " + e.nic + " that failed DAD before");
        e.plumbed = existing->addr;
        unplumb_quietly(e);
        existing.reset();
    }
    e.replace = existing.has_value();
    // DAD is IPv6's probe: skipped when the acquire asks for no probe (a
    // handover, a confirmed fence). Not for arp_probe_ms=0, which only
    // turns the ARP probe off: DAD stays the last guard against a second
    // holder there (the chaos run found one, behind a stale copy).
    e.nodad = a.family() == Family::V6 && !probe && e.cfg->arp_probe_ms > 0;
    if (existing) {
        // Ours from before (a restart) or a repeat: re-arm, no probe.
        if (existing->addr.prefix() != a.prefix())
            log(LogLevel::Notice, a.str() + ": already on " + e.nic + " as " + existing->addr.str() + "; keeping that");
        e.plumbed = existing->addr;
        return plumb(e);
    }
    if (a.family() == Family::V4 && probe && e.cfg->arp_probe_ms > 0) {
        if (e.link.arp) return start_probe(e);
        log(LogLevel::Debug, a.str() + ": " + e.nic + " does not do ARP; no probe");
    }
    plumb(e);
}

void AddressSequencer::start_probe(Entry& e) {
    e.phase = Phase::Probe;
    fx_->push_back(out::ProbeStart{e.requested, e.op, e.ifindex, e.nic, e.link});
    // Every probe of this step gets the same deadline (same now_): one wait.
    set_timer(e, now_ + e.cfg->arp_probe_ms / 1000.0);
}

// The window counts from when the probe left: one that waited for room on
// the link gets its full window still. The probes of one batch are reported
// in one step, so they keep one shared deadline.
void AddressSequencer::on_probes_sent(const in::ProbesSent& r) {
    for (const auto& i : r.items) {
        Entry* e = find_op(i.key, i.op);
        if (!e || e->phase != Phase::Probe) continue;
        report(*e, AcquireStep::ProbeSent);
        double end = now_ + e->cfg->arp_probe_ms / 1000.0;
        if (!e->timer_at || *e->timer_at < end) set_timer(*e, end);
    }
}

// The probe window passed unanswered (or no probe could go out): plumb.
void AddressSequencer::probe_over(Entry& e) {
    fx_->push_back(out::ProbeStop{e.requested});
    set_timer(e, std::nullopt);
    report(e, AcquireStep::ProbeSettled);
    plumb(e);
}

void AddressSequencer::plumb(Entry& e) {
    e.phase = Phase::Plumb;
    std::uint32_t secs = lifetime_secs(e.lifetime);
    fx_->push_back(out::Add{e.requested, e.op, e.plumbed, e.ifindex, e.replace, secs, e.nodad});
    e.expires = now_ + secs;
}

void AddressSequencer::on_added(const in::Added& r) {
    Entry* e = find_op(r.key, r.op);
    if (!e || e->phase != Phase::Plumb) return;
    if (!r.unsent.empty()) return finish_acquire(*e, false, "netlink: " + r.unsent);
    if (r.err == EEXIST) {
        if (look(e).find_permanent(e->requested, true)) return finish_fixed(*e, true);
        return finish_acquire(*e, false, "someone else added it to " + e->nic + " meanwhile");
    }
    if (r.err && r.err != ENOBUFS) return finish_acquire(*e, false, "cannot add it to " + e->nic + ": " + r.text);
    const AddrRecord* rec = look(e).find_record(e->plumbed, e->ifindex, true);
    if (!rec) return finish_acquire(*e, false, "it vanished from " + e->nic + " right after it was added");
    if (rec->permanent()) return finish_fixed(*e, true);  // made permanent by the administrator meanwhile
    report(*e, AcquireStep::Plumbed);
    if (e->plumbed.family() == Family::V6) {
        if (rec->dadfailed()) return fail_and_unplumb(*e, "duplicate address detected (DAD failed)");
        if (rec->tentative()) {
            e->phase = Phase::Dad;
            set_timer(*e, now_ + kDadLimitSeconds);
            log(LogLevel::Debug, e->plumbed.str() + ": waiting for duplicate address detection");
            return;
        }
    }
    after_plumb(*e);
}

void AddressSequencer::after_plumb(Entry& e) {
    if (!e.cfg->hook) return announce_and_finish(e);
    e.phase = Phase::HookAcquire;
    run_hook(e, true);
}

void AddressSequencer::announce_and_finish(Entry& e) {
    e.phase = Phase::Held;
    start_announcements(e);
    if (e.link.arp) report(e, AcquireStep::Announced);  // start_announcements sent the first
    finish_acquire(e, true, "");
}

// ---- announcements ---------------------------------------------------------

void AddressSequencer::start_announcements(Entry& e) {
    if (!e.link.arp) {
        log(LogLevel::Debug, e.plumbed.str() + ": " + e.nic + " does not do ARP/ND; no announcements");
        return;
    }
    announce_once(e);
    e.announce_left = kAnnounceRepeats;
    set_announce(e, now_ + kAnnounceGap);
}

void AddressSequencer::announce_once(Entry& e) {
    if (!e.link.arp || e.tentative) return;  // a tentative address must not be claimed yet
    fx_->push_back(out::Announce{e.plumbed, e.ifindex, e.nic, e.link});
}

// The first burst, then every announce_interval (kept apart from 0 so a
// tiny setting cannot spin).
void AddressSequencer::announce_due(Entry& e) {
    bool burst = e.announce_left > 0;
    announce_once(e);
    if (burst && --e.announce_left > 0) {
        set_announce(e, now_ + kAnnounceGap);
        return;
    }
    double every = opts_->announce_interval;  // a reload applies from the next turn
    if (every > 0) {
        auto ms = static_cast<unsigned>(std::min(every * 1000.0, 86400000.0));
        set_announce(e, now_ + std::max(ms, 1u) / 1000.0);
    } else {
        set_announce(e, std::nullopt);
    }
}

// ---- the hook --------------------------------------------------------------

void AddressSequencer::run_hook(Entry& e, bool acquire) {
    e.hook = true;
    fx_->push_back(out::RunHook{e.requested, e.op, acquire, e.plumbed, e.nic, e.cfg->hook_command,
                                e.cfg->hook_timeout});
}

void AddressSequencer::on_hook_done(const in::HookDone& r) {
    Entry* e = find_op(r.key, r.op);
    if (!e || !e->hook) return;
    e->hook = false;
    if (e->phase == Phase::HookAcquire) {
        if (r.ok) return announce_and_finish(*e);
        return fail_and_unplumb(*e, r.detail);
    }
    if (e->phase != Phase::HookRelease) return;
    if (!r.ok)
        log(LogLevel::Warning, "release hook for " + e->plumbed.str() + " failed (" + r.detail + "); removing it anyway");
    unplumb_for_release(*e);
}

// ---- release ---------------------------------------------------------------

void AddressSequencer::start_release(Entry& e, const ServiceAddress& a) {
    stop_activity(e);
    e.op = ++next_op_;
    e.requested = a;
    e.cfg = opts_;
    e.phase = Phase::Unplumb;  // provisional: not Idle, so next_op leaves it alone
    const AddressTable& t = look(&e);
    // Only our own copy is removed; the administrator's stays.
    const AddrRecord* rec = e.ifindex ? t.find_ours(a, e.ifindex) : nullptr;
    if (!rec) rec = t.find_ours(a, 0);
    if (!rec) {
        if (const AddrRecord* p = t.find_permanent(a, false)) {
            e.nic = kernel_.ifname(p->ifindex);
            return finish_fixed(e, false);
        }
        return finish_release(e, true, "it was not on any interface");
    }
    e.ifindex = rec->ifindex;
    e.nic = kernel_.ifname(rec->ifindex);
    e.plumbed = rec->addr;
    if (!e.cfg->hook) return unplumb_for_release(e);
    e.phase = Phase::HookRelease;
    run_hook(e, false);
}

void AddressSequencer::unplumb_for_release(Entry& e) {
    e.phase = Phase::Unplumb;
    std::string why;
    // The hook ran meanwhile: look again before deleting.
    if (const AddrRecord* r = look(&e).find_record(e.plumbed, e.ifindex, true); r && r->permanent())
        return finish_fixed(e, false);
    if (!safe_to_delete(e.plumbed, e.ifindex, e.nic, &why)) return finish_release(e, false, why);
    fx_->push_back(out::Remove{e.requested, e.op, e.plumbed, e.ifindex});
}

void AddressSequencer::on_removed(const in::Removed& r) {
    if (r.op == 0) {  // unplumb_quietly's: nobody waits for it
        if (!r.unsent.empty())
            log(LogLevel::Warning, "cannot remove " + r.addr.str() + ": " + r.unsent);
        else if (r.err && r.err != EADDRNOTAVAIL && r.err != ENODEV && r.err != ENOBUFS)
            log(LogLevel::Warning, "cannot remove " + r.addr.str() + ": " + r.text);
        return;
    }
    Entry* e = find_op(r.key, r.op);
    if (!e || e->phase != Phase::Unplumb) return;
    if (!r.unsent.empty()) return finish_release(*e, false, "netlink: " + r.unsent);
    int err = r.err;
    std::string text = r.text;
    if (err == ENOBUFS) {  // the ACK was lost: look instead
        err = look(nullptr).find_record(e->plumbed, e->ifindex, true) ? EBUSY : 0;
        text = std::strerror(EBUSY);
    }
    if (err && err != EADDRNOTAVAIL && err != ENODEV)
        return finish_release(*e, false, "cannot remove it from " + e->nic + ": " + text);
    finish_release(*e, true, err ? "it was already gone" : "");
}

}  // namespace rais::kernel
