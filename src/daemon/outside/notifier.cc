#include "daemon/outside/notifier.h"

#include <gio/gio.h>
#include <glib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <deque>
#include <optional>

#include "core/glib_ptr.h"
#include "daemon/child_process.h"
#include "daemon/outside/trap_sender.h"

namespace rais {

namespace {
constexpr std::size_t kMaxRunning = 8;
constexpr std::size_t kMaxQueued = 256;
constexpr double kAlertCacheS = 10;
constexpr unsigned kCibTimeoutMs = 10000;
constexpr std::size_t kCibMaxOutput = 1 << 20;  // bytes of cibadmin output kept
constexpr guint kResolveRetryS = 30;

// Pacemaker durations: "15", "15s", "1500ms", "2min", "1m", "1h".
std::optional<unsigned> parse_duration_ms(std::string v) {
    v.erase(0, v.find_first_not_of(" \t"));
    v.erase(v.find_last_not_of(" \t") + 1);
    std::size_t i = 0;
    while (i < v.size() && (g_ascii_isdigit(v[i]) || v[i] == '.')) i++;
    if (i == 0) return std::nullopt;
    double n = std::strtod(v.substr(0, i).c_str(), nullptr);
    std::string unit = v.substr(i);
    double ms;
    if (unit.empty() || unit == "s" || unit == "sec") ms = n * 1000;
    else if (unit == "ms" || unit == "msec") ms = n;
    else if (unit == "m" || unit == "min") ms = n * 60000;
    else if (unit == "h" || unit == "hr") ms = n * 3600000;
    else return std::nullopt;
    if (ms < 1 || ms > 86400000) return std::nullopt;
    return static_cast<unsigned>(ms);
}

struct AlertsParse {
    std::vector<AlertAgent> alerts;
    std::vector<std::string> stack;
    bool in_alert() const { return !alerts.empty() && std::find(stack.begin(), stack.end(), "alert") != stack.end(); }
};

const char* attr(const gchar** names, const gchar** values, const char* want) {
    for (int i = 0; names[i]; i++)
        if (std::strcmp(names[i], want) == 0) return values[i];
    return nullptr;
}

void on_start(GMarkupParseContext*, const gchar* element, const gchar** names, const gchar** values, gpointer data,
              GError**) {
    auto* p = static_cast<AlertsParse*>(data);
    std::string el = element;
    std::string parent = p->stack.empty() ? "" : p->stack.back();
    std::string grand = p->stack.size() < 2 ? "" : p->stack[p->stack.size() - 2];
    p->stack.push_back(el);
    if (el == "alert") {
        AlertAgent a;
        const char* id = attr(names, values, "id");
        const char* path = attr(names, values, "path");
        a.id = id ? id : "";
        a.path = path ? path : "";
        a.selects_resources = true;
        p->alerts.push_back(a);
        return;
    }
    if (!p->in_alert()) return;
    AlertAgent& a = p->alerts.back();
    if (el == "recipient" && parent == "alert") {
        const char* v = attr(names, values, "value");
        a.recipients.push_back(v ? v : "");
    } else if (el == "select" && parent == "alert") {
        a.selects_resources = false;  // only what <select> lists
    } else if (el == "select_resources" && parent == "select") {
        a.selects_resources = true;
    } else if (el == "nvpair" && grand == "alert") {
        const char* n = attr(names, values, "name");
        const char* v = attr(names, values, "value");
        if (!n) return;
        std::string name = n, value = v ? v : "";
        if (parent == "meta_attributes") {
            if (name == "timeout") {
                if (auto ms = parse_duration_ms(value)) a.timeout_ms = *ms;
            } else if (name == "timestamp-format") {
                a.timestamp_format = value;
            }
        } else if (parent == "instance_attributes") {
            a.attributes.emplace_back(name, value);
        }
    }
}

void on_end(GMarkupParseContext*, const gchar*, gpointer data, GError**) {
    auto* p = static_cast<AlertsParse*>(data);
    if (!p->stack.empty()) p->stack.pop_back();
}

}  // namespace

std::optional<std::vector<AlertAgent>> parse_alerts(const std::string& xml, std::string* error) {
    AlertsParse p;
    GMarkupParser parser{on_start, on_end, nullptr, nullptr, nullptr};
    GMarkupParseContext* ctx = g_markup_parse_context_new(&parser, G_MARKUP_DEFAULT_FLAGS, &p, nullptr);
    GError* err = nullptr;
    bool ok = g_markup_parse_context_parse(ctx, xml.data(), static_cast<gssize>(xml.size()), &err) &&
              g_markup_parse_context_end_parse(ctx, &err);
    g_markup_parse_context_free(ctx);
    GErrorPtr errp(err);
    if (!ok) {
        if (error) *error = errp ? errp->message : "malformed XML";
        return std::nullopt;
    }
    for (auto it = p.alerts.begin(); it != p.alerts.end();)
        it = it->path.empty() ? p.alerts.erase(it) : std::next(it);
    return p.alerts;
}

std::string format_alert_time(const std::string& format, std::int64_t unix_us) {
    // %N with an optional width ("%3N", "%06N"): the fraction of the second,
    // which strftime does not know. Replace it first, then let GLib format.
    std::string f;
    for (std::size_t i = 0; i < format.size(); i++) {
        if (format[i] == '%' && i + 1 < format.size()) {
            std::size_t j = i + 1;
            while (j < format.size() && g_ascii_isdigit(format[j])) j++;
            if (j < format.size() && format[j] == 'N') {
                int width = j > i + 1 ? std::atoi(format.substr(i + 1, j - i - 1).c_str()) : 9;
                width = std::clamp(width, 1, 9);
                char digits[16];
                std::snprintf(digits, sizeof digits, "%09lld", static_cast<long long>((unix_us % 1000000) * 1000));
                f += std::string(digits, static_cast<std::size_t>(width));
                i = j;
                continue;
            }
            f += format[i];
            f += format[i + 1];
            i++;
            continue;
        }
        f += format[i];
    }
    GDateTime* dt = g_date_time_new_from_unix_local(unix_us / 1000000);
    if (!dt) return "";
    GCharPtr s(g_date_time_format(dt, f.c_str()));
    g_date_time_unref(dt);
    return s ? std::string(s.get()) : std::string();
}

struct TrapResolution::State {
    Done done;
};

namespace {
struct ResolveJob {
    std::vector<std::string> targets;   // the worker's own copy
    std::vector<std::string> peers;
    std::string error;
    bool ok = false;
};
}  // namespace

std::unique_ptr<TrapResolution> TrapResolution::start(const std::vector<std::string>& targets, Done done) {
    auto state = std::make_shared<State>();
    state->done = std::move(done);
    auto* job = new ResolveJob{targets, {}, {}, false};   // owned by the task (task data)
    auto* owner = new std::weak_ptr<State>(state);        // owned by the completion callback
    GTask* task = g_task_new(
        nullptr, nullptr,
        [](GObject*, GAsyncResult* res, gpointer p) {
            std::unique_ptr<std::weak_ptr<State>> w(static_cast<std::weak_ptr<State>*>(p));
            auto* j = static_cast<ResolveJob*>(g_task_get_task_data(G_TASK(res)));
            if (auto st = w->lock()) st->done(j->ok, j->peers, j->error);
        },
        owner);
    g_task_set_task_data(task, job, [](gpointer p) { delete static_cast<ResolveJob*>(p); });
    g_task_run_in_thread(task, [](GTask* t, gpointer, gpointer data, GCancellable*) {
        auto* j = static_cast<ResolveJob*>(data);
        j->ok = TrapSender::resolve_targets(j->targets, &j->peers, &j->error);
        g_task_return_boolean(t, TRUE);
    });
    g_object_unref(task);
    return std::make_unique<TrapResolution>(std::move(state));
}

struct Notifier::Impl {
    Options opts;
    Log log;
    std::unique_ptr<TrapSender> traps;
    // Until the trap hosts resolve: the pending resolution, the traps that
    // wait for it, and the retry after a failure.
    std::unique_ptr<TrapResolution> resolving;
    std::deque<TrapEvent> waiting_traps;
    guint resolve_retry = 0;
    bool said_unresolved = false;

