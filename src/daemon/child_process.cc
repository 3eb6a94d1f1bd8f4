#include "daemon/child_process.h"

#include <fcntl.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/glib_ptr.h"

namespace rais {

std::string ChildResult::status() const {
    if (!started) return "could not run: " + error;
    if (timed_out) return "killed at its timeout";
    if (exited)
        return "exit status " + std::to_string(code) +
               (output_held ? " (processes it left running held its output and were killed)" : "");
    if (signal) return "killed by signal " + std::to_string(signal);
    return error.empty() ? "ended abnormally" : error;
}

namespace {

constexpr std::size_t kReadChunk = 16384;
// Reads per dispatch: a child printing without pause must not starve the loop.
constexpr int kReadsPerDispatch = 16;

// Sources go to the thread-default main context, like GSubprocess's own
// async calls (the daemon and addrtest may push their own context).
GSource* attach(GSource* src, GSourceFunc fn, gpointer data) {
    g_source_set_callback(src, fn, data, nullptr);
    GMainContext* ctx = g_main_context_ref_thread_default();
    g_source_attach(src, ctx);
    g_main_context_unref(ctx);
    return src;
}
// Also safe from inside the source's own callback: the dispatch holds a reference.
void drop(GSource*& src) {
    if (!src) return;
    g_source_destroy(src);
    g_source_unref(src);
    src = nullptr;
}

class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = o.fd_;
            o.fd_ = -1;
        }
        return *this;
    }
    int get() const { return fd_; }
    void reset() {
        if (fd_ >= 0) close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
};

// argv[0] as the child's PATH finds it; empty when it is not there.
std::string find_program(const std::string& name) {
    if (name.find('/') != std::string::npos) return name;
    if (name.empty()) return "";
    std::string dirs = kChildPath;
    std::size_t start = 0;
    while (start <= dirs.size()) {
        std::size_t end = dirs.find(':', start);
        if (end == std::string::npos) end = dirs.size();
        std::string p = dirs.substr(start, end - start) + "/" + name;
        if (access(p.c_str(), X_OK) == 0) return p;
        start = end + 1;
    }
    return "";
}

struct UserIds {
    bool found = false;
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;
    std::string error;
};

// Blocking (NSS may ask a directory server): called in a worker thread only.
UserIds lookup_user(const std::string& name) {
    UserIds ids;
    struct passwd pw, *found = nullptr;
    std::vector<char> buf(16384);
    int rc;
    while ((rc = getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found)) == ERANGE && buf.size() < (1u << 20))
        buf.resize(buf.size() * 2);
    if (rc != 0 || !found) {
        ids.error = "no user '" + name + "'" + (rc ? std::string(" (") + std::strerror(rc) + ")" : "");
        return ids;
    }
    ids.found = true;
    ids.uid = pw.pw_uid;
    ids.gid = pw.pw_gid;
    int n = 64;
    ids.groups.resize(static_cast<std::size_t>(n));
    if (getgrouplist(name.c_str(), pw.pw_gid, ids.groups.data(), &n) < 0 && n > 64 && n < 65536) {
        ids.groups.resize(static_cast<std::size_t>(n));
        if (getgrouplist(name.c_str(), pw.pw_gid, ids.groups.data(), &n) < 0) n = 0;
    }
    ids.groups.resize(static_cast<std::size_t>(std::clamp(n, 0, static_cast<int>(ids.groups.size()))));
    if (ids.groups.empty()) ids.groups.push_back(pw.pw_gid);
    return ids;
}

struct Lookup {
    std::string user;
    UserIds ids;
};

}  // namespace

struct ChildProcess::State : std::enable_shared_from_this<State> {
    std::vector<std::string> argv;
    std::vector<std::string> envp;  // "KEY=VALUE"
    bool merge_stderr = true;
    std::size_t max_output = 4096;
    std::string user;

    GObjectPtr<GSubprocess> proc;
    GObjectPtr<GCancellable> cancel{g_cancellable_new()};
    Fd out;                       // read end of the output pipe
    GSource* reader = nullptr;    // watches `out`
    GSource* timer = nullptr;     // the timeout
    GSource* grace = nullptr;     // after the exit (or the timeout kill): the last wait for the output's end
    GSource* start_failed = nullptr;
    pid_t pgid = 0;

    bool output_closed = false, exited_seen = false, timed_out = false, output_held = false;
    bool truncated = false, finished = false;
    std::string output;
    ChildResult status;           // exit fields, filled when the direct child is reaped
    std::string error;            // could not start: why
    Done done;

    // Set before the fork: the child may only make async-signal-safe calls
    // between fork and exec.
    bool switch_user = false;
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;

