// Validation of a group's configuration beyond what parse_config checks by
// itself, shared by `raisd --check`, raisd's start and its reload (SIGHUP),
// so the three never disagree (issue 11, item 8) and the agent's exit codes
// stay right: whatever start or reload would refuse, --check refuses first,
// with the same message.
//
// Exit codes (DESIGN §5.1): 6 (OCF_ERR_CONFIGURED) for values wrong on
// every host — they are group-wide — and 5 (OCF_ERR_INSTALLED) for what is
// wrong on this host only: the interface, a file it names (hook, exec:
// scripts, the DNS key file, unreadable or malformed), a trap host that
// does not resolve here. All group-wide checks run before any host check.
#pragma once

#include <optional>
#include <string>

#include "core/config.h"
#include "core/parameters.h"

namespace rais {

// The config file's one section, [group]: raisd --write-config writes it,
// load_config_file reads it.
constexpr const char* kConfigSection = "group";

constexpr int kExitInvalid = 6;        // OCF_ERR_CONFIGURED
constexpr int kExitNotInstalled = 5;   // OCF_ERR_INSTALLED

struct ConfigProblem {
    int exit_code = kExitInvalid;
    std::string message;               // "parameter 'KEY': ..."
};

// "parameter 'KEY': WHAT", KEY the table's name of `p`.
std::string param_message(Param p, const std::string& what);

// corosync's quorum.two_node, from cmap while corosync runs, else from its
// configuration file ($COROSYNC_MAIN_CONFIG_FILE, as corosync itself reads
// it, else /etc/corosync/corosync.conf). nullopt when neither answers.
// Blocks only on a local IPC call and a file read. before_logging: ask cmap
// from a child process, for callers that have not set up raisd's logging
// yet (libqb's IPC client would log before qb_log_init, which silences
// raisd's later logging).
std::optional<bool> read_two_node(bool before_logging = false);

// Everything but parse_config and the trap hosts' name resolution: the load
// and health-test specs, the DNS target and key file, the SNMP settings,
// fencing=off in a two_node cluster (two_node nullopt: not known, not
// refused), the interface and the files the configuration names.
std::optional<ConfigProblem> validate_config(const GroupConfig& cfg, std::optional<bool> two_node);

// Resolves the trap hosts (blocking: --check and before the main loop only).
std::optional<ConfigProblem> validate_trap_hosts(const GroupConfig& cfg);

}  // namespace rais
