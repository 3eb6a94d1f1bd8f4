#include "daemon/cluster/pacemaker.h"

#include <glib-unix.h>
#include <glib.h>

#include <cstring>
#include <vector>

// Pacemaker 2.1.5's stonith-ng.h names a parameter `namespace`, which C++
// reserves (DESIGN §8).
#define namespace namespace_
#include <crm/common/results.h>
#include <crm/stonith-ng.h>
#undef namespace

#include "daemon/child_process.h"
#include "daemon/cluster/fencing_state.h"

namespace rais {

namespace {
constexpr guint kFencerRetryS = 2;
constexpr guint kStonithPollS = 10;
constexpr unsigned kChildTimeoutMs = 10000;
// Levels as LogLevel: Debug 0, Info 1, Notice 2, Warning 3.

bool crm_true(std::string v) {
    for (auto& c : v) c = static_cast<char>(g_ascii_tolower(c));
    return v == "true" || v == "yes" || v == "on" || v == "y" || v == "1";
}
}  // namespace

struct PacemakerLink::Impl {
    std::string group;
    bool watch_fencing;
    Callbacks cb;

    // fencer
    stonith_t* st = nullptr;
    guint st_source = 0;
    guint retry = 0;
    bool st_disconnected = false;
    bool said_no_fencer = false;

    // stonith-enabled
    guint poll = 0;
    std::unique_ptr<ChildProcess> query;
    bool have_answer = false;           // the callback has been told once
    StonithState stonith;
    bool said_query_failed = false;

    // node attributes
    std::map<std::string, std::string> published, wanted;
    std::unique_ptr<ChildProcess> updater;
    std::string updating_key, updating_value;
    bool said_attr_failure = false;

    ~Impl() {
        if (retry) g_source_remove(retry);
        if (poll) g_source_remove(poll);
        drop_fencer();
    }

    // ------------------------------------------------------------ fencer

    // libstonithd's notification callbacks carry no user data; one raisd
    // process has one link, so a process-wide pointer serves.
    static Impl* current;

    static void on_fence(stonith_t*, stonith_event_t* e) {
        Impl* self = current;
        if (!self || !e || !e->target) return;
        // e->operation is the notification's type; the fencing action is e->action.
        std::string op = e->action ? e->action : e->operation ? e->operation : "";
        std::string detail = "fencing " + op + " of " + e->target + " by " +
                             (e->executioner ? e->executioner : std::string("?")) +
                             (e->device ? std::string(" (device ") + e->device + ")" : std::string()) + ": " +
                             pcmk_strerror(e->result);
        if (e->result != pcmk_ok || (op != "off" && op != "reboot")) {
            self->cb.log(LogLevel::Notice, detail + " (not a confirmation that it is down)");
            return;
        }
        self->cb.log(LogLevel::Notice, detail);
        self->cb.fenced(e->target, detail);
    }

    static void on_disconnect(stonith_t*, stonith_event_t*) {
        if (current) current->st_disconnected = true;
    }

    void drop_fencer() {
        if (st_source) g_source_remove(st_source);
        st_source = 0;
        if (st) {
            st->cmds->disconnect(st);
            stonith_api_delete(st);
        }
        st = nullptr;
    }

    bool connect_fencer() {
        st = stonith_api_new();
        if (!st) return false;
        int fd = -1;
        std::string name = "raisd-" + group;
        int rc = st->cmds->connect(st, name.c_str(), &fd);
        if (rc != pcmk_ok || fd < 0) {
            if (!said_no_fencer)
                cb.log(LogLevel::Info, std::string("no connection to Pacemaker's fencer (") + pcmk_strerror(rc) +
                                  "); retrying every " + std::to_string(kFencerRetryS) + " s");
            said_no_fencer = true;
            stonith_api_delete(st);
            st = nullptr;
            return false;
        }
        st->cmds->register_notification(st, T_STONITH_NOTIFY_DISCONNECT, on_disconnect);
        st->cmds->register_notification(st, T_STONITH_NOTIFY_FENCE, on_fence);
        st_disconnected = false;
        said_no_fencer = false;
        st_source = g_unix_fd_add(
            fd, static_cast<GIOCondition>(G_IO_IN | G_IO_HUP | G_IO_ERR),
            [](gint, GIOCondition, gpointer p) -> gboolean {
                auto* self = static_cast<Impl*>(p);
                bool ok = stonith_dispatch(self->st);
                if (ok && !self->st_disconnected) return G_SOURCE_CONTINUE;
                self->st_source = 0;  // removed by returning G_SOURCE_REMOVE
                self->cb.log(LogLevel::Warning, "lost the connection to Pacemaker's fencer; reconnecting");
                self->drop_fencer();
                self->schedule_retry();
                return G_SOURCE_REMOVE;
            },
            this);
        cb.log(LogLevel::Notice, "connected to Pacemaker's fencer: fence confirmations will release departed hosts' addresses");
        return true;
    }

    void schedule_retry() {
        if (retry) return;
        retry = g_timeout_add_seconds(
            kFencerRetryS,
            [](gpointer p) -> gboolean {
                auto* self = static_cast<Impl*>(p);
                if (self->connect_fencer()) {
                    self->retry = 0;
                    return G_SOURCE_REMOVE;
                }
                return G_SOURCE_CONTINUE;
            },
            this);
    }