    ~Impl() {
        if (resolve_retry) g_source_remove(resolve_retry);
    }

    void resolve_traps() {
        resolving = TrapResolution::start(
            opts.snmp_traps, [this](bool ok, const std::vector<std::string>& peers, const std::string& error) {
                std::string err = error;
                if (ok) traps = TrapSender::open(opts.snmp_traps, peers, opts.snmp_community, log, &err);
                if (!traps) {
                    if (!said_unresolved)
                        log(LogLevel::Error, "SNMP traps: " + err + "; retrying every " + std::to_string(kResolveRetryS) +
                                        " s, traps wait");
                    said_unresolved = true;
                    resolve_retry = g_timeout_add_seconds(
                        kResolveRetryS,
                        [](gpointer p) -> gboolean {
                            auto* self = static_cast<Impl*>(p);
                            self->resolve_retry = 0;
                            self->resolve_traps();
                            return G_SOURCE_REMOVE;
                        },
                        this);
                    resolving.reset();   // allowed from inside `done`
                    return;
                }
                if (said_unresolved) log(LogLevel::Info, "SNMP traps: the trap hosts resolve again");
                said_unresolved = false;
                while (!waiting_traps.empty()) {
                    traps->send(waiting_traps.front());
                    waiting_traps.pop_front();
                }
                resolving.reset();
            });
    }

