// raisd: runs one rais service group on this host (DESIGN §2, §5.1).
//
//   raisd --config FILE [--foreground] [--log-file FILE] [--debug]
//         [--run-dir DIR] [--node-name NAME]
//   raisd --check --config FILE
//   raisd --check-group NAME
//
// Exit status: 0 after a graceful stop, 1 on a runtime failure (corosync
// gone, no netlink), 2 on a usage error, 6 when the configuration is invalid
// (OCF_ERR_CONFIGURED: wrong on every host), 5 when it is valid but this host
// lacks the interface or a file it names (OCF_ERR_INSTALLED: the agent keeps
// the clone off this host only), with a message naming the file, the key and
// the problem.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/group_name.h"
#include "daemon/daemon.h"
#include "daemon/log.h"
#include "daemon/validate.h"

namespace {

const char* kUsage =
    "usage: raisd --config FILE [--foreground] [--log-file FILE] [--debug]\n"
    "             [--run-dir DIR] [--node-name NAME]\n"
    "       raisd --check --config FILE\n"
    "       raisd --check-group NAME\n"
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
    "                    or a file it names, or a trap host does not resolve\n"
    "                    here; one line names the parameter. Start and reload\n"
    "                    (SIGHUP) run the same checks\n"
    "  --check-group NAME  exit 0 if NAME is a valid group name, else 6\n"
    "  --foreground      do not detach; log to stderr as well as syslog\n"
    "  --log-file FILE   also log to FILE\n"
    "  --debug           log debug messages\n"
    "  --run-dir DIR     pid file and quiesce flag (default /run/rais)\n"
    "  --node-name NAME  this node's cluster name (default: from corosync's nodelist)\n"
    "  --help, --version\n"
    "\n"
    "SIGTERM: graceful stop (hand addresses over, then exit). SIGHUP: reload\n"
    "the file (every key but group and nic).\n";

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
        else if (a == "--check-group") {
            // The agent's test of a group name: one rule for raisd, raisctl and the agent.
            std::string g = value();
            if (rais::valid_group_name(g)) return 0;
            std::fprintf(stderr, "raisd: parameter 'group': '%s' is not a valid group name (%s)\n", g.c_str(),
                         rais::kGroupNameRule);
            return 6;
        }
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
    // The same checks as a reload (Daemon::reload), plus the trap hosts'
    // names, resolved here before detaching so a start that would fail
    // fails with the right exit code.
    auto problem = rais::validate_config(cfg, rais::read_two_node(true));
    if (!problem) problem = rais::validate_trap_hosts(cfg);
    if (problem) {
        std::fprintf(stderr, "raisd: %s: %s\n", opts.config_path.c_str(), problem->message.c_str());
        return problem->exit_code;
    }
    if (check) {
        std::printf("raisd: %s: valid\n", opts.config_path.c_str());
        return 0;
    }
    // Before detaching, so a refused log file (a symlink planted in a
    // directory hacluster can write) fails the start with its reason.
    if (!log_file.empty())
        if (auto err = rais::log_open_file(log_file)) {
            std::fprintf(stderr, "raisd: %s\n", err->c_str());
            return 1;
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
