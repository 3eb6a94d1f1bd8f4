#include "daemon/child_process.h"

#include <gio/gio.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
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

namespace {
// Sources go to the thread-default main context, like GSubprocess's own
// async calls (the daemon and addrtest may push their own context).
GSource* attach(GSource* src, GSourceFunc fn, gpointer data) {
    g_source_set_callback(src, fn, data, nullptr);
    GMainContext* ctx = g_main_context_ref_thread_default();
    g_source_attach(src, ctx);
    g_main_context_unref(ctx);
    return src;
}
void drop(GSource*& src) {
    if (!src) return;
    g_source_destroy(src);
    g_source_unref(src);
    src = nullptr;
}
}  // namespace

struct ChildProcess::State {
    GObjectPtr<GSubprocess> proc;
    GObjectPtr<GCancellable> cancel{g_cancellable_new()};
    GSource* timer = nullptr;
    GSource* start_failed = nullptr;
    bool timed_out = false;
    bool finished = false;
    ChildResult failed;            // when it could not start
    Done done;
    // Looked up before the fork: the child may only make async-signal-safe
    // calls between fork and exec.
    bool switch_user = false;
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;

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
        drop(timer);
        drop(start_failed);
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
    drop(s->timer);
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
    std::string user_error;
    if (!opts.user.empty()) {
        struct passwd pw, *found = nullptr;
        std::vector<char> buf(16384);
        if (getpwnam_r(opts.user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found) {
            user_error = "no user '" + opts.user + "'";
        } else {
            state_->switch_user = true;
            state_->uid = pw.pw_uid;
            state_->gid = pw.pw_gid;
            int n = 64;
            state_->groups.resize(static_cast<std::size_t>(n));
            if (getgrouplist(opts.user.c_str(), pw.pw_gid, state_->groups.data(), &n) < 0) n = 0;
            state_->groups.resize(static_cast<std::size_t>(std::max(n, 0)));
        }
    }
    g_subprocess_launcher_set_child_setup(
        launcher.get(),
        [](gpointer p) {
            auto* st = static_cast<State*>(p);
            setpgid(0, 0);
            if (st->switch_user) {
                // Order matters: groups and gid while still root, uid last.
                if (setgroups(st->groups.size(), st->groups.data()) != 0 || setgid(st->gid) != 0 ||
                    setuid(st->uid) != 0)
                    _exit(126);
            }
        },
        state_.get(), nullptr);
    for (const auto& [k, v] : opts.env) g_subprocess_launcher_setenv(launcher.get(), k.c_str(), v.c_str(), TRUE);
    std::vector<const char*> args;
    for (const auto& a : argv) args.push_back(a.c_str());
    args.push_back(nullptr);
    GError* err = nullptr;
    if (user_error.empty()) state_->proc.reset(g_subprocess_launcher_spawnv(launcher.get(), args.data(), &err));
    if (!state_->proc) {
        GErrorPtr errp(err);
        state_->failed.error = !user_error.empty() ? user_error : errp ? errp->message : "unknown error";
        // Report from the loop, like every other outcome: callers never see
        // `done` run inside their own constructor call.
        state_->start_failed = attach(
            g_idle_source_new(),
            [](gpointer p) -> gboolean {
                auto* st = static_cast<State*>(p);
                g_source_unref(st->start_failed);  // the context keeps it until we return
                st->start_failed = nullptr;
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
    state_->timer = attach(
        g_timeout_source_new(opts.timeout_ms),
        [](gpointer p) -> gboolean {
            auto* st = static_cast<State*>(p);
            g_source_unref(st->timer);  // the context keeps it until we return
            st->timer = nullptr;
            st->timed_out = true;
            st->kill_group();
            return G_SOURCE_REMOVE;
        },
        state_.get());
}

ChildProcess::~ChildProcess() = default;

bool ChildProcess::running() const { return state_ && !state_->finished; }

}  // namespace rais
