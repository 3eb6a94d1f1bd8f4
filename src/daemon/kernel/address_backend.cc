// The netlink address backend (see address_backend.h for the sequence of an
// acquire): the shell around the three rooms. The AddressSequencer decides;
// Netlink talks rtnetlink and keeps the kernel's table; the Announcer sends
// probes and announcements. This file feeds the sequencer what happened and
// applies the effects it asks for, on the GMainContext that was
// thread-default when the backend was created; nothing here sleeps or waits
// on the network.
//
// Every input goes through one queue (feed): an answer that arrives while
// effects are being applied (a refresh reads ACKs as it sends, a probe that
// cannot start answers at once) is handled after them, never inside another
// step. Callbacks to the owner are posted and delivered from an idle source,
// never from inside our own handlers, so the owner may call back into the
// backend (or destroy it) from a callback.
//
// Scale (issue 13): acquire() and netlink ACKs only queue their input and
// run the queue from a high-priority idle, so the acquires of one main-loop
// iteration (a leader's Batch) reach the sequencer as one in::AcquireBatch
// (one probe deadline) and the ACKs read together as one in::AddedBatch
// (one burst of announcements). Every other entry point runs the queue
// first, so the order of requests is kept. Consecutive out::Add effects go
// to the kernel as one netlink batch.

#include "daemon/kernel/address_backend.h"

#include <gio/gio.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <optional>
#include <type_traits>
#include <utility>

#include "core/text.h"
#include "daemon/child_process.h"
#include "daemon/kernel/address_sequencer.h"
#include "daemon/kernel/announcer.h"
#include "daemon/kernel/loop.h"
#include "daemon/kernel/netlink.h"

namespace rais {
namespace {

using namespace kernel;

std::string seconds_text(double s) { return format_number("%g", s); }

double monotonic_now() { return static_cast<double>(g_get_monotonic_time()) / G_USEC_PER_SEC; }

class Impl final : public AddressBackend, private KernelPort {
public:
    Impl(AddressBackendOptions opts, Callbacks cb)
        : opts_(std::move(opts)), cb_(std::move(cb)), ctx_(g_main_context_ref_thread_default()),
          self_(std::make_shared<Impl*>(this)) {}

    ~Impl() override {
        self_.reset();
        hooks_.clear();  // kills running hooks
    }

    bool open(std::string* why) {
        auto log_fn = [this](LogLevel level, const std::string& text) { log(level, text); };
        netlink_ = Netlink::open(ctx_.get(), Netlink::Callbacks{log_fn, [this] { process_events(); }}, why);
        if (!netlink_) return false;
        announcer_ = Announcer::open(ctx_.get(), log_fn, why);
        if (!announcer_) return false;
        KernelPort& port = *this;  // private base: converted here, where it is accessible
        seq_ = std::make_unique<AddressSequencer>(sequencer_options(opts_), port);
        return true;
    }

    void acquire(const ServiceAddress& a, bool probe, double lifetime) override {
        post_input(in::Acquire{a, probe, lifetime});
    }

    void reconfigure(const AddressBackendOptions& opts) override {
        run_inbox();  // what was asked before the reload starts under the old options
        std::string nic = opts_.nic;
        opts_ = opts;
        opts_.nic = nic;
        seq_->reconfigure(sequencer_options(opts_));
    }

    void release(const ServiceAddress& a) override { feed(in::Release{a}); }

    void refresh(const std::vector<ServiceAddress>& held, double lifetime) override {
        // A replace of a missing address re-creates it. Handle the pending
        // deletions first, so an address that vanished is reported lost (with
        // its reason) and not resurrected.
        run_inbox();
        netlink_->look();
        process_events();
        feed(in::Refresh{held, lifetime});
    }

    std::vector<ServiceAddress> present(const std::vector<ServiceAddress>& group) override {
        std::vector<ServiceAddress> out;
        run_inbox();
        netlink_->look();
        for (const auto& a : group)
            if (netlink_->table().find_any(a)) out.push_back(a);
        return out;
    }

    std::vector<ServiceAddress> permanent(const std::vector<ServiceAddress>& group) override {
        run_inbox();
        netlink_->look();
        process_events();  // report what changed for the group watched so far first
        return seq_->watch(group);
    }

