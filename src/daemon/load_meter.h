// LoadMeter: samples this host's load and capacity for the group (the
// patent's load objects, DESIGN §5.1 `load=`), every interval, without
// blocking the main loop. Implemented here: `cpu` (utilization from
// /proc/stat deltas, capacity 100 x CPUs) and `exec:PATH` (PATH prints
// "LOAD CAPACITY"; killed after its timeout). `net` and `conns` come with
// the load-measures work; until then raisd refuses them at start.
#pragma once

#include <gio/gio.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "daemon/child_process.h"

namespace rais {

// Parses the first "cpu" line of /proc/stat: returns (busy, total) jiffies.
std::optional<std::pair<double, double>> parse_proc_stat(const std::string& text);

class LoadMeter {
public:
    using Sink = std::function<void(double load, double capacity)>;
    using Log = std::function<void(int level, const std::string& text)>;

    // Returns an error message when `spec` is not supported.
    static std::optional<std::string> check(const std::string& spec);

    LoadMeter(std::string spec, unsigned interval_ms, Sink sink, Log log);
    ~LoadMeter();
    LoadMeter(const LoadMeter&) = delete;
    LoadMeter& operator=(const LoadMeter&) = delete;

    void start();

private:
    void sample();
    void sample_cpu();
    void sample_exec();

    std::string spec_;
    unsigned interval_ms_;
    Sink sink_;
    Log log_;
    guint timer_ = 0;
    std::unique_ptr<ChildProcess> exec_;
    std::optional<std::pair<double, double>> last_cpu_;
};

}  // namespace rais
