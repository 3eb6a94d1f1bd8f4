#include "daemon/load_meter.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

namespace rais {

std::optional<std::pair<double, double>> parse_proc_stat(const std::string& text) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("cpu ", 0) != 0) continue;
        std::istringstream f(line.substr(4));
        std::vector<double> v;
        double x;
        while (f >> x) v.push_back(x);
        if (v.size() < 4) return std::nullopt;
        double total = 0;
        for (double d : v) total += d;
        // idle (3) and iowait (4) are not busy time.
        double idle = v[3] + (v.size() > 4 ? v[4] : 0);
        return std::make_pair(total - idle, total);
    }
    return std::nullopt;
}

std::optional<std::string> LoadMeter::check(const std::string& spec) {
    if (spec == "cpu" || spec.rfind("exec:", 0) == 0) return std::nullopt;
    return "load=" + spec + " is not supported by this version of raisd (use cpu or exec:PATH)";
}

LoadMeter::LoadMeter(std::string spec, unsigned interval_ms, Sink sink, Log log)
    : spec_(std::move(spec)), interval_ms_(interval_ms), sink_(std::move(sink)), log_(std::move(log)),
      cancel_(g_cancellable_new()) {}

LoadMeter::~LoadMeter() {
    if (timer_) g_source_remove(timer_);
    g_cancellable_cancel(cancel_.get());
}

void LoadMeter::start() {
    sample();
    timer_ = g_timeout_add(interval_ms_, [](gpointer p) -> gboolean {
        static_cast<LoadMeter*>(p)->sample();
        return G_SOURCE_CONTINUE;
    }, this);
}

void LoadMeter::sample() {
    if (spec_ == "cpu") sample_cpu();
    else sample_exec();
}

void LoadMeter::sample_cpu() {
    std::ifstream f("/proc/stat");
    std::stringstream ss;
    ss << f.rdbuf();
    auto now = parse_proc_stat(ss.str());
    if (!now) return;
    double cpus = static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN));
    if (last_cpu_ && now->second > last_cpu_->second) {
        double busy = (now->first - last_cpu_->first) / (now->second - last_cpu_->second);
        sink_(busy * 100.0 * cpus, 100.0 * cpus);
    }
    last_cpu_ = now;
}

namespace {
struct ExecCall {
    LoadMeter* meter;
    GCancellable* cancel;
    std::string path;
    LoadMeter::Sink sink;
    LoadMeter::Log log;
    bool* running;
};
}  // namespace

void LoadMeter::sample_exec() {
    if (running_exec_) return;  // the previous sample is still running: skip, never pile up
    std::string path = spec_.substr(5);
    GError* e = nullptr;
    GObjectPtr<GSubprocess> proc(g_subprocess_new(
        static_cast<GSubprocessFlags>(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE), &e,
        path.c_str(), nullptr));
    if (!proc) {
        GErrorPtr owned(e);
        log_(3, "load=" + spec_ + ": " + owned->message);
        return;
    }
    running_exec_ = true;
    auto call = std::make_unique<ExecCall>(ExecCall{this, cancel_.get(), path, sink_, log_, &running_exec_});
    // Bound the run: a hung load command is killed after one interval.
    GSubprocess* raw = proc.get();
    g_object_ref(raw);
    g_timeout_add_full(G_PRIORITY_DEFAULT, interval_ms_, [](gpointer p) -> gboolean {
        g_subprocess_force_exit(static_cast<GSubprocess*>(p));
        return G_SOURCE_REMOVE;
    }, raw, g_object_unref);
    g_subprocess_communicate_utf8_async(
        proc.get(), nullptr, cancel_.get(),
        [](GObject* src, GAsyncResult* res, gpointer p) {
            std::unique_ptr<ExecCall> c(static_cast<ExecCall*>(p));
            gchar* out = nullptr;
            GError* err = nullptr;
            gboolean ok = g_subprocess_communicate_utf8_finish(G_SUBPROCESS(src), res, &out, nullptr, &err);
            GCharPtr owned_out(out);
            GErrorPtr owned_err(err);
            if (g_cancellable_is_cancelled(c->cancel)) return;  // the meter is gone
            *c->running = false;
            double load = 0, cap = 0;
            if (!ok || !out || std::sscanf(out, "%lf %lf", &load, &cap) != 2 || load < 0 || cap < 0) {
                c->log(3, "load=exec:" + c->path + " printed no 'LOAD CAPACITY' line" +
                              (owned_err ? std::string(": ") + owned_err->message : std::string()));
                return;
            }
            c->sink(load, cap);
        },
        call.release());
}

}  // namespace rais
