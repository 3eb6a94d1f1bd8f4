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

#include "daemon/kernel/address_backend.h"

#include <gio/gio.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
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
        SequencerOptions so;
        so.nic = opts_.nic;
        so.arp_probe_ms = opts_.arp_probe_ms;
        so.announce_interval = opts_.announce_interval;
        so.hook = !opts_.hook.empty();
        KernelPort& port = *this;  // private base: converted here, where it is accessible
        seq_ = std::make_unique<AddressSequencer>(std::move(so), port);
        return true;
    }

    void acquire(const ServiceAddress& a, bool probe, double lifetime) override {
        feed(in::Acquire{a, probe, lifetime});
    }

    void release(const ServiceAddress& a) override { feed(in::Release{a}); }

    void refresh(const std::vector<ServiceAddress>& held, double lifetime) override {
        // A replace of a missing address re-creates it. Handle the pending
        // deletions first, so an address that vanished is reported lost (with
        // its reason) and not resurrected.
        netlink_->look();
        process_events();
        feed(in::Refresh{held, lifetime});
    }

    std::vector<ServiceAddress> present(const std::vector<ServiceAddress>& group) override {
        std::vector<ServiceAddress> out;
        netlink_->look();
        for (const auto& a : group)
            if (netlink_->table().find_any(a)) out.push_back(a);
        return out;
    }

    std::vector<ServiceAddress> permanent(const std::vector<ServiceAddress>& group) override {
        netlink_->look();
        process_events();  // report what changed for the group watched so far first
        return seq_->watch(group);
    }

    std::string interface_for(const ServiceAddress& a) override {
        std::string nic = seq_->interface_of(a);
        if (!nic.empty()) return nic;
        netlink_->look();
        const AddrRecord* rec = netlink_->table().find_any(a);
        return rec ? interface_name(rec->ifindex) : std::string();
    }

private:
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

    void feed(Input input) {
        inbox_.push_back(std::move(input));
        if (feeding_) return;  // the loop below takes it
        feeding_ = true;
        while (!inbox_.empty()) {
            Input next = std::move(inbox_.front());
            inbox_.pop_front();
            netlink_->look();  // the sequencer decides on a table as fresh as a dump
            double now = monotonic_now();
            apply(now, seq_->step(now, next));
        }
        feeding_ = false;
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
                    } else {
                        apply_one(x);
                    }
                },
                fx);
        }
        if (!woken) wake_.reset();
    }

    void apply_one(const out::Add& x) {
        std::string why;
        ServiceAddress key = x.key;
        std::uint64_t op = x.op;
        auto ack = [this, key, op](int err, const std::string& ext) {
            feed(in::Added{key, op, err, netlink_error_text(err, ext), ""});
        };
        if (!netlink_->add(x.addr, x.ifindex, x.replace, x.lifetime, ack, &why))
            feed(in::Added{key, op, 0, "", why});
    }
    void apply_one(const out::Remove& x) {
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
        bool started = announcer_->probe(x.key, x.ifindex, x.nic, x.link, [this, key, op](const std::string& mac) {
            feed(in::ProbeAnswered{key, op, mac});
        });
        if (!started) feed(in::ProbeSkipped{key, op});
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
        post([this, x] {
            if (cb_.lost) cb_.lost(x.addr, x.why);
        });
    }
    void apply_one(const out::Fixed& x) {
        post([this, x] {
            if (cb_.fixed) cb_.fixed(x.addr, x.present);
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
        log(LogLevel::Debug, "running " + opts_.hook + " " + what + " " + addr + " " + x.nic);
        ChildOptions o;
        o.timeout_ms = static_cast<unsigned>(std::clamp(opts_.hook_timeout * 1000.0, 1.0, 86400000.0));
        ServiceAddress key = x.key;
        std::uint64_t op = x.op;
        Hook& h = hooks_[key];
        h.op = op;
        h.child = std::make_unique<ChildProcess>(
            std::vector<std::string>{opts_.hook, what, addr, x.nic}, o, [this, key, op](const ChildResult& r) {
                Impl* self = this;  // the captures go with the ChildProcess below
                ServiceAddress k = key;
                std::uint64_t o = op;
                std::string detail;
                if (r.ok()) {
                    if (!r.output.empty()) self->log(LogLevel::Debug, "hook output: " + r.output);
                } else {
                    std::string why = r.timed_out ? "timed out after " + seconds_text(self->opts_.hook_timeout) +
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
    std::deque<std::function<void()>> posted_;
    // Declared last, destroyed first: no source or child outlives what it reads.
    std::map<ServiceAddress, Hook> hooks_;
    SourcePtr wake_, post_source_;
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