    void kill_group() {
        if (pgid > 1) kill(-pgid, SIGKILL);
        if (proc && !exited_seen) g_subprocess_force_exit(proc.get());
    }
    void keep(const char* p, std::size_t n) {
        std::size_t room = max_output > output.size() ? max_output - output.size() : 0;
        output.append(p, std::min(room, n));
        if (n > room) truncated = true;
    }
    // Reads what is there (bounded); true when the output has ended.
    bool read_some() {
        char buf[kReadChunk];
        for (int i = 0; i < kReadsPerDispatch; ++i) {
            ssize_t n = read(out.get(), buf, sizeof buf);
            if (n > 0) {
                keep(buf, static_cast<std::size_t>(n));
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
            return true;  // end of output, or an error that ends it
        }
        return false;
    }
    void close_output() {
        drop(reader);
        out.reset();
        output_closed = true;
    }
    ~State() {
        drop(timer);
        drop(grace);
        drop(reader);
        drop(start_failed);
        g_cancellable_cancel(cancel.get());
        if (!finished) kill_group();
    }
};

namespace {

using State = ChildProcess::State;
// The async GIO callbacks hold only a weak reference: a ChildProcess
// destroyed while its child runs simply never hears of it. GSources are
// destroyed with the State, so theirs take a plain pointer.
using WeakState = std::weak_ptr<State>;

void complete(State* s) {
    if (s->finished) return;
    s->finished = true;
    auto keep_alive = s->shared_from_this();  // `done` may destroy the owner
    drop(s->timer);
    drop(s->grace);
    drop(s->start_failed);
    s->close_output();
    ChildResult r = s->status;
    r.started = s->proc != nullptr;
    r.timed_out = s->timed_out;
    r.output_held = s->output_held;
    if (!r.started) r.error = s->error;
    GCharPtr valid(g_utf8_make_valid(s->output.data(), static_cast<gssize>(s->output.size())));
    r.output = g_strstrip(valid.get());
    if (s->truncated) r.output += "...";
    std::string().swap(s->output);
    ChildProcess::Done d = std::move(s->done);
    if (d) d(r);
}

// Start failures are reported from the loop, like every other outcome:
// callers never see `done` run inside their own constructor call.
void fail_later(State* s, const std::string& why) {
    s->error = why;
    if (s->start_failed || s->finished) return;
    s->start_failed = attach(
        g_idle_source_new(),
        [](gpointer p) -> gboolean {
            auto* st = static_cast<State*>(p);
            drop(st->start_failed);
            complete(st);
            return G_SOURCE_REMOVE;
        },
        s);
}

gboolean on_grace(gpointer p) {
    auto* s = static_cast<State*>(p);
    drop(s->grace);
    if (!s->output_closed) {
        // Something it started still holds the output (or the direct child
        // would not die): kill the group, keep what was written, report.
        if (s->exited_seen) s->output_held = true;
        s->kill_group();
        s->read_some();
        s->close_output();
    }
    complete(s);
    return G_SOURCE_REMOVE;
}

void arm_grace(State* s) {
    if (!s->grace) s->grace = attach(g_timeout_source_new(kOutputGraceMs), on_grace, s);
}

gboolean on_readable(gint, GIOCondition, gpointer p) {
    auto* s = static_cast<State*>(p);
    if (!s->read_some()) return G_SOURCE_CONTINUE;
    s->close_output();  // destroys this source
    if (s->exited_seen) complete(s);
    return G_SOURCE_REMOVE;
}

gboolean on_timeout(gpointer p) {
    auto* s = static_cast<State*>(p);
    drop(s->timer);
    if (!s->proc) {  // still looking up the user
        s->error = "looking up user '" + s->user + "' took longer than the timeout";
        complete(s);
        return G_SOURCE_REMOVE;
    }
    if (s->exited_seen) {
        // It exited in time; only what it left behind holds the output.
        on_grace(s);
        return G_SOURCE_REMOVE;
    }
    s->timed_out = true;
    s->kill_group();
    arm_grace(s);  // the report comes by then even if the child cannot be reaped
    return G_SOURCE_REMOVE;
}

void on_exited(GObject* src, GAsyncResult* res, gpointer data) {
    std::unique_ptr<WeakState> weak(static_cast<WeakState*>(data));
    GError* err = nullptr;
    gboolean ok = g_subprocess_wait_finish(G_SUBPROCESS(src), res, &err);
    GErrorPtr errp(err);
    auto s = weak->lock();
    if (!s || s->finished) return;
    s->exited_seen = true;
    GSubprocess* proc = G_SUBPROCESS(src);
    if (!ok) {
        s->status.error = errp ? errp->message : "cannot wait for it";
    } else if (g_subprocess_get_if_exited(proc)) {
        s->status.exited = true;
        s->status.code = g_subprocess_get_exit_status(proc);
    } else if (g_subprocess_get_if_signaled(proc)) {
        s->status.signal = g_subprocess_get_term_sig(proc);
    }
    if (s->output_closed) return complete(s.get());
    arm_grace(s.get());
}

void spawn(const std::shared_ptr<State>& s) {
    std::string path = find_program(s->argv.empty() ? "" : s->argv[0]);
    if (path.empty())
        return fail_later(s.get(), "cannot find '" + (s->argv.empty() ? "" : s->argv[0]) + "' in " + kChildPath);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return fail_later(s.get(), std::string("pipe: ") + std::strerror(errno));
    Fd rd(fds[0]);
    fcntl(rd.get(), F_SETFL, fcntl(rd.get(), F_GETFL) | O_NONBLOCK);
    auto flags = s->merge_stderr ? G_SUBPROCESS_FLAGS_STDERR_MERGE : G_SUBPROCESS_FLAGS_STDERR_SILENCE;
    GObjectPtr<GSubprocessLauncher> launcher(g_subprocess_launcher_new(flags));
    g_subprocess_launcher_take_stdout_fd(launcher.get(), fds[1]);  // closed with the launcher, after the spawn
    std::vector<gchar*> env;
    for (auto& e : s->envp) env.push_back(e.data());
    env.push_back(nullptr);
    g_subprocess_launcher_set_environ(launcher.get(), env.data());
    g_subprocess_launcher_set_cwd(launcher.get(), "/");
    g_subprocess_launcher_set_child_setup(
        launcher.get(),
        [](gpointer p) {
            auto* st = static_cast<State*>(p);
            setpgid(0, 0);
            // SIG_IGN survives exec: give the program the defaults it expects.
            struct sigaction dfl {};
            dfl.sa_handler = SIG_DFL;
            for (int sig = 1; sig < NSIG; ++sig)
                if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, nullptr);
            if (st->switch_user) {
                // Order matters: groups and gid while still root, uid last.
                if (setgroups(st->groups.size(), st->groups.data()) != 0 || setgid(st->gid) != 0 ||
                    setuid(st->uid) != 0)
                    _exit(126);
            }
        },
        s.get(), nullptr);
    std::vector<const char*> args;
    args.push_back(path.c_str());
    for (std::size_t i = 1; i < s->argv.size(); ++i) args.push_back(s->argv[i].c_str());
    args.push_back(nullptr);
    GError* err = nullptr;
    s->proc.reset(g_subprocess_launcher_spawnv(launcher.get(), args.data(), &err));
    launcher.reset();  // our copy of the pipe's write end goes now: EOF comes when the child's copies go
    if (!s->proc) {
        GErrorPtr errp(err);
        return fail_later(s.get(), errp ? errp->message : "unknown error");
    }
    const char* id = g_subprocess_get_identifier(s->proc.get());
    s->pgid = id ? static_cast<pid_t>(std::strtol(id, nullptr, 10)) : 0;
    if (s->pgid > 1) setpgid(s->pgid, s->pgid);  // also here, so a kill right now finds the group
    s->out = std::move(rd);
    s->reader = attach(g_unix_fd_source_new(s->out.get(), static_cast<GIOCondition>(G_IO_IN | G_IO_HUP | G_IO_ERR)),
                       G_SOURCE_FUNC(on_readable), s.get());
    g_subprocess_wait_async(s->proc.get(), s->cancel.get(), on_exited,
                            std::make_unique<WeakState>(s).release());  // owned by on_exited
}

void on_looked_up(GObject*, GAsyncResult* res, gpointer data) {
    std::unique_ptr<WeakState> weak(static_cast<WeakState*>(data));
    auto* l = static_cast<Lookup*>(g_task_get_task_data(G_TASK(res)));
    auto s = weak->lock();
    if (!s || s->finished) return;
    if (!l->ids.found) return fail_later(s.get(), l->ids.error);
    s->switch_user = true;
    s->uid = l->ids.uid;
    s->gid = l->ids.gid;
    s->groups = l->ids.groups;
    spawn(s);
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const ChildOptions& opts, Done done)
    : state_(std::make_shared<State>()) {
    State* s = state_.get();
    s->done = std::move(done);
    s->argv = argv;
    s->merge_stderr = opts.merge_stderr;
    s->max_output = opts.max_output;
    s->user = opts.user;
    std::vector<std::pair<std::string, std::string>> env = {{"PATH", kChildPath}, {"LANG", "C"}};
    for (const auto& [k, v] : opts.env) {
        if (k.empty() || k.find('=') != std::string::npos) continue;
        auto it = std::find_if(env.begin(), env.end(), [&k = k](const auto& e) { return e.first == k; });
        if (it != env.end()) it->second = v;
        else env.emplace_back(k, v);
    }
    for (const auto& [k, v] : env) s->envp.push_back(k + "=" + v);
    s->timer = attach(g_timeout_source_new(opts.timeout_ms), on_timeout, s);
    if (opts.user.empty()) {
        spawn(state_);
        return;
    }
    GObjectPtr<GTask> task(g_task_new(nullptr, nullptr, on_looked_up, std::make_unique<WeakState>(state_).release()));
    g_task_set_task_data(task.get(), std::make_unique<Lookup>(Lookup{opts.user, {}}).release(),
                         [](gpointer p) { std::unique_ptr<Lookup> owned(static_cast<Lookup*>(p)); });
    g_task_run_in_thread(task.get(), [](GTask* t, gpointer, gpointer data, GCancellable*) {
        auto* l = static_cast<Lookup*>(data);
        l->ids = lookup_user(l->user);
        g_task_return_boolean(t, TRUE);
    });
}

ChildProcess::~ChildProcess() = default;

bool ChildProcess::running() const { return state_ && !state_->finished; }

}  // namespace rais
