#include "core/member.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "core/planner.h"
#include "core/text.h"

namespace rais {

namespace {
constexpr double kNever = std::numeric_limits<double>::infinity();
// A Tick clears what is due; a deadline it left is looked at again this
// much later: a bug becomes a slow poll, never a busy loop.
constexpr double kWakeFloor = 0.001;

// "hot spare h3 is least loaded (0.0%, 2 addresses)" -> "hot spare h3 is
// least loaded": the figures make every reason of a failover distinct, and
// batched commands share their reasons on the wire. The leader's log keeps
// them whole.
std::string without_figures(const std::string& r) {
    std::string out;
    std::size_t i = 0;
    while (i < r.size()) {
        std::size_t open = r.find(" (", i);
        if (open == std::string::npos) break;
        std::size_t close = r.find(')', open);
        if (close == std::string::npos) break;
        out += r.substr(i, open - i);
        std::string inside = r.substr(open + 2, close - open - 2);
        if (inside.find('%') == std::string::npos) out += " (" + inside + ")";
        i = close + 1;
    }
    return out + r.substr(i);
}

}  // namespace

Member::Member(MemberSetup setup)
    : cfg_(std::move(setup.config)),
      digest_(cfg_.digest()),
      self_(setup.self),
      name_(std::move(setup.name)),
      random_(setup.seed),
      peers_(self_, name_, setup.fencing_active),
      quiesced_(setup.quiesced) {
    peers_.set_timing(interval(), cfg_.restart_grace);
    if (cfg_.capacity) capacity_ = *cfg_.capacity;
    for (const auto& a : setup.found) held_[a] = AddressState::Online;
    for (const auto& a : setup.fixed) {
        held_[a] = AddressState::Online;
        fixed_.insert(a);
    }
}

Effects Member::start(double now) {
    Effects fx;
    fx_ = &fx;
    std::vector<ServiceAddress> v;
    for (const auto& [a, st] : held_) {
        (void)st;
        if (fixed_.count(a)) {
            log(LogLevel::Warning, a.str() + " is configured statically on this host (a permanent address): "
                                     "it is the administrator's; reported as held here, never moved or removed");
            emit(now, EventKind::Acquire, name_, a, "configured statically by the administrator; held, left alone");
            continue;
        }
        log(LogLevel::Warning, a.str() + " was already on this host at start (left over from a crash); "
                                 "reporting it so the leader settles duplicates");
        v.push_back(a);
        armed_at_[a] = now;
    }
    if (!v.empty()) fx.push_back(out::Refresh{v, lifetime()});
    next_info_at_ = now;
    last_step_at_ = now;
    fx_ = nullptr;
    return fx;
}

void Member::log(LogLevel l, std::string text) { fx_->push_back(out::Log{l, std::move(text)}); }

void Member::emit(double now, EventKind k, const std::string& node, std::optional<ServiceAddress> a,
                  std::string why) {
    Event e{k, now, cfg_.group, node, a, std::move(why)};
    fx_->push_back(out::Emit{std::move(e)});
}

// A member never sends what its peers would drop (rule 4.9): the decoder's
// own rules are checked first, and a message that breaks them is a bug of
// ours, logged and counted, not sent.
void Member::send(Message m, std::string what) {
    std::string why = validate(m);
    std::vector<std::uint8_t> bytes;
    if (why.empty()) {
        bytes = encode(m);
        if (bytes.size() > kMaxMessageBytes)
            why = std::to_string(bytes.size()) + " bytes exceed the limit of " + std::to_string(kMaxMessageBytes);
    }
    if (!why.empty()) {
        unsent_++;
        log(LogLevel::Error, "not sending " + what + ": peers would drop it: " + why);
        return;
    }
    const bool snapshot = std::holds_alternative<InfoMsg>(m);
    const bool assignment = std::holds_alternative<AcquireMsg>(m) || std::holds_alternative<ReleaseMsg>(m) ||
                            std::holds_alternative<BatchMsg>(m);
    fx_->push_back(out::Send{std::move(bytes), std::move(what), snapshot, assignment});
}

Effects Member::step(double now, const Input& input) {
    Effects fx;
    if (exited_) return fx;
    fx_ = &fx;
    // The shell ticks a live member at least every interval. A longer gap
    // means this process was stopped or starved: judge nobody silent until
    // it has listened again for a while, and face what the kernel did to
    // our addresses meanwhile (the dead-man rule, seen from the inside).
    if (last_step_at_ > 0 && now - last_step_at_ > 2 * interval()) peers_.listening_again(now);
    expire_lifetimes(now);
    last_step_at_ = now;
    std::visit(
        [&](const auto& ev) {
            using T = std::decay_t<decltype(ev)>;
            if constexpr (std::is_same_v<T, in::Membership>) on_membership(now, ev);
            else if constexpr (std::is_same_v<T, in::Quorum>) on_quorum(now, ev);
            else if constexpr (std::is_same_v<T, in::Delivered>) on_delivered(now, ev);
            else if constexpr (std::is_same_v<T, in::Tick>) on_tick(now);
            else if constexpr (std::is_same_v<T, in::Fenced>) peers_.on_fenced(now, ev, fx);
            else if constexpr (std::is_same_v<T, in::FencingMode>) peers_.on_fencing_mode(ev, fx);
            else if constexpr (std::is_same_v<T, in::DnsResult>) dns_.on_result(now, ev, cfg_, name_, fx);
            else if constexpr (std::is_same_v<T, in::TestResult>) on_test(now, ev);
            else if constexpr (std::is_same_v<T, in::LoadSample>) on_load(ev);
            else if constexpr (std::is_same_v<T, in::Fixed>) on_fixed(now, ev);
            else if constexpr (std::is_same_v<T, in::ActionDone>) on_action_done(now, ev);
            else if constexpr (std::is_same_v<T, in::AddressLost>) {
                auto it = held_.find(ev.address);
                if (it != held_.end() && it->second == AddressState::Online && !fixed_.count(ev.address)) {
                    held_.erase(it);
                    armed_at_.erase(ev.address);
                    emit(now, EventKind::Release, name_, ev.address, "address vanished from the interface: " + ev.why);
                    send_info(now);
                }
            } else if constexpr (std::is_same_v<T, in::Command>) on_command(now, ev);
            else if constexpr (std::is_same_v<T, in::Reload>) {
                cfg_ = ev.config;
                digest_ = cfg_.digest();
                peers_.set_timing(interval(), cfg_.restart_grace);
                if (cfg_.capacity) capacity_ = *cfg_.capacity;
                log(LogLevel::Notice, "configuration reloaded (digest " + digest_.substr(0, 12) + ")");
                send_info(now);
            }
        },
        input);
    if (!synced_ && have_membership_ && ready(now)) synced_ = true;
    leader_check(now);
    maybe_plan(now);
    maybe_exit();
    fx_ = nullptr;
    return fx;
}

// ---------------------------------------------------------------- this host's inputs

// The kernel drops an address whose lifetime ran out (rule 4.4). Whatever
// stopped us from refreshing it (SIGSTOP, a stalled loop, a slow disk), an
// address not re-armed for a whole lifetime is gone or about to go: stop
// believing we hold it, and remove what may be left so no copy outlives it.
void Member::expire_lifetimes(double now) {
    bool any = false;
    for (auto it = held_.begin(); it != held_.end();) {
        // An address still Acquiring has its Plumb in flight: its completion
        // (perhaps queued while we were stopped) is matched by address only,
        // so dropping it now would let that stale completion mark a newer
        // Acquire Online (simulator seed 118051). Its completion re-arms it
        // (on_action_done).
        if (it->second != AddressState::Online || !lifetime_ran_out(now, it->first)) {
            ++it;
            continue;
        }
        it = drop_expired(now, it, "not refreshed for " + secs(now - armed_at_[it->first]));
        any = true;
    }
    if (any) send_info(now);
}

bool Member::lifetime_ran_out(double now, const ServiceAddress& a) const {
    auto armed = armed_at_.find(a);
    return !fixed_.count(a) && armed != armed_at_.end() && now - armed->second >= lifetime();
}

std::map<ServiceAddress, AddressState>::iterator Member::drop_expired(
    double now, std::map<ServiceAddress, AddressState>::iterator it, const std::string& why) {
    emit(now, EventKind::Release, name_, it->first, "kernel lifetime ran out: " + why + " (raisd stalled)");
    fx_->push_back(out::Unplumb{it->first});
    reasons_.erase(it->first);
    armed_at_.erase(it->first);
    return held_.erase(it);
}

// A sample the shell could not check is checked here again (rule 4.9): a
// load that is not a finite number in range is a failed sample, never a
// value in our Info that every peer would drop.
void Member::on_load(const in::LoadSample& l) {
    double capacity = cfg_.capacity ? *cfg_.capacity : l.capacity;
    if (!valid_load_value(l.load) || !valid_load_value(capacity)) {
        if (!bad_load_reported_)
            log(LogLevel::Warning, "ignored a load sample (load " + format_number("%g", l.load) + ", capacity " +
                                         format_number("%g", capacity) + "): not a number in [0, 1e12); keeping load " +
                                         format_number("%g", load_) + " of " + format_number("%g", capacity_));
        bad_load_reported_ = true;
        return;
    }
    if (bad_load_reported_) log(LogLevel::Notice, "load samples are valid again");
    bad_load_reported_ = false;
    load_ = l.load;
    capacity_ = capacity;
}

void Member::on_fixed(double now, const in::Fixed& f) {
    if (!cfg_.preferred_node(f.address)) return;  // not a group address: none of our business
    if (f.present) {
        if (fixed_.count(f.address)) return;
        fixed_.insert(f.address);
        held_[f.address] = AddressState::Online;
        reasons_.erase(f.address);
        armed_at_.erase(f.address);
        deferred_.erase(std::remove_if(deferred_.begin(), deferred_.end(),
                                       [&](const AcquireMsg& a) { return a.address == f.address; }),
                        deferred_.end());
        log(LogLevel::Warning, f.address.str() + " is now configured statically on this host (a permanent "
                                                   "address): it is the administrator's; held here, never moved or removed");
        emit(now, EventKind::Acquire, name_, f.address, "configured statically by the administrator; held, left alone");
    } else {
        if (!fixed_.erase(f.address)) return;
        held_.erase(f.address);
        log(LogLevel::Warning, "the static copy of " + f.address.str() + " was removed by the administrator");
        emit(now, EventKind::Release, name_, f.address, "static address removed by the administrator");
    }
    send_info(now);
}

bool Member::holds_movable() const {
    for (const auto& [a, st] : held_)
        if (!fixed_.count(a)) return true;
    return false;
}

// ---------------------------------------------------------------- membership

void Member::on_membership(double now, const in::Membership& m) {
    bool new_ring = have_membership_ && m.ring != ring_;
    have_membership_ = true;
    ring_ = m.ring;
    members_ = m.members;
    view_change_at_ = now;
    cmd_count_ = 0;
    peers_.on_membership(now, m, new_ring, digest_, *fx_);
    // Acquires deferred for an older ring are void.
    deferred_.clear();
    // Every member announces itself at once after a change (DESIGN §3).
    send_info(now);
}

void Member::on_quorum(double now, const in::Quorum& q) {
    // Ring sequence numbers only grow: a notification about an older ring
    // than our membership arrived late and says nothing about now.
    if (have_membership_ && q.ring < ring_) {
        log(LogLevel::Info, "ignored a late quorum notification for ring " + std::to_string(q.ring));
        return;
    }
    bool was_quorate = quorate_now();
    quorum_known_ = true;
    quorate_ = q.quorate;
    quorum_ring_ = q.ring;
    if (!q.quorate) {
        if (!held_.empty()) release_all(now, "this host lost quorum (no-quorum-policy=stop)");
        deferred_.clear();
    } else if (quorate_now()) {
        if (!was_quorate) log(LogLevel::Info, "quorate in ring " + std::to_string(ring_));
        auto waiting = std::move(deferred_);
        deferred_.clear();
        for (const auto& a : waiting) do_acquire(now, a.address, a.handover, a.reason);
    }
}

bool Member::is_leader() const { return peers_.self_leads(); }

bool Member::ready(double now) const {
    if (now - view_change_at_ >= 3 * interval()) return true;
    // Alone just after starting: the group's other daemons are usually
    // starting too (Pacemaker starts clone instances together). Taking every
    // address now and handing them back a second later is churn clients see.
    if (!synced_ && members_.size() == 1) return false;
    return peers_.heard_everyone(now, synced_);
}

// ---------------------------------------------------------------- messages

void Member::on_delivered(double now, const in::Delivered& d) {
    auto decoded = decode(d.bytes.data(), d.bytes.size());
    if (auto* err = std::get_if<DecodeError>(&decoded)) {
        dropped_++;
        if (err->foreign_version) {
            // Another major version: we cannot know what it holds, so we
            // must not plan around it (DESIGN §3 compatibility rule).
            if (Peer* p = peers_.find(d.from)) p->foreign = err->foreign_version;
            if (foreign_reported_.insert(err->foreign_version).second)
                log(LogLevel::Error, "node " + std::to_string(d.from.node) + " pid " + std::to_string(d.from.pid) +
                                           " speaks " + err->what + ": not planning while it is in the group");
            return;
        }
        log(LogLevel::Warning, "dropped a message from node " + std::to_string(d.from.node) + " pid " +
                                     std::to_string(d.from.pid) + ": " + err->what);
        return;
    }
    const Message& msg = std::get<Message>(decoded);
    Peer* p = peers_.find(d.from);
    if (!p) {
        dropped_++;
        log(LogLevel::Warning, "dropped a message from node " + std::to_string(d.from.node) +
                                     ", which is not in the current membership");
        return;
    }
    if (auto* info = std::get_if<InfoMsg>(&msg)) {
        on_info(now, *p, *info);
    } else if (auto* acq = std::get_if<AcquireMsg>(&msg)) {
        cmd_count_++;
        on_acquire(now, d.from, *acq);
    } else if (auto* rel = std::get_if<ReleaseMsg>(&msg)) {
        cmd_count_++;
        on_release(now, d.from, *rel);
    } else if (auto* req = std::get_if<RequestMsg>(&msg)) {
        on_request(now, d.from, *req);
    } else if (auto* batch = std::get_if<BatchMsg>(&msg)) {
        cmd_count_++;  // one message, one command index for all its items
        for (const auto& it : batch->items) {
            if (it.acquire) on_acquire(now, d.from, AcquireMsg{batch->leader, batch->dest, it.address, it.handover, it.reason});
            else on_release(now, d.from, ReleaseMsg{batch->leader, batch->dest, it.address, it.reason});
        }
    }
}

void Member::on_info(double now, Peer& p, const InfoMsg& m) {
    if (m.node != p.process.node) {
        dropped_++;
        log(LogLevel::Warning, "dropped an Info claiming node " + std::to_string(m.node) + " from node " +
                                     std::to_string(p.process.node));
        return;
    }
    if (!peers_.on_info(now, p, m, cfg_.group, *fx_)) return;

    // Mirror the leader's group state (a new leader inherits it).
    if (!(p.process == self_) && m.node == peers_.leader()) {
        orphans_.clear();
        for (const auto& [a, age] : m.orphans) orphans_[a] = now - age / 1000.0;
        pins_.clear();
        for (const auto& [a, node] : m.pins) pins_[a] = node;
    }
}

bool Member::from_leader(const Process& from, std::uint32_t claimed, const char* what,
                         const ServiceAddress& a) {
    // The leader is a process, not a node: a stray CPG client on the
    // leader's node must not be obeyed (rule 4.1).
    std::uint32_t l = peers_.leader();
    const Peer* lp = l ? peers_.counted(l) : nullptr;
    if (claimed == from.node && lp && lp->process == from) return true;
    log(LogLevel::Warning, std::string("ignored ") + what + " of " + a.str() + " from node " +
                                 std::to_string(from.node) + " pid " + std::to_string(from.pid) +
                                 ", which is not the leader process" +
                                 (lp ? " (node " + std::to_string(l) + " pid " + std::to_string(lp->process.pid) + ")"
                                     : std::string()));
    return false;
}

void Member::on_acquire(double now, const Process& from, const AcquireMsg& m) {
    if (!from_leader(from, m.leader, "Acquire", m.address)) return;
    // Every member notes the command against the destination (patent step 424).
    peers_.note_command(m.dest, true, m.address, cmd_count_);
    if (m.dest != self_.node) return;
    if (!cfg_.preferred_node(m.address)) {
        log(LogLevel::Warning, "refused to acquire " + m.address.str() + ": not one of group " + cfg_.group +
                                     "'s addresses in this host's configuration");
        emit(now, EventKind::AcquireFailed, name_, m.address, "refused: not in this host's configuration of the group");
        return;
    }
    if (!ok_) return log(LogLevel::Info, "not acquiring " + m.address.str() + ": this host is failing its tests");
    if (quiesced_) return log(LogLevel::Info, "not acquiring " + m.address.str() + ": this host is quiesced");
    if (stopping_) return log(LogLevel::Info, "not acquiring " + m.address.str() + ": this host is stopping");
    if (held_.count(m.address)) return;  // a repeat
    // "Not quorate" about an older ring says nothing about this one: wait.
    if (quorum_lost() && quorum_ring_ >= ring_)
        return log(LogLevel::Info, "not acquiring " + m.address.str() + ": no quorum");
    if (!quorate_now()) {
        log(LogLevel::Info, "acquire of " + m.address.str() + " waits for quorum of ring " + std::to_string(ring_));
        deferred_.push_back(m);
        return;
    }
    do_acquire(now, m.address, m.handover, m.reason);
}

void Member::do_acquire(double now, const ServiceAddress& a, bool handover, const std::string& why) {
    if (held_.count(a) || !ok_ || quiesced_ || stopping_) return;
    // After a failed acquire (ARP probe answered, DAD failed, hook failed)
    // do not retry at once: the leader would otherwise re-send the Acquire
    // every round and we would probe the LAN in a loop.
    if (auto f = failed_at_.find(a); f != failed_at_.end() && now - f->second < acquire_backoff()) {
        log(LogLevel::Info, "not acquiring " + a.str() + " yet: it failed " + secs(now - f->second) +
                                  " ago (retry after " + secs(acquire_backoff()) + ")");
        return;
    }
    held_[a] = AddressState::Acquiring;
    armed_at_[a] = now;
    reasons_[a] = why;
    log(LogLevel::Notice, "acquiring " + a.str() + ": " + why);
    fx_->push_back(out::Plumb{a, !handover && cfg_.arp_probe_ms > 0, lifetime()});
    send_info(now);
}

void Member::on_release(double now, const Process& from, const ReleaseMsg& m) {
    if (!from_leader(from, m.leader, "Release", m.address)) return;
    peers_.note_command(m.dest, false, m.address, cmd_count_);
    if (m.dest != self_.node) return;
    auto it = held_.find(m.address);
    if (it == held_.end() || it->second == AddressState::Releasing) return;
    if (fixed_.count(m.address))
        return log(LogLevel::Warning, "not releasing " + m.address.str() +
                                            ": configured statically by the administrator (rule 4.10)");
    release_local(now, m.address, m.reason);
}

void Member::release_local(double now, const ServiceAddress& a, const std::string& why) {
    held_[a] = AddressState::Releasing;
    reasons_[a] = why;
    log(LogLevel::Notice, "releasing " + a.str() + ": " + why);
    fx_->push_back(out::Unplumb{a});
    send_info(now);
}

void Member::release_all(double now, const std::string& why) {
    bool any = false;
    for (auto& [a, st] : held_) {
        if (st == AddressState::Releasing || fixed_.count(a)) continue;
        st = AddressState::Releasing;
        reasons_[a] = why;
        log(LogLevel::Notice, "releasing " + a.str() + ": " + why);
        fx_->push_back(out::Unplumb{a});
        any = true;
    }
    if (any) send_info(now);
}

void Member::on_request(double now, const Process& from, const RequestMsg& m) {
    // Requests come only from counted members, about themselves as sender
    // (rule 4.1): a stray client must not quiesce or move anything.
    const Peer* sender = peers_.find(from);
    if (!sender || !sender->counted || m.from != from.node) {
        dropped_++;
        log(LogLevel::Warning, std::string("ignored a ") + to_string(m.kind) + " request from node " +
                                     std::to_string(from.node) + " pid " + std::to_string(from.pid) +
                                     (m.from != from.node ? " claiming to come from node " + std::to_string(m.from)
                                                          : std::string(", which is not a counted member")));
        return;
    }
    switch (m.kind) {
    case RequestKind::Quiesce:
    case RequestKind::Unquiesce:
        if (m.target == self_.node) {
            bool q = m.kind == RequestKind::Quiesce;
            if (q != quiesced_) {
                quiesced_ = q;
                fx_->push_back(out::PersistQuiesce{q});
                log(LogLevel::Notice, std::string(q ? "quiesced" : "unquiesced") + " at the request of node " +
                                            std::to_string(m.from));
                deferred_.clear();
                send_info(now);
            }
        }
        break;
    case RequestKind::Move:
        // Every member applies the pin in the same (agreed) order.
        if (!m.address.empty() && cfg_.preferred_node(m.address[0]) && peers_.counted(m.target)) {
            pins_[m.address[0]] = m.target;
            log(LogLevel::Notice, m.address[0].str() + " pinned to " + peers_.name_of(m.target) +
                                        " (move requested by node " + std::to_string(m.from) + ")");
        }
        break;
    case RequestKind::Unpin:
        if (!m.address.empty() && pins_.erase(m.address[0]))
            log(LogLevel::Notice, m.address[0].str() + " unpinned (requested by node " + std::to_string(m.from) + ")");
        break;
    }
}

// ---------------------------------------------------------------- local events

void Member::on_action_done(double now, const in::ActionDone& d) {
    auto it = held_.find(d.address);
    std::string why = reasons_.count(d.address) ? reasons_[d.address] : std::string();
    if (!d.detail.empty()) why = why.empty() ? d.detail : why + " (" + d.detail + ")";
    if (d.acquire) {
        if (it == held_.end() || it->second != AddressState::Acquiring) return;  // overtaken by a release
        // The kernel's lifetime started when the backend plumbed the
        // address: after the probe and after any operation queued ahead (a
        // slow release hook), so later than do_acquire. Counting from
        // do_acquire made a late completion look expired and dropped it, and
        // the re-sent Acquire queued behind the drop's release looped (review
        // of 04f2f6e). If the kernel did drop it while we were stopped, the
        // refresh that follows finds it missing and the backend reports it
        // lost (simulator seed 200910).
        if (d.ok) {
            armed_at_[d.address] = now;
            it->second = AddressState::Online;
            emit(now, EventKind::Acquire, name_, d.address, why);
        } else {
            held_.erase(it);
            reasons_.erase(d.address);
            armed_at_.erase(d.address);
            failed_at_[d.address] = now;
            emit(now, EventKind::AcquireFailed, name_, d.address, d.detail);
        }
    } else {
        // Only a release in progress ends here: after a stall dropped the
        // address, a new Acquire may be under way, and this late completion
        // of the old Unplumb must not erase it.
        if (it == held_.end() || it->second != AddressState::Releasing || fixed_.count(d.address)) return;
        held_.erase(it);
        reasons_.erase(d.address);
        armed_at_.erase(d.address);
        emit(now, d.ok ? EventKind::Release : EventKind::ReleaseFailed, name_, d.address, why);
    }
    send_info(now);
}

void Member::on_test(double now, const in::TestResult& t) {
    if (t.ok) {
        fails_ = 0;
        if (!ok_ && ++passes_ >= cfg_.test_failures) {
            ok_ = true;
            passes_ = 0;
            emit(now, EventKind::TestRecovered, name_, std::nullopt,
                 "health tests pass again (" + std::to_string(cfg_.test_failures) + " in a row)");
            send_info(now);
        }
        return;
    }
    passes_ = 0;
    failing_test_ = t.detail;
    if (ok_ && ++fails_ >= cfg_.test_failures) {
        ok_ = false;
        fails_ = 0;
        emit(now, EventKind::TestFailed, name_, std::nullopt,
             t.detail + " (" + std::to_string(cfg_.test_failures) + " failures in a row)");
        release_all(now, "health test failed: " + t.detail);
        deferred_.clear();
        send_info(now);
    }
}

void Member::on_command(double now, const in::Command& c) {
    auto reply = [&](bool ok, std::string msg) { fx_->push_back(out::Reply{ok, std::move(msg)}); };
    auto target = [&]() -> std::uint32_t {
        return c.node.empty() || c.node == name_ ? self_.node : peers_.id_of(c.node);
    };
    switch (c.kind) {
    case CommandKind::Quiesce:
    case CommandKind::Unquiesce: {
        bool q = c.kind == CommandKind::Quiesce;
        std::uint32_t t = target();
        if (t == 0) return reply(false, "no member named '" + c.node + "' in group " + cfg_.group);
        if (t == self_.node) {
            if (q != quiesced_) {
                quiesced_ = q;
                fx_->push_back(out::PersistQuiesce{q});
                log(LogLevel::Notice, q ? "quiesced by the operator" : "unquiesced by the operator");
                if (q) deferred_.clear();
                send_info(now);
            }
            return reply(true, name_ + (q ? " quiesced" : " unquiesced"));
        }
        RequestMsg r{self_.node, q ? RequestKind::Quiesce : RequestKind::Unquiesce, t, {}};
        send(r, std::string(to_string(r.kind)) + " " + c.node);
        return reply(true, std::string(q ? "quiesce" : "unquiesce") + " request sent to " + c.node);
    }
    case CommandKind::Move: {
        if (!c.address || !cfg_.preferred_node(*c.address))
            return reply(false, "address " + (c.address ? c.address->str() : std::string("?")) +
                                    " is not one of group " + cfg_.group + "'s addresses");
        if (c.node.empty()) return reply(false, "move needs a destination node");
        std::uint32_t t = target();
        if (t == 0) return reply(false, "no member named '" + c.node + "' in group " + cfg_.group);
        RequestMsg r{self_.node, RequestKind::Move, t, {*c.address}};
        send(r, "move " + c.address->str() + " " + c.node);
        return reply(true, "move of " + c.address->str() + " to " + c.node + " requested");
    }
    case CommandKind::Unpin: {
        if (!c.address || !cfg_.preferred_node(*c.address))
            return reply(false, "address " + (c.address ? c.address->str() : std::string("?")) +
                                    " is not one of group " + cfg_.group + "'s addresses");
        RequestMsg r{self_.node, RequestKind::Unpin, 0, {*c.address}};
        send(r, "unpin " + c.address->str());
        return reply(true, "unpin of " + c.address->str() + " requested");
    }
    case CommandKind::Stop: {
        if (!stopping_) {
            stopping_ = true;
            stop_deadline_ = now + (cfg_.stop_timeout ? *cfg_.stop_timeout : 20.0);
            deferred_.clear();
            log(LogLevel::Notice, "graceful stop: handing over " + std::to_string(held_.size()) + " address(es)");
            // Drop what is still only being acquired: nobody relies on it yet.
            for (auto& [a, st] : held_)
                if (st == AddressState::Acquiring && !fixed_.count(a)) {
                    st = AddressState::Releasing;
                    fx_->push_back(out::Unplumb{a});
                }
            send_info(now);
        }
        return reply(true, "stopping");
    }
    }
}

// ---------------------------------------------------------------- time

void Member::on_tick(double now) {
    peers_.on_tick(now, *fx_);
    last_tick_at_ = now;
    if (stopping_ && now >= stop_deadline_ && holds_movable()) {
        for (auto& [a, st] : held_) {
            if (st == AddressState::Releasing || fixed_.count(a)) continue;
            st = AddressState::Releasing;
            log(LogLevel::Warning, "stop timeout: releasing " + a.str() + " without handover");
            fx_->push_back(out::Unplumb{a});
        }
        fx_->push_back(out::Exit{0, "stop timeout passed; addresses released without handover"});
        exited_ = true;
        return;
    }
    if (now >= next_info_at_ && have_membership_) send_info(now);
}

double Member::next_wake() const { return std::max(raw_wake(), last_tick_at_ + kWakeFloor); }

bool Member::wake_overdue() const { return !exited_ && raw_wake() <= last_tick_at_; }

double Member::raw_wake() const {
    // Before the first membership there is nothing to send (send_info waits
    // for it): a due Info then must not wake us, or we would spin.
    double t = have_membership_ && !exited_ ? next_info_at_ : kNever;
    t = std::min(t, peers_.next_departure_end());
    if (stopping_) t = std::min(t, stop_deadline_);
    // The end of the wait for fresh Infos after a membership change.
    double r = view_change_at_ + 3 * interval();
    if (have_membership_ && r > last_step_at_) t = std::min(t, r);
    return t;
}

void Member::send_info(double now) {
    if (!have_membership_ || exited_) return;
    InfoMsg m;
    m.seq = ++seq_;
    m.node = self_.node;
    m.name = name_;
    m.ok = ok_;
    m.quiesced = quiesced_;
    m.stopping = stopping_;
    m.load = load_;
    m.capacity = capacity_;
    m.digest = digest_;
    m.cmd_seen = cmd_count_;
    for (const auto& [a, st] : held_) m.serving.push_back({a, st});
    m.fixed.assign(fixed_.begin(), fixed_.end());
    if (is_leader()) {
        for (const auto& [a, since] : orphans_)
            m.orphans.emplace_back(a, static_cast<std::uint32_t>(std::min(4e9, std::max(0.0, (now - since) * 1000))));
        for (const auto& [a, node] : pins_) m.pins.emplace_back(a, node);
    }
    send(m, "info");
    next_info_at_ = now + interval();
    // Lifetimes are re-armed once per interval, not with every Info: a
    // host taking 256 addresses sends hundreds of Infos in a second, and
    // re-arming all it holds each time costs 256 x 256 netlink requests.
    // Half an interval, not a whole one: an Info sent a little early (at a
    // view change) would otherwise make the next periodic Info skip the
    // refresh, and the lifetimes would be re-armed only every 2 intervals.
    if (!held_.empty() && now >= next_refresh_at_) {
        std::vector<ServiceAddress> v;
        // Online only: an Acquiring address gets its lifetime from its
        // Plumb, and re-arming it here (after a stall, before a completion
        // queued meanwhile arrives) would hide that the kernel dropped it.
        for (const auto& [a, st] : held_)
            if (st == AddressState::Online && !fixed_.count(a)) {
                v.push_back(a);
                armed_at_[a] = now;
            }
        if (!v.empty()) fx_->push_back(out::Refresh{v, lifetime()});
        next_refresh_at_ = now + interval() / 2;
    }
}

// ---------------------------------------------------------------- leader

void Member::leader_check(double now) {
    // A minority's "leader" leads nothing: announce leadership only with quorum.
    if (!synced_ || !quorate_now()) return;
    std::uint32_t l = peers_.leader();
    if (l == last_leader_) return;
    last_leader_ = l;
    if (l == self_.node && is_leader())
        emit(now, EventKind::Leader, name_, std::nullopt, name_ + " leads group " + cfg_.group + " (lowest node id)");
}

View Member::view(double now) const {
    View v;
    v.config = cfg_;
    v.now = now;
    // Addresses some member holds statically are the administrator's (rule
    // 4.10): out of the plan, so nothing is assigned to or taken from their
    // static holder, while any other copy is told to go as an unknown address.
    std::map<ServiceAddress, std::uint32_t> fixed = peers_.fixed_addresses();
    if (!fixed.empty())
        v.config.addresses.erase(std::remove_if(v.config.addresses.begin(), v.config.addresses.end(),
                                                [&](const auto& pa) { return fixed.count(pa.address) > 0; }),
                                 v.config.addresses.end());
    peers_.add_hosts(v, fixed, digest_);
    v.orphans = orphans_;
    for (const auto& [a, node] : pins_) v.pins[a] = peers_.name_of(node);
    return v;
}

void Member::maybe_plan(double now) {
    // Leading the zone ends with leadership, not with a pause for readiness.
    if (exited_ || !is_leader() || quorum_lost()) dns_.step_down();
    if (exited_ || !synced_ || !is_leader() || !quorate_now() || !ready(now)) return;
    if (peers_.any_foreign()) return;  // reported when its first message came in
    View v = view(now);
    Plan p = plan(v, random_);
    dns_.plan(v, *fx_);

    for (const auto& [a, since] : p.orphans)
        if (!orphans_.count(a)) {
            const std::string* pn = cfg_.preferred_node(a);
            emit(now, EventKind::Orphaned, pn ? *pn : "", a, (pn ? *pn : std::string("?")) + " is not a member");
        }
    bool group_state_changed = p.orphans.size() != orphans_.size();
    orphans_ = p.orphans;
    std::map<ServiceAddress, std::uint32_t> pins;
    for (const auto& [a, node] : p.pins)
        if (std::uint32_t id = peers_.id_of(node)) pins[a] = id;
    group_state_changed = group_state_changed || pins != pins_;
    pins_ = pins;
    for (auto it = expired_.begin(); it != expired_.end();)
        it = orphans_.count(*it) ? std::next(it) : expired_.erase(it);
    for (const auto& n : p.notes)
        if (notes_.insert(n).second) log(LogLevel::Warning, n);

    std::set<ServiceAddress> cannot;
    // Commands go out one message per destination (a Batch when there are
    // several), in the order the planner decided them.
    std::vector<std::uint32_t> dests;
    std::map<std::uint32_t, BatchMsg> batches;
    for (const auto& d : p.decisions) {
        switch (d.action) {
        case Action::Acquire:
            peers_.note_command(d.node_id, true, d.address, PeerTable::kInFlight);
            log(LogLevel::Notice, "decision: " + d.node + " acquires " + d.address.str() + ": " + d.reason);
            break;
        case Action::Expire:
            if (expired_.insert(d.address).second) emit(now, EventKind::Expired, d.node, d.address, d.reason);
            [[fallthrough]];
        case Action::Release:
            peers_.note_command(d.node_id, false, d.address, PeerTable::kInFlight);
            log(LogLevel::Notice, "decision: " + d.node + " releases " + d.address.str() + ": " + d.reason);
            break;
        case Action::CannotAssign:
            cannot.insert(d.address);
            if (!cannot_assign_.count(d.address)) emit(now, EventKind::CannotAssign, "", d.address, d.reason);
            continue;
        }
        if (!batches.count(d.node_id)) {
            dests.push_back(d.node_id);
            batches[d.node_id] = BatchMsg{self_.node, d.node_id, {}};
        }
        // No ARP probe on a handover (the old holder still serves) or when
        // fencing confirmed the last holder down: nothing can answer it.
        bool no_probe = d.handover;
        std::string reason = d.reason;
        if (d.action == Action::Acquire && peers_.take_confirmed_gone(now, d.address) && !no_probe) {
            no_probe = true;
            reason += "; no ARP probe: fencing confirmed its last holder down";
        }
        batches[d.node_id].items.push_back({d.action == Action::Acquire, d.address, no_probe, reason});
    }
    for (std::uint32_t dest : dests) {
        BatchMsg& b = batches[dest];
        const std::string who = peers_.name_of(dest);
        if (b.items.size() > 1) {
            for (auto& it : b.items) it.reason = without_figures(it.reason);
            send(b, "batch of " + std::to_string(b.items.size()) + " -> " + who);
        } else if (b.items[0].acquire) {
            send(AcquireMsg{b.leader, dest, b.items[0].address, b.items[0].handover, b.items[0].reason},
                 "acquire " + b.items[0].address.str() + " -> " + who);
        } else {
            send(ReleaseMsg{b.leader, dest, b.items[0].address, b.items[0].reason},
                 "release " + b.items[0].address.str() + " -> " + who);
        }
    }
    cannot_assign_ = cannot;
    if (group_state_changed) send_info(now);
}

void Member::maybe_exit() {
    if (stopping_ && !exited_ && !holds_movable()) {
        exited_ = true;
        fx_->push_back(out::Exit{0, "graceful stop complete: nothing held"});
    }
}

bool Member::settled(double now) const {
    if (exited_ || stopping_ || !synced_ || !quorate_now() || !peers_.leader() || !ready(now)) return false;
    for (const auto& [a, st] : held_)
        if (st != AddressState::Online) return false;
    // Only a copy of the random source: asking must not change what the
    // leader will draw.
    RandomSource r = random_;
    Plan p = plan(view(now), r);
    for (const auto& d : p.decisions) {
        if (d.action == Action::CannotAssign) continue;
        if (d.node == name_) return false;
        // Failback releases our preferred address elsewhere first; we
        // acquire it in a later pass.
        const std::string* preferred = cfg_.preferred_node(d.address);
        if (preferred && *preferred == name_) return false;
        // With random placement, who gets an unserved address is drawn: we
        // might be the one.
        if (d.action == Action::Acquire && cfg_.placement == Placement::Random) return false;
    }
    return true;
}

MemberStatus Member::status(double now) const {
    MemberStatus s;
    s.group = cfg_.group;
    s.name = name_;
    s.self = self_;
    s.leader = peers_.leader();
    s.leader_name = s.leader ? peers_.name_of(s.leader) : "";
    s.quorate = quorate_now();
    s.quorum_known = quorum_known_;
    s.ready = ready(now);
    s.settled = settled(now);
    s.fencing_active = peers_.fencing_active();
    s.load = load_;
    s.capacity = capacity_;
    s.ring = ring_;
    s.ok = ok_;
    if (!ok_) s.failing_test = failing_test_;
    s.quiesced = quiesced_;
    s.stopping = stopping_;
    s.held = held_;
    s.peers = peers_.statuses(digest_);
    s.orphans = orphans_;
    for (const auto& [a, node] : pins_) s.pins[a] = peers_.name_of(node);
    s.cannot_assign = cannot_assign_;
    s.dropped_messages = dropped_;
    s.unsent_messages = unsent_;
    s.fixed = fixed_;
    for (const auto& a : fixed_) s.fixed_holders[a] = name_;
    for (const auto& [proc, p] : peers_.all())
        if (p.counted && p.has_info && !(proc == self_))
            for (const auto& a : p.info.fixed) s.fixed_holders.emplace(a, p.info.name);
    s.two_node = peers_.two_node();
    s.dns = dns_.leading();
    s.dns_wanted = dns_.wanted();
    s.dns_changes = dns_.changes();
    return s;
}

}  // namespace rais
