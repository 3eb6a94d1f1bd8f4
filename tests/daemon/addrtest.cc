// addrtest: drives the real AddressBackend through a script, for manual
// checks in network namespaces and for root-only tests. It runs its own
// GMainContext pushed as thread-default (as the daemon may), so it also
// checks that the backend attaches there and not to the global context.
//
//   addrtest [--nic IF] [--probe-ms N] [--announce-interval S] [--hook PATH]
//            [--hook-timeout S] [--quiet] [--steps] 'STEP; STEP; ...'
//
// --steps prints every milestone of an acquire (Callbacks::step: probe
// sent, probe settled, netlink acknowledged, announced).
//
// Steps (they run in order; acquire and release do not wait for their
// answer, so several can be in flight; use sync to wait):
//   acquire ADDR/P [probe=0|1] [lifetime=S] [expect=ok|fail]
//   release ADDR/P [expect=ok|fail]
//   refresh ADDR/P[,ADDR/P...] lifetime=S
//   present ADDR/P[,ADDR/P...]     print which are on an interface
//   permanent ADDR/P[,ADDR/P...]   print which are permanent; watch them from now on
//   iface ADDR/P                   print interface_for()
//   wait S                         let the loop run S seconds
//   sync [S]                       wait for every answer (fail after S, default 30)
//   lost ADDR/P [within=S]         wait for lost(ADDR) (fail after S, default 10)
//   fixed ADDR/P present=0|1 [within=S]
//                                  wait for fixed(ADDR, present) (fail after S, default 10)
//   sh COMMAND...                  run COMMAND with /bin/sh -c and wait
//   destroy                        destroy the backend (later backend steps fail)
// Every callback is printed with the time since start. Exit status 0 when
// every expectation held, 1 otherwise, 2 on bad usage or setup.
#include <gio/gio.h>
#include <glib.h>

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/address.h"
#include "core/glib_ptr.h"
#include "daemon/kernel/address_backend.h"