    std::string interface_for(const ServiceAddress& a) override {
        run_inbox();
        std::string nic = seq_->interface_of(a);
        if (!nic.empty()) return nic;
        netlink_->look();
        const AddrRecord* rec = netlink_->table().find_any(a);
        return rec ? interface_name(rec->ifindex) : std::string();
    }

private:
    static SequencerOptions sequencer_options(const AddressBackendOptions& o) {
        SequencerOptions so;
        so.nic = o.nic;
        so.arp_probe_ms = o.arp_probe_ms;
        so.announce_interval = o.announce_interval;
        so.hook = !o.hook.empty();
        so.hook_command = o.hook;
        so.hook_timeout = o.hook_timeout;
        return so;
    }

    // ---- KernelPort --------------------------------------------------------

    const AddressTable& table() const override { return netlink_->table(); }
    std::string ifname(int ifindex) const override { return interface_name(ifindex); }
    int ifindex(const std::string& nic) const override { return interface_index(nic); }
    LinkInfo link(const std::string& nic) const override { return announcer_->link(nic); }
    PromoteResult promote_secondaries(const std::string& nic) override { return kernel::promote_secondaries(nic); }

    // ---- feeding the sequencer ---------------------------------------------

    void log(LogLevel level, const std::string& text) {
        if (cb_.log) cb_.log(level, text);
    }

    void process_events() {
        auto events = netlink_->take_events();
        if (!events.empty()) feed(in::KernelEvents{std::move(events)});
    }

    // Handles input now (after whatever is queued).
    void feed(Input input) {
        inbox_.push_back(std::move(input));
        run_inbox();
    }

    // Handles input from the queue's idle, together with what else arrives
    // in this main-loop iteration.
    void post_input(Input input) {
        inbox_.push_back(std::move(input));
        if (!feeding_ && !kick_) kick_ = idle(ctx_.get(), on_kick, this, G_PRIORITY_HIGH);
    }
    static gboolean on_kick(gpointer p) {
        static_cast<Impl*>(p)->run_inbox();  // drops kick_, destroying this source in its dispatch
        return G_SOURCE_REMOVE;
    }

    void run_inbox() {
        if (feeding_) return;  // the loop below takes it
        feeding_ = true;
        kick_.reset();
        while (!inbox_.empty()) {
            Input next = take_input();
            netlink_->look();  // the sequencer decides on a table as fresh as a dump
            double now = monotonic_now();
            apply(now, seq_->step(now, next));
        }
        feeding_ = false;
    }

    // The next input; a run of acquires, of add ACKs or of late probes
    // becomes one batch.
    Input take_input() {
        Input first = std::move(inbox_.front());
        inbox_.pop_front();
        if (auto* p = std::get_if<in::ProbesSent>(&first)) {
            while (!inbox_.empty() && std::holds_alternative<in::ProbesSent>(inbox_.front())) {
                auto& more = std::get<in::ProbesSent>(inbox_.front()).items;
                p->items.insert(p->items.end(), more.begin(), more.end());
                inbox_.pop_front();
            }
            return first;
        }
        if (auto batch = take_run<in::Acquire, in::AcquireBatch>(first)) return std::move(*batch);
        if (auto batch = take_run<in::Added, in::AddedBatch>(first)) return std::move(*batch);
        return first;
    }

    // `first` and the One inputs right behind it in the inbox as one Batch;
    // nothing when first is not a One or stands alone.
    template <typename One, typename Batch>
    std::optional<Batch> take_run(Input& first) {
        auto* one = std::get_if<One>(&first);
        if (!one || inbox_.empty() || !std::holds_alternative<One>(inbox_.front())) return std::nullopt;
        Batch batch{{std::move(*one)}};
        while (!inbox_.empty() && std::holds_alternative<One>(inbox_.front())) {
            batch.list.push_back(std::move(std::get<One>(inbox_.front())));
            inbox_.pop_front();
        }
        return batch;
    }

    void apply(double now, const Effects& effects) {
        bool woken = false;
        for (const auto& fx : effects) {
            std::visit(
                [&](const auto& x) {
                    using T = std::decay_t<decltype(x)>;
                    if constexpr (std::is_same_v<T, out::Wake>) {
                        arm_wake(now, x.at);
                        woken = true;
                    } else if constexpr (std::is_same_v<T, out::Add>) {
                        adds_.push_back(x);
                    } else {
                        // What touches the kernel or the wire keeps its order with the adds.
                        if constexpr (std::is_same_v<T, out::Remove> || std::is_same_v<T, out::Refresh> ||
                                      std::is_same_v<T, out::ProbeStart> || std::is_same_v<T, out::Announce> ||
                                      std::is_same_v<T, out::RunHook>)
                            send_adds();
                        apply_one(x);
                    }
                },
                fx);
        }
        send_adds();
        if (!probes_sent_.items.empty()) inbox_.push_back(std::exchange(probes_sent_, {}));
        if (!woken) wake_.reset();
    }

