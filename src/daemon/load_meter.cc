#include "daemon/load_meter.h"

#include <unistd.h>

#include <cstdio>
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
    : spec_(std::move(spec)), interval_ms_(interval_ms), sink_(std::move(sink)), log_(std::move(log)) {}

LoadMeter::~LoadMeter() {
    if (timer_) g_source_remove(timer_);
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

void LoadMeter::sample_exec() {
    if (exec_ && exec_->running()) return;  // the previous sample is still running: skip, never pile up
    std::string path = spec_.substr(5);
    ChildOptions o;
    o.timeout_ms = interval_ms_;  // a hung load command is killed after one interval
    o.merge_stderr = false;
    exec_ = std::make_unique<ChildProcess>(std::vector<std::string>{path}, o, [this, path](const ChildResult& r) {
        double load = 0, cap = 0;
        if (!r.ok() || std::sscanf(r.output.c_str(), "%lf %lf", &load, &cap) != 2 || load < 0 || cap < 0) {
            log_(3, "load=exec:" + path + " printed no 'LOAD CAPACITY' line (" + r.status() +
                        (r.output.empty() ? "" : ", printed '" + r.output.substr(0, 80) + "'") + ")");
            return;
        }
        sink_(load, cap);
    });
}

}  // namespace rais