namespace {

using rais::AddressBackend;
using rais::AddressBackendOptions;
using rais::ServiceAddress;

struct ContextDeleter {
    void operator()(GMainContext* c) const { g_main_context_unref(c); }
};
struct LoopDeleter {
    void operator()(GMainLoop* l) const { g_main_loop_unref(l); }
};
struct SourceDeleter {
    void operator()(GSource* s) const {
        g_source_destroy(s);
        g_source_unref(s);
    }
};
using SourcePtr = std::unique_ptr<GSource, SourceDeleter>;

gint64 g_start = 0;

void say(const std::string& text) {
    double t = static_cast<double>(g_get_monotonic_time() - g_start) / 1e6;
    std::printf("[%8.3f] %s\n", t, text.c_str());
    std::fflush(stdout);
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == sep) {
            out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    out.push_back(cur);
    return out;
}

std::vector<std::string> words(const std::string& s) {
    std::istringstream in(s);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

enum class Wait : std::uint8_t { None, Timer, Sync, Lost, Fixed, Shell };

class Runner {
public:
    Runner(GMainContext* ctx, GMainLoop* loop, std::vector<std::vector<std::string>> steps)
        : ctx_(ctx), loop_(loop), steps_(std::move(steps)) {}

    bool start(AddressBackendOptions opts, bool quiet, bool steps) {
        AddressBackend::Callbacks cb;
        cb.done = [this](const ServiceAddress& a, bool acquire, bool ok, const std::string& detail) {
            on_done(a, acquire, ok, detail);
        };
        cb.lost = [this](const ServiceAddress& a, const std::string& why) { on_lost(a, why); };
        cb.fixed = [this](const ServiceAddress& a, bool present) { on_fixed(a, present); };
        if (steps)
            cb.step = [](const ServiceAddress& a, rais::AcquireStep s, double) {
                say("step " + a.str() + " " + rais::to_string(s));
            };
        cb.log = [quiet](rais::LogLevel level, const std::string& text) {
            if (!quiet || level > rais::LogLevel::Debug) say("log[" + std::to_string(static_cast<int>(level)) + "] " + text);
        };
        std::string error;
        backend_ = AddressBackend::create(std::move(opts), std::move(cb), &error);
        if (!backend_) {
            std::fprintf(stderr, "addrtest: %s\n", error.c_str());
            return false;
        }
        idle(&Runner::on_step);
        return true;
    }

    int failures() const { return failures_; }

private:
    void idle(GSourceFunc fn) {
        GSource* s = g_idle_source_new();
        g_source_set_callback(s, fn, this, nullptr);
        g_source_attach(s, ctx_);
        step_source_.reset(s);
    }
    void arm_timer(double seconds) {
        GSource* s = g_timeout_source_new(static_cast<guint>(seconds * 1000));
        g_source_set_callback(s, on_timer, this, nullptr);
        g_source_attach(s, ctx_);
        timer_.reset(s);
    }

    static gboolean on_step(gpointer p) {
        auto* self = static_cast<Runner*>(p);
        self->run();
        return G_SOURCE_REMOVE;
    }

    void fail(const std::string& what) {
        ++failures_;
        say("FAIL " + what);
    }

    std::optional<ServiceAddress> addr(const std::string& text) {
        std::string why;
        auto a = ServiceAddress::parse(text, &why, false);
        if (!a) fail("bad address '" + text + "': " + why);
        return a;
    }

    // Runs steps until one has to wait.
    void run() {
        while (wait_ == Wait::None) {
            if (next_ >= steps_.size()) {
                if (outstanding() > 0 && !final_sync_) {
                    final_sync_ = true;
                    say("end of script; waiting for " + std::to_string(outstanding()) + " answer(s)");
                    wait_ = Wait::Sync;
                    arm_timer(30);
                    return;
                }
                say(failures_ ? "done: " + std::to_string(failures_) + " failure(s)" : "done: all as expected");
                g_main_loop_quit(loop_);
                return;
            }
            const auto& w = steps_[next_++];
            exec(w);
        }
    }

    static std::map<std::string, std::string> options(const std::vector<std::string>& w, std::size_t from) {
        std::map<std::string, std::string> out;
        for (std::size_t i = from; i < w.size(); ++i) {
            auto eq = w[i].find('=');
            if (eq == std::string::npos)
                out[w[i]] = "";
            else
                out[w[i].substr(0, eq)] = w[i].substr(eq + 1);
        }
        return out;
    }

    void exec(const std::vector<std::string>& w) {
        const std::string& cmd = w[0];
        std::string line;
        for (const auto& x : w) line += (line.empty() ? "" : " ") + x;
        say("> " + line);
        bool uses_backend = cmd == "acquire" || cmd == "release" || cmd == "refresh" || cmd == "present" ||
                            cmd == "permanent" || cmd == "iface";
        if (uses_backend && !backend_) {
            fail("no backend (destroyed)");
            return;
        }
        if (cmd == "destroy") {
            backend_.reset();
            waiting_.clear();  // answers never come now
            outstanding_ = 0;
            say("backend destroyed");
        } else if ((cmd == "acquire" || cmd == "release") && w.size() >= 2) {
            auto a = addr(w[1]);
            if (!a) return;
            auto o = options(w, 2);
            bool acquire = cmd == "acquire";
            if (o.count("expect")) expect_[{*a, acquire}].push_back(o["expect"] == "ok");
            ++waiting_[{*a, acquire}];
            ++outstanding_;
            if (acquire)
                backend_->acquire(*a, o.count("probe") ? o["probe"] != "0" : false,
                                  o.count("lifetime") ? std::atof(o["lifetime"].c_str()) : 30);
            else
                backend_->release(*a);
        } else if (cmd == "refresh" && w.size() >= 2) {
            std::vector<ServiceAddress> held;
            for (const auto& t : split(w[1], ','))
                if (auto a = addr(t)) held.push_back(*a);
            auto o = options(w, 2);
            backend_->refresh(held, o.count("lifetime") ? std::atof(o["lifetime"].c_str()) : 30);
        } else if (cmd == "present" && w.size() >= 2) {
            std::vector<ServiceAddress> group;
            for (const auto& t : split(w[1], ','))
                if (auto a = addr(t)) group.push_back(*a);
            std::string out;
            for (const auto& a : backend_->present(group)) out += " " + a.str();
            say("present:" + (out.empty() ? std::string(" (none)") : out));
        } else if (cmd == "permanent" && w.size() >= 2) {
            std::vector<ServiceAddress> group;
            for (const auto& t : split(w[1], ','))
                if (auto a = addr(t)) group.push_back(*a);
            std::string out;
            for (const auto& a : backend_->permanent(group)) out += " " + a.str();
            say("permanent:" + (out.empty() ? std::string(" (none)") : out));
        } else if (cmd == "fixed" && w.size() >= 3) {
            auto a = addr(w[1]);
            if (!a) return;
            auto o = options(w, 2);
            if (!o.count("present") || (o["present"] != "0" && o["present"] != "1")) {
                fail("fixed needs present=0|1: " + line);
                return;
            }
            std::pair<ServiceAddress, bool> key{*a, o["present"] == "1"};
            if (fixed_.count(key)) {
                fixed_.erase(key);
                return;
            }
            wait_ = Wait::Fixed;
            wait_fixed_ = key;
            arm_timer(o.count("within") ? std::atof(o["within"].c_str()) : 10);
        } else if (cmd == "iface" && w.size() >= 2) {
            if (auto a = addr(w[1])) say("interface_for " + a->str() + ": '" + backend_->interface_for(*a) + "'");
        } else if (cmd == "wait" && w.size() >= 2) {
            wait_ = Wait::Timer;
            arm_timer(std::atof(w[1].c_str()));
        } else if (cmd == "sync") {
            if (outstanding() == 0) return;
            wait_ = Wait::Sync;
            arm_timer(w.size() >= 2 ? std::atof(w[1].c_str()) : 30);
        } else if (cmd == "lost" && w.size() >= 2) {
            auto a = addr(w[1]);
            if (!a) return;
            if (lost_.count(*a)) {
                lost_.erase(*a);
                return;
            }
            auto o = options(w, 2);
            wait_ = Wait::Lost;
            wait_lost_ = *a;
            arm_timer(o.count("within") ? std::atof(o["within"].c_str()) : 10);
        } else if (cmd == "sh" && w.size() >= 2) {
            std::string script = line.substr(3);
            const char* argv[] = {"/bin/sh", "-c", script.c_str(), nullptr};
            GError* err = nullptr;
            proc_.reset(g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_NONE, &err));
            if (!proc_) {
                rais::GErrorPtr errp(err);
                fail(std::string("sh: ") + errp->message);
                return;
            }
            wait_ = Wait::Shell;
            g_subprocess_wait_async(proc_.get(), nullptr, on_shell_done, this);
        } else {
            fail("unknown or incomplete step: " + line);
        }
    }

    // Counted, not summed: a sync on 1024 answers must not cost 1024 map walks.
    int outstanding() const { return outstanding_; }

    void resume() {
        wait_ = Wait::None;
        timer_.reset();
        idle(&Runner::on_step);
    }

    static gboolean on_timer(gpointer p) {
        auto* self = static_cast<Runner*>(p);
        if (self->wait_ == Wait::Sync) self->fail("sync: still " + std::to_string(self->outstanding()) + " unanswered");
        if (self->wait_ == Wait::Lost) self->fail("lost " + self->wait_lost_.str() + " not reported in time");
        if (self->wait_ == Wait::Fixed)
            self->fail("fixed " + self->wait_fixed_.first.str() + " present=" +
                       (self->wait_fixed_.second ? "1" : "0") + " not reported in time");
        self->resume();
        return G_SOURCE_REMOVE;
    }

    static void on_shell_done(GObject*, GAsyncResult* res, gpointer p) {
        auto* self = static_cast<Runner*>(p);
        GError* err = nullptr;
        g_subprocess_wait_finish(self->proc_.get(), res, &err);
        rais::GErrorPtr errp(err);
        int status = g_subprocess_get_if_exited(self->proc_.get()) ? g_subprocess_get_exit_status(self->proc_.get())
                                                                   : -1;
        say("sh exit status " + std::to_string(status));
        self->proc_.reset();
        self->resume();
    }

    void on_done(const ServiceAddress& a, bool acquire, bool ok, const std::string& detail) {
        say(std::string("done ") + (acquire ? "acquire " : "release ") + a.str() + (ok ? " ok" : " FAILED") +
            (detail.empty() ? "" : ": " + detail));
        auto key = std::make_pair(a, acquire);
        if (waiting_[key] > 0) {
            --waiting_[key];
            --outstanding_;
        }
        auto& ex = expect_[key];
        if (!ex.empty()) {
            bool want = ex.front();
            ex.pop_front();
            if (want != ok) fail(std::string("expected ") + (want ? "ok" : "failure"));
        }
        if (wait_ == Wait::Sync && outstanding() == 0) resume();
    }

    void on_lost(const ServiceAddress& a, const std::string& why) {
        say("lost " + a.str() + ": " + why);
        if (wait_ == Wait::Lost && wait_lost_ == a)
            resume();
        else
            lost_.insert(a);
    }

    void on_fixed(const ServiceAddress& a, bool present) {
        say("fixed " + a.str() + (present ? " present" : " gone"));
        std::pair<ServiceAddress, bool> key{a, present};
        if (wait_ == Wait::Fixed && wait_fixed_ == key)
            resume();
        else
            fixed_.insert(key);
    }

    GMainContext* ctx_;
    GMainLoop* loop_;
    std::vector<std::vector<std::string>> steps_;
    std::size_t next_ = 0;
    std::unique_ptr<AddressBackend> backend_;
    Wait wait_ = Wait::None;
    bool final_sync_ = false;
    ServiceAddress wait_lost_;
    std::pair<ServiceAddress, bool> wait_fixed_;
    std::set<std::pair<ServiceAddress, bool>> fixed_;
    SourcePtr step_source_, timer_;
    rais::GObjectPtr<GSubprocess> proc_;
    std::map<std::pair<ServiceAddress, bool>, int> waiting_;
    int outstanding_ = 0;            // the sum of waiting_
    std::map<std::pair<ServiceAddress, bool>, std::deque<bool>> expect_;
    std::set<ServiceAddress> lost_;
    int failures_ = 0;
};

int usage() {
    std::fprintf(stderr,
                 "usage: addrtest [--nic IF] [--probe-ms N] [--announce-interval S] [--hook PATH]\n"
                 "                [--hook-timeout S] [--quiet] [--steps] 'STEP; STEP; ...'\n"
                 "steps: acquire ADDR [probe=0|1] [lifetime=S] [expect=ok|fail]; release ADDR [expect=...];\n"
                 "       refresh ADDR[,ADDR] lifetime=S; present ADDR[,ADDR]; permanent ADDR[,ADDR]; iface ADDR;\n"
                 "       wait S; sync [S]; lost ADDR [within=S]; fixed ADDR present=0|1 [within=S]; sh COMMAND;\n"
                 "       destroy\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    g_start = g_get_monotonic_time();
    AddressBackendOptions opts;
    bool quiet = false, steps_shown = false;
    std::string script;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
        if (arg == "--nic") {
            opts.nic = value();
        } else if (arg == "--probe-ms") {
            opts.arp_probe_ms = static_cast<unsigned>(std::atoi(value().c_str()));
        } else if (arg == "--announce-interval") {
            opts.announce_interval = std::atof(value().c_str());
        } else if (arg == "--hook") {
            opts.hook = value();
        } else if (arg == "--hook-timeout") {
            opts.hook_timeout = std::atof(value().c_str());
        } else if (arg == "--quiet") {
            quiet = true;
        } else if (arg == "--steps") {
            steps_shown = true;
        } else if (arg == "-h" || arg == "--help") {
            return usage();
        } else {
            script += (script.empty() ? "" : " ") + arg;
        }
    }
    std::vector<std::vector<std::string>> steps;
    for (const auto& s : split(script, ';')) {
        auto w = words(s);
        if (!w.empty()) steps.push_back(std::move(w));
    }
    if (steps.empty()) return usage();

    std::unique_ptr<GMainContext, ContextDeleter> ctx(g_main_context_new());
    g_main_context_push_thread_default(ctx.get());
    int failures = 0;
    {
        std::unique_ptr<GMainLoop, LoopDeleter> loop(g_main_loop_new(ctx.get(), FALSE));
        Runner runner(ctx.get(), loop.get(), std::move(steps));
        if (!runner.start(opts, quiet, steps_shown)) {
            g_main_context_pop_thread_default(ctx.get());
            return 2;
        }
        g_main_loop_run(loop.get());
        failures = runner.failures();
    }
    g_main_context_pop_thread_default(ctx.get());
    return failures ? 1 : 0;
}