    void send_adds() {
        if (adds_.empty()) return;
        std::vector<Netlink::AddRequest> list;
        list.reserve(adds_.size());
        for (const auto& x : adds_) {
            ServiceAddress key = x.key;
            std::uint64_t op = x.op;
            auto ack = [this, key, op](int err, const std::string& ext) {
                post_input(in::Added{key, op, err, netlink_error_text(err, ext), ""});
            };
            list.push_back(Netlink::AddRequest{x.addr, x.ifindex, x.replace, x.lifetime, std::move(ack), x.nodad});
        }
        adds_.clear();
        netlink_->add_batch(std::move(list));
    }
    void apply_one(const out::Remove& x) {
        announcer_->forget(x.addr);
        std::string why;
        ServiceAddress key = x.key, addr = x.addr;
        std::uint64_t op = x.op;
        auto ack = [this, key, op, addr](int err, const std::string& ext) {
            feed(in::Removed{key, op, addr, err, netlink_error_text(err, ext), ""});
        };
        if (!netlink_->remove(x.addr, x.ifindex, ack, &why)) feed(in::Removed{key, op, addr, 0, "", why});
    }
    void apply_one(const out::Refresh& x) {
        std::vector<Netlink::Lifetime> list;
        for (const auto& item : x.items) {
            ServiceAddress a = item.name;
            list.push_back(Netlink::Lifetime{item.addr, item.ifindex, [this, a](int err, const std::string& ext) {
                                                 if (err)
                                                     log(LogLevel::Warning, "refresh of " + a.str() +
                                                                       " failed: " + netlink_error_text(err, ext));
                                             }});
        }
        netlink_->refresh(std::move(list), x.lifetime);
    }
    void apply_one(const out::ProbeStart& x) {
        ServiceAddress key = x.key;
        std::uint64_t op = x.op;
        auto answered = [this, key, op](const std::string& mac) { feed(in::ProbeAnswered{key, op, mac}); };
        auto sent_late = [this, key, op] { post_input(in::ProbesSent{{in::ProbesSent::Item{key, op}}}); };
        switch (announcer_->probe(x.key, x.ifindex, x.nic, x.link, answered, sent_late)) {
        case Announcer::ProbeStatus::Sent:
            probes_sent_.items.push_back(in::ProbesSent::Item{key, op});  // one step for the batch: one deadline
            break;
        case Announcer::ProbeStatus::Queued:
            break;  // sent_late reports it
        case Announcer::ProbeStatus::Failed:
            feed(in::ProbeSkipped{key, op});
            break;
        }
    }
    void apply_one(const out::ProbeStop& x) { announcer_->stop_probe(x.key); }
    void apply_one(const out::Announce& x) { announcer_->announce(x.addr, x.ifindex, x.nic, x.link); }
    void apply_one(const out::RunHook& x) { run_hook(x); }
    void apply_one(const out::StopHook& x) { hooks_.erase(x.key); }
    void apply_one(const out::Done& x) {
        post([this, x] {
            if (cb_.done) cb_.done(x.addr, x.acquire, x.ok, x.detail);
        });
    }
    void apply_one(const out::Lost& x) {
        announcer_->forget(x.addr);
        post([this, x] {
            if (cb_.lost) cb_.lost(x.addr, x.why);
        });
    }
    void apply_one(const out::Fixed& x) {
        post([this, x] {
            if (cb_.fixed) cb_.fixed(x.addr, x.present);
        });
    }
    void apply_one(const out::Step& x) {
        if (!cb_.step) return;
        // Stamped now: the post reaches the owner after the whole batch.
        double at = monotonic_now();
        post([this, x, at] {
            if (cb_.step) cb_.step(x.addr, x.step, at);
        });
    }
    void apply_one(const out::Log& x) { log(x.level, x.text); }
    void apply_one(const out::Continue&) { inbox_.push_back(in::Continue{}); }