    // alerts
    std::vector<AlertAgent> alerts;
    double alerts_read_at = -1e9;      // monotonic s
    std::unique_ptr<ChildProcess> cib_query;
    std::deque<std::pair<Event, std::int64_t>> waiting;   // events waiting for the CIB read
    bool said_no_cib = false;
    struct Job {
        AlertAgent agent;
        std::string recipient;
        Event event;
        std::int64_t wall_us = 0;
        std::uint64_t sequence = 0;
    };
    std::deque<Job> jobs;
    std::vector<std::unique_ptr<ChildProcess>> running;
    std::uint64_t sequence = 0;

    static double mono() { return static_cast<double>(g_get_monotonic_time()) / 1e6; }

    void notify(const Event& e, std::int64_t wall_us) {
        if (!opts.snmp_traps.empty()) {
            TrapEvent t;
            t.kind = to_string(e.kind);
            t.group = opts.group;
            t.node = e.node;
            t.address = e.address ? e.address->str() : "";
            t.reason = e.reason;
            t.unix_ms = wall_us / 1000;
            if (traps) {
                traps->send(t);
            } else if (waiting_traps.size() < kMaxQueued) {
                waiting_traps.push_back(std::move(t));
            } else {
                log(LogLevel::Warning, "SNMP traps: " + std::to_string(waiting_traps.size()) +
                                  " traps already wait for the trap hosts to resolve; " + to_string(e.kind) +
                                  " not sent");
            }
        }
        if (!opts.alerts) return;
        if (waiting.size() >= kMaxQueued) {
            log(LogLevel::Warning, std::string("alert agents: ") + std::to_string(waiting.size()) +
                              " events already wait for the CIB; event " + to_string(e.kind) + " not sent to them");
            return;
        }
        waiting.emplace_back(e, wall_us);
        if (mono() - alerts_read_at < kAlertCacheS) return dispatch_waiting();
        read_alerts();
    }

    void read_alerts() {
        if (cib_query && cib_query->running()) return;
        ChildOptions o;
        o.timeout_ms = kCibTimeoutMs;
        o.merge_stderr = false;
        // The alerts section of a real CIB runs to tens of KiB; a cut one
        // would not parse and the agents we knew would be kept forever.
        o.max_output = kCibMaxOutput;
        cib_query = std::make_unique<ChildProcess>(
            std::vector<std::string>{"cibadmin", "--query", "--scope", "alerts", "--local"}, o,
            [this](const ChildResult& r) {
                alerts_read_at = mono();
                std::string err;
                std::optional<std::vector<AlertAgent>> parsed;
                if (r.ok()) parsed = parse_alerts(r.output, &err);
                if (parsed) {
                    if (parsed->size() != alerts.size())
                        log(LogLevel::Info, "alert agents: " + std::to_string(parsed->size()) + " configured in the CIB");
                    alerts = std::move(*parsed);
                    said_no_cib = false;
                } else if (r.exited && r.code == 105) {
                    alerts.clear();  // no <alerts> section: none configured
                } else {
                    // Keep the agents we knew; say once that the CIB is away.
                    if (!said_no_cib)
                        log(LogLevel::Info, "alert agents: cannot read the CIB's alerts (cibadmin: " + r.status() +
                                       (err.empty() ? "" : ", " + err) + ")");
                    said_no_cib = true;
                }
                dispatch_waiting();
            });
    }

    void dispatch_waiting() {
        while (!waiting.empty()) {
            auto [e, wall] = waiting.front();
            waiting.pop_front();
            for (const auto& a : alerts) {
                if (!a.selects_resources) continue;
                std::vector<std::string> recipients = a.recipients;
                if (recipients.empty()) recipients.push_back("");
                for (const auto& rcpt : recipients) {
                    if (jobs.size() >= kMaxQueued) {
                        log(LogLevel::Warning, "alert agents: " + std::to_string(jobs.size()) + " runs queued; " +
                                          a.path + " not run for event " + to_string(e.kind));
                        continue;
                    }
                    jobs.push_back(Job{a, rcpt, e, wall, ++sequence});
                }
            }
        }
        pump();
    }

