// raisd: runs one rais service group on this host (DESIGN §2, §5.1).
//
//   raisd --config FILE [--foreground] [--log-file FILE] [--debug]
//         [--run-dir DIR] [--node-name NAME]
//   raisd --check --config FILE
//
// Exit status: 0 after a graceful stop, 1 on a runtime failure (corosync
// gone, no netlink), 2 on a usage error, 6 when the configuration is invalid
// (OCF_ERR_CONFIGURED: wrong on every host), 5 when it is valid but this host
// lacks the interface or a file it names (OCF_ERR_INSTALLED: the agent keeps
// the clone off this host only), with a message naming the file, the key and
// the problem.
#include <net/if.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "daemon/daemon.h"
#include "daemon/health_tests.h"
#include "daemon/load_meter.h"
#include "daemon/log.h"

namespace {

const char* kUsage =
    "usage: raisd --config FILE [--foreground] [--log-file FILE] [--debug]\n"
    "             [--run-dir DIR] [--node-name NAME]\n"
    "       raisd --check --config FILE\n"
    "\n"
    "Runs one rais service group on this host: joins the group's corosync\n"
    "process group, serves the addresses its leader assigns, and answers\n"
    "raisctl on the control socket rais-GROUP.\n"
    "\n"
    "  --config FILE     key file with a [group] section; keys are the\n"
    "                    parameters of ocf:rais:servicegroup\n"
    "  --check           validate FILE against this host (every parameter,\n"
    "                    the interface, the files it names) and exit: 0 valid,\n"
    "                    6 invalid, 5 valid but this host lacks the interface\n"
    "                    or a file it names; one line names the parameter\n"
    "  --foreground      do not detach; log to stderr as well as syslog\n"
    "  --log-file FILE   also log to FILE\n"
    "  --debug           log debug messages\n"
    "  --run-dir DIR     pid file and quiesce flag (default /run/rais)\n"
    "  --node-name NAME  this node's cluster name (default: from corosync's nodelist)\n"
    "  --help, --version\n"
    "\n"
    "SIGTERM: graceful stop (hand addresses over, then exit). SIGHUP: reload\n"
    "the file (every key but group and nic).\n";

// What parse_config cannot know: whether this host has the interface and
// the files the configuration names.
std::optional<std::string> check_host(const rais::GroupConfig& cfg) {
    if (!cfg.nic.empty() && if_nametoindex(cfg.nic.c_str()) == 0)
        return "parameter 'nic': no interface '" + cfg.nic + "' on this host";
    auto executable = [](const std::string& key, const std::string& path) -> std::optional<std::string> {
        if (access(path.c_str(), X_OK) != 0)
            return "parameter '" + key + "': '" + path + "' is not an executable file (" + std::strerror(errno) + ")";
        return std::nullopt;
    };
    if (!cfg.hook.empty())
        if (auto e = executable("hook", cfg.hook)) return e;
    if (cfg.load.rfind("exec:", 0) == 0)
        if (auto e = executable("load", cfg.load.substr(5))) return e;
    for (const auto& t : cfg.tests)
        if (t.rfind("exec:", 0) == 0)
            if (auto e = executable("tests", t.substr(5))) return e;
    if (!cfg.dns_key.empty() && access(cfg.dns_key.c_str(), R_OK) != 0)
        return "parameter 'dns_key': cannot read '" + cfg.dns_key + "' (" + std::strerror(errno) + ")";
    return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
    rais::DaemonOptions opts;
    bool foreground = false, debug = false, check = false;
    std::string log_file;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "raisd: %s needs a value\n%s", a.c_str(), kUsage);
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--config" || a == "-c") opts.config_path = value();
        else if (a == "--foreground" || a == "-f") foreground = true;
        else if (a == "--log-file") log_file = value();
        else if (a == "--debug") debug = true;
        else if (a == "--check") check = true;
        else if (a == "--run-dir") opts.run_dir = value();
        else if (a == "--node-name") opts.node_name = value();
        else if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            return 0;
        } else if (a == "--version") {
            std::printf("raisd %s\n", PACKAGE_VERSION);
            return 0;
        } else {
            std::fprintf(stderr, "raisd: unknown argument '%s'\n%s", a.c_str(), kUsage);
            return 2;
        }
    }
    if (opts.config_path.empty()) {
        std::fprintf(stderr, "raisd: --config FILE is required\n%s", kUsage);
        return 2;
    }
    rais::GroupConfig cfg;
    if (auto err = rais::load_config_file(opts.config_path, &cfg)) {
        std::fprintf(stderr, "raisd: %s\n", err->c_str());
        return 6;
    }
    if (auto err = rais::LoadMeter::check(cfg.load, cfg.capacity, cfg.nic)) {
        std::fprintf(stderr, "raisd: %s: %s\n", opts.config_path.c_str(), err->c_str());
        return 6;
    }
    if (auto err = rais::HealthTests::check(cfg.tests)) {
        std::fprintf(stderr, "raisd: %s: %s\n", opts.config_path.c_str(), err->c_str());
        return 6;
    }
    if (auto err = check_host(cfg)) {
        std::fprintf(stderr, "raisd: %s: %s\n", opts.config_path.c_str(), err->c_str());
        return 5;
    }
    if (check) {
        std::printf("raisd: %s: valid\n", opts.config_path.c_str());
        return 0;
    }
    if (!foreground && daemon(0, 0) != 0) {
        std::fprintf(stderr, "raisd: cannot detach: %s\n", std::strerror(errno));
        return 1;
    }
    rais::log_setup(cfg.group, foreground, log_file, debug);
    int rc;
    {
        rais::Daemon d(opts, cfg);
        rc = d.run();
    }
    rais::log_teardown();
    return rc;
}