    // One timer for every deadline of the sequencer.
    void arm_wake(double now, double at) {
        double ms = std::ceil((at - now) * 1000.0);
        auto delay = static_cast<unsigned>(std::clamp(ms, 0.0, 86400000.0));
        wake_ = timeout(ctx_.get(), delay, on_wake, this);
    }
    static gboolean on_wake(gpointer p) {
        // The Tick's step re-arms or drops wake_, destroying this source
        // inside its own dispatch, which GLib allows.
        static_cast<Impl*>(p)->feed(in::Tick{});
        return G_SOURCE_REMOVE;
    }

    // ---- the hook ----------------------------------------------------------

    struct Hook {
        std::uint64_t op = 0;
        std::unique_ptr<ChildProcess> child;  // killed with its process group when destroyed
    };

    void run_hook(const out::RunHook& x) {
        const char* what = x.acquire ? "acquire" : "release";
        std::string addr = x.addr.str();
        log(LogLevel::Debug, "running " + x.command + " " + what + " " + addr + " " + x.nic);
        ChildOptions o;
        o.timeout_ms = static_cast<unsigned>(std::clamp(x.timeout * 1000.0, 1.0, 86400000.0));
        double timeout = x.timeout;
        ServiceAddress key = x.key;
        std::uint64_t op = x.op;
        Hook& h = hooks_[key];
        h.op = op;
        h.child = std::make_unique<ChildProcess>(
            std::vector<std::string>{x.command, what, addr, x.nic}, o, [this, key, op, timeout](const ChildResult& r) {
                Impl* self = this;  // the captures go with the ChildProcess below
                ServiceAddress k = key;
                std::uint64_t o = op;
                std::string detail;
                if (r.ok()) {
                    if (!r.output.empty()) self->log(LogLevel::Debug, "hook output: " + r.output);
                } else {
                    std::string why = r.timed_out ? "timed out after " + seconds_text(timeout) +
                                                        " s and was killed"
                                                  : r.status();
                    detail = "hook " + why + (r.output.empty() ? "" : ": " + r.output);
                }
                bool ok = r.ok();
                auto it = self->hooks_.find(k);
                if (it != self->hooks_.end() && it->second.op == o) self->hooks_.erase(it);
                self->feed(in::HookDone{k, o, ok, detail});
            });
    }

    // ---- callbacks to the owner ----------------------------------------------

    void post(std::function<void()> fn) {
        posted_.push_back(std::move(fn));
        if (!post_source_) post_source_ = idle(ctx_.get(), on_posted, this);
    }

    static gboolean on_posted(gpointer p) {
        auto* self = static_cast<Impl*>(p);
        std::weak_ptr<Impl*> alive = self->self_;
        std::deque<std::function<void()>> batch;
        batch.swap(self->posted_);
        self->post_source_.reset();
        for (auto& fn : batch) {
            fn();
            if (alive.expired()) break;  // the owner destroyed us from a callback
        }
        return G_SOURCE_REMOVE;
    }

    AddressBackendOptions opts_;
    Callbacks cb_;
    ContextPtr ctx_;
    std::shared_ptr<Impl*> self_;
    std::unique_ptr<Netlink> netlink_;
    std::unique_ptr<Announcer> announcer_;
    std::unique_ptr<AddressSequencer> seq_;
    std::deque<Input> inbox_;
    bool feeding_ = false;
    std::vector<out::Add> adds_;     // of the effects being applied, not sent yet
    in::ProbesSent probes_sent_;     // of the effects being applied
    std::deque<std::function<void()>> posted_;
    // Declared last, destroyed first: no source or child outlives what it reads.
    std::map<ServiceAddress, Hook> hooks_;
    SourcePtr wake_, post_source_, kick_;
};

}  // namespace

std::unique_ptr<AddressBackend> AddressBackend::create(AddressBackendOptions opts, Callbacks cb, std::string* error) {
    auto impl = std::make_unique<Impl>(std::move(opts), std::move(cb));
    std::string why;
    if (!impl->open(&why)) {
        if (error) *error = why;
        return nullptr;
    }
    return impl;
}

}  // namespace rais

namespace rais {

const char* to_string(AcquireStep s) {
    switch (s) {
    case AcquireStep::ProbeSent: return "probe sent";
    case AcquireStep::ProbeSettled: return "probe settled";
    case AcquireStep::Plumbed: return "netlink acknowledged";
    case AcquireStep::Announced: return "announced";
    }
    return "?";
}

}  // namespace rais