    // ------------------------------------------------------------ stonith-enabled

    void query_stonith() {
        if (query && query->running()) return;
        ChildOptions o;
        o.timeout_ms = kChildTimeoutMs;
        o.merge_stderr = false;
        // --default: Pacemaker's own default when the property is unset.
        query = std::make_unique<ChildProcess>(
            std::vector<std::string>{"crm_attribute", "--type", "crm_config", "--name", "stonith-enabled", "--query",
                                     "--quiet", "--default", "true"},
            o, [this](const ChildResult& r) {
                StonithAnswer answer = StonithAnswer::Failed;
                std::string detail;
                if (r.ok() && !r.output.empty()) {
                    answer = StonithAnswer::Value;
                    detail = "the cluster's stonith-enabled is " + r.output;
                } else if (!r.started && !crm_attribute_installed()) {
                    // Only this means "no fencing": a failed query is unknown, not off.
                    answer = StonithAnswer::NotInstalled;
                    detail = std::string("Pacemaker is not installed (no crm_attribute in ") + kChildPath +
                             "), so nothing fences";
                } else {
                    detail = "Pacemaker does not answer (crm_attribute: " + r.status() +
                             (r.output.empty() ? "" : ": " + r.output.substr(0, 200)) + ")";
                }
                StonithState next =
                    next_stonith_state(stonith, answer, answer == StonithAnswer::Value && crm_true(r.output), detail);
                bool changed = !have_answer || next.enabled != stonith.enabled;
                if (answer == StonithAnswer::Failed && !said_query_failed)
                    cb.log(LogLevel::Warning, "stonith-enabled: " + next.detail);
                said_query_failed = answer == StonithAnswer::Failed;
                have_answer = true;
                stonith = next;
                if (changed) cb.stonith_enabled(stonith.enabled, stonith.detail);
            });
    }

    // Looked up where ChildProcess looks (its fixed PATH), not in raisd's own.
    static bool crm_attribute_installed() {
        std::string dirs = kChildPath;
        for (std::size_t b = 0; b <= dirs.size();) {
            std::size_t e = dirs.find(':', b);
            if (e == std::string::npos) e = dirs.size();
            std::string path = dirs.substr(b, e - b) + "/crm_attribute";
            if (g_file_test(path.c_str(), G_FILE_TEST_IS_EXECUTABLE)) return true;
            b = e + 1;
        }
        return false;
    }

    // ------------------------------------------------------------ attributes

    void next_update() {
        if (updater && updater->running()) return;
        for (const auto& [key, value] : wanted) {
            auto it = published.find(key);
            if (it != published.end() && it->second == value) continue;
            updating_key = key;
            updating_value = value;
            ChildOptions o;
            o.timeout_ms = kChildTimeoutMs;
            std::string name = "rais-" + group + "-" + key;
            updater = std::make_unique<ChildProcess>(
                std::vector<std::string>{"attrd_updater", "--name", name, "--update", value}, o,
                [this, name](const ChildResult& r) {
                    if (r.ok()) {
                        published[updating_key] = updating_value;
                        said_attr_failure = false;
                        cb.log(LogLevel::Debug, "node attribute " + name + "=" + updating_value);
                    } else {
                        // Remember it as published anyway: retrying every
                        // change against a cluster without attrd would only
                        // spawn processes; the next change tries again.
                        published[updating_key] = updating_value;
                        if (!said_attr_failure)
                            cb.log(LogLevel::Info, "cannot set node attribute " + name + " (attrd_updater: " + r.status() +
                                              (r.output.empty() ? "" : ": " + r.output) + ")");
                        said_attr_failure = true;
                    }
                    next_update();
                });
            return;
        }
    }
};

PacemakerLink::Impl* PacemakerLink::Impl::current = nullptr;

PacemakerLink::PacemakerLink(std::string group, bool watch_fencing, Callbacks cb)
    : impl_(std::make_unique<Impl>()) {
    impl_->group = std::move(group);
    impl_->watch_fencing = watch_fencing;
    impl_->cb = std::move(cb);
    Impl::current = impl_.get();
}

PacemakerLink::~PacemakerLink() {
    if (Impl::current == impl_.get()) Impl::current = nullptr;
}

void PacemakerLink::start() {
    Impl* i = impl_.get();
    if (i->watch_fencing && !i->connect_fencer()) i->schedule_retry();
    i->query_stonith();
    i->poll = g_timeout_add_seconds(
        kStonithPollS,
        [](gpointer p) -> gboolean {
            static_cast<Impl*>(p)->query_stonith();
            return G_SOURCE_CONTINUE;
        },
        i);
}

bool PacemakerLink::fencer_connected() const { return impl_->st != nullptr; }

void PacemakerLink::publish(const std::string& key, const std::string& value) {
    auto it = impl_->wanted.find(key);
    if (it != impl_->wanted.end() && it->second == value) return;
    impl_->wanted[key] = value;
    impl_->next_update();
}

}  // namespace rais
