#include "daemon/child_process.h"

#include <gio/gio.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>

#include "core/glib_ptr.h"

namespace rais {

std::string ChildResult::status() const {
    if (!started) return "could not run: " + error;
    if (timed_out) return "killed at its timeout";
    if (exited) return "exit status " + std::to_string(code);
    if (signal) return "killed by signal " + std::to_string(signal);
    return error.empty() ? "ended abnormally" : error;
}

struct ChildProcess::State {
    GObjectPtr<GSubprocess> proc;
    GObjectPtr<GCancellable> cancel{g_cancellable_new()};
    guint timer = 0;
    guint start_failed = 0;
    bool timed_out = false;
    bool finished = false;
    ChildResult failed;            // when it could not start
    Done done;

    pid_t pid() const {
        const char* id = proc ? g_subprocess_get_identifier(proc.get()) : nullptr;
        return id ? static_cast<pid_t>(std::strtol(id, nullptr, 10)) : 0;
    }
    void kill_group() {
        pid_t p = pid();
        if (p > 1) kill(-p, SIGKILL);
        if (proc) g_subprocess_force_exit(proc.get());
    }
    ~State() {
        if (timer) g_source_remove(timer);
        if (start_failed) g_source_remove(start_failed);
        g_cancellable_cancel(cancel.get());
        if (!finished) kill_group();
    }
};

namespace {

// The async callbacks hold only a weak reference: a ChildProcess destroyed
// while its child runs simply never hears of it.
using WeakState = std::weak_ptr<ChildProcess::State>;

void finish(const std::shared_ptr<ChildProcess::State>& s, const ChildResult& r) {
    if (s->finished) return;
    s->finished = true;
    if (s->timer) {
        g_source_remove(s->timer);
        s->timer = 0;
    }
    ChildProcess::Done done = std::move(s->done);  // `done` may destroy the owner
    if (done) done(r);
}

void on_communicated(GObject* src, GAsyncResult* res, gpointer data) {
    std::unique_ptr<WeakState> weak(static_cast<WeakState*>(data));
    GBytes* out = nullptr;
    GError* err = nullptr;
    gboolean ok = g_subprocess_communicate_finish(G_SUBPROCESS(src), res, &out, nullptr, &err);
    GBytesPtr outp(out);
    GErrorPtr errp(err);
    auto s = weak->lock();
    if (!s) return;
    ChildResult r;
    r.started = true;
    r.timed_out = s->timed_out;
    if (outp) {
        gsize len = 0;
        const char* p = static_cast<const char*>(g_bytes_get_data(outp.get(), &len));
        GCharPtr valid(g_utf8_make_valid(p ? p : "", static_cast<gssize>(len)));
        r.output = g_strstrip(valid.get());
        if (r.output.size() > 4096) r.output = r.output.substr(0, 4096) + "...";
    }
    GSubprocess* proc = G_SUBPROCESS(src);
    if (!ok) r.error = errp ? errp->message : "cannot read its output";
    if (g_subprocess_get_if_exited(proc)) {
        r.exited = true;
        r.code = g_subprocess_get_exit_status(proc);
    } else if (g_subprocess_get_if_signaled(proc)) {
        r.signal = g_subprocess_get_term_sig(proc);
    }
    finish(s, r);
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const ChildOptions& opts, Done done)
    : state_(std::make_shared<State>()) {
    state_->done = std::move(done);
    auto flags = G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                 (opts.merge_stderr ? G_SUBPROCESS_FLAGS_STDERR_MERGE : G_SUBPROCESS_FLAGS_STDERR_SILENCE);
    GObjectPtr<GSubprocessLauncher> launcher(g_subprocess_launcher_new(static_cast<GSubprocessFlags>(flags)));
    g_subprocess_launcher_set_child_setup(
        launcher.get(), [](gpointer) { setpgid(0, 0); }, nullptr, nullptr);
    for (const auto& [k, v] : opts.env) g_subprocess_launcher_setenv(launcher.get(), k.c_str(), v.c_str(), TRUE);
    std::vector<const char*> args;
    for (const auto& a : argv) args.push_back(a.c_str());
    args.push_back(nullptr);
    GError* err = nullptr;
    state_->proc.reset(g_subprocess_launcher_spawnv(launcher.get(), args.data(), &err));
    if (!state_->proc) {
        GErrorPtr errp(err);
        state_->failed.error = errp ? errp->message : "unknown error";
        // Report from the loop, like every other outcome: callers never see
        // `done` run inside their own constructor call.
        state_->start_failed = g_idle_add(
            [](gpointer p) -> gboolean {
                auto* st = static_cast<State*>(p);
                st->start_failed = 0;
                ChildResult r = st->failed;
                st->finished = true;
                Done d = std::move(st->done);
                if (d) d(r);
                return G_SOURCE_REMOVE;
            },
            state_.get());
        return;
    }
    g_subprocess_communicate_async(state_->proc.get(), nullptr, state_->cancel.get(), on_communicated,
                                   std::make_unique<WeakState>(state_).release());  // owned by on_communicated
    state_->timer = g_timeout_add(
        opts.timeout_ms,
        [](gpointer p) -> gboolean {
            auto* st = static_cast<State*>(p);
            st->timer = 0;
            st->timed_out = true;
            st->kill_group();
            return G_SOURCE_REMOVE;
        },
        state_.get());
}

ChildProcess::~ChildProcess() = default;

bool ChildProcess::running() const { return state_ && !state_->finished; }

}  // namespace rais