    void pump() {
        for (auto it = running.begin(); it != running.end();)
            it = (*it)->running() ? std::next(it) : running.erase(it);
        while (!jobs.empty() && running.size() < kMaxRunning) {
            Job j = std::move(jobs.front());
            jobs.pop_front();
            start(j);
        }
    }

    void start(const Job& j) {
        const Event& e = j.event;
        std::string rsc = opts.group + (e.address ? ":" + e.address->str() : "");
        bool failure = e.kind == EventKind::AcquireFailed || e.kind == EventKind::ReleaseFailed ||
                       e.kind == EventKind::TestFailed || e.kind == EventKind::CannotAssign ||
                       e.kind == EventKind::DnsFailed;
        std::string ts = format_alert_time(j.agent.timestamp_format, j.wall_us);
        ChildOptions o;
        o.timeout_ms = j.agent.timeout_ms;
        o.user = opts.alert_user;
        auto set = [&](const std::string& k, const std::string& v) {
            o.env.emplace_back("CRM_alert_" + k, v);
            o.env.emplace_back("CRM_notify_" + k, v);
        };
        set("kind", "resource");
        set("version", PACKAGE_VERSION);
        set("recipient", j.recipient);
        set("node", e.node.empty() ? opts.node : e.node);
        set("nodeid", std::to_string(opts.node_id));
        set("node_sequence", std::to_string(j.sequence));
        set("rsc", rsc);
        set("task", to_string(e.kind));
        set("interval", "0");
        set("desc", e.reason);
        set("status", failure ? "1" : "0");
        set("rc", failure ? "1" : "0");
        set("target_rc", "0");
        set("timestamp", ts);
        set("timestamp_epoch", std::to_string(j.wall_us / 1000000));
        set("timestamp_usec", std::to_string(j.wall_us % 1000000));
        o.env.emplace_back("CRM_alert_rais_group", opts.group);
        o.env.emplace_back("CRM_alert_rais_address", e.address ? e.address->str() : "");
        for (const auto& [k, v] : j.agent.attributes) o.env.emplace_back(k, v);
        std::string what = j.agent.path + " (alert " + j.agent.id + ", " + to_string(e.kind) + ")";
        unsigned timeout_ms = j.agent.timeout_ms;
        running.push_back(std::make_unique<ChildProcess>(
            std::vector<std::string>{j.agent.path}, o, [this, what, timeout_ms](const ChildResult& r) {
                if (r.timed_out)
                    log(LogLevel::Warning, "alert agent " + what + " killed at its timeout (" +
                                      std::to_string(timeout_ms) + " ms)");
                else if (!r.ok())
                    log(LogLevel::Warning, "alert agent " + what + " failed: " + r.status() +
                                      (r.output.empty() ? "" : ": " + r.output.substr(0, 200)));
                else
                    log(LogLevel::Debug, "alert agent " + what + " done");
                pump();  // may destroy this ChildProcess: allowed from its `done`
            }));
    }
};

std::unique_ptr<Notifier> Notifier::create(const Options& opts, Log log, std::string* error) {
    auto impl = std::make_unique<Impl>();
    impl->opts = opts;
    impl->log = log;
    if (!opts.snmp_traps.empty()) {
        if (auto e = TrapSender::check(opts.snmp_traps, opts.snmp_community)) {
            if (error)
                *error = std::string(opts.snmp_community.empty() ? "parameter 'snmp_community': "
                                                                 : "parameter 'snmp_traps': ") + *e;
            return nullptr;
        }
        if (opts.snmp_peers.size() == opts.snmp_traps.size()) {
            std::string err;
            impl->traps = TrapSender::open(opts.snmp_traps, opts.snmp_peers, opts.snmp_community, log, &err);
            if (!impl->traps) {
                if (error) *error = "parameter 'snmp_traps': " + err;
                return nullptr;
            }
        }
    }
    auto n = std::make_unique<Notifier>(std::move(impl));
    if (!n->impl_->opts.snmp_traps.empty() && !n->impl_->traps) n->impl_->resolve_traps();
    return n;
}

Notifier::Notifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Notifier::~Notifier() = default;

void Notifier::notify(const Event& e, std::int64_t wall_us) { impl_->notify(e, wall_us); }

}  // namespace rais
