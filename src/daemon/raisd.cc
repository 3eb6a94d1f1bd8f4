// raisd: runs one rais service group on this host (DESIGN §2, §5.1).
//
//   raisd --config FILE [--foreground] [--log-file FILE] [--debug]
//         [--run-dir DIR] [--node-name NAME]
//   raisd --check --config FILE
//   raisd --check-group NAME
//   raisd --write-config FILE     (the agent: OCF_RESKEY_* -> key file)
//   raisd --agent-metadata        (the agent's OCF meta-data, from the table)
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
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/group_name.h"
#include "core/parameters.h"
#include "daemon/daemon.h"
#include "daemon/log.h"
#include "daemon/validate.h"

namespace {

const char* kUsage =
    "usage: raisd --config FILE [--foreground] [--log-file FILE] [--debug]\n"
    "             [--run-dir DIR] [--node-name NAME]\n"
    "       raisd --check --config FILE\n"
    "       raisd --check-group NAME\n"
    "       raisd --write-config FILE\n"
    "       raisd --agent-metadata\n"
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
    "  --write-config FILE  write FILE, a key file for --config, from the\n"
    "                    OCF_RESKEY_* environment (the agent's parameters)\n"
    "  --agent-metadata  print the OCF meta-data of ocf:rais:servicegroup\n"
    "  --foreground      do not detach; log to stderr as well as syslog\n"
    "  --log-file FILE   also log to FILE\n"
    "  --debug           log debug messages\n"
    "  --run-dir DIR     pid file and quiesce flag (default /run/rais)\n"
    "  --node-name NAME  this node's cluster name (default: from corosync's nodelist)\n"
    "  --help, --version\n"
    "\n"
    "SIGTERM: graceful stop (hand addresses over, then exit). SIGHUP: reload\n"
    "the file (every key but group and nic).\n";

// GKeyFile escaping of a value: backslash, tab, CR and newline as escapes,
// a leading space as \s (GKeyFile drops leading blanks otherwise).
std::string keyfile_escape(const std::string& v) {
    std::string out;
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '\t') out += "\\t";
        else if (c == '\r') out += "\\r";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    if (!out.empty() && out[0] == ' ') out = "\\s" + out.substr(1);
    return out;
}

// The agent's key file: every parameter of the table set (non-empty) in
// OCF_RESKEY_<name>, or the table's agent default when unset. Written into
// FILE as it is (the agent creates it with mode 0600).
int write_config(const std::string& path) {
    std::string text = "# Written by the ocf:rais:servicegroup agent for resource ";
    const char* instance = std::getenv("OCF_RESOURCE_INSTANCE");
    text += std::string(instance ? instance : "") + ".\n";
    text += "# Pacemaker rewrites it on start and reload-agent: change the resource instead.\n";
    text += std::string("[") + rais::kConfigSection + "]\n";
    for (const auto& p : rais::parameters()) {
        const char* env = std::getenv((std::string("OCF_RESKEY_") + p.name).c_str());
        std::string v = env ? env : "";
        if (v.empty() && p.agent_default) v = p.agent_default;
        if (!v.empty()) text += std::string(p.name) + "=" + keyfile_escape(v) + "\n";
    }
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f || std::fputs(text.c_str(), f) < 0 || std::fclose(f) != 0) {
        std::fprintf(stderr, "raisd: cannot write %s: %s\n", path.c_str(), std::strerror(errno));
        return 1;
    }
    return 0;
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
        else if (a == "--check-group") {
            // The agent's test of a group name: one rule for raisd, raisctl and the agent.
            std::string g = value();
            if (rais::valid_group_name(g)) return 0;
            std::fprintf(stderr, "raisd: parameter 'group': '%s' is not a valid group name (%s)\n", g.c_str(),
                         rais::kGroupNameRule);
            return 6;
        }
        else if (a == "--write-config") return write_config(value());
        else if (a == "--agent-metadata") {
            std::fputs(rais::agent_metadata(PACKAGE_VERSION).c_str(), stdout);
            return 0;
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
