// Notifier: takes each rais event (DESIGN §5.3) beyond raisd's own log and
// ring — to the alert agents configured in Pacemaker's CIB and to SNMP trap
// receivers (`snmp_traps`), the places operators already watch.
//
// Alert agents: the CIB's <alerts> section is read with `cibadmin --query
// --scope alerts` (a child process; no public libcib call is needed for a
// read), cached for 10 s. Each event runs every alert once per recipient,
// as user hacluster, with the alert's timeout (meta attribute `timeout`,
// default 30 s) and the environment Pacemaker gives alert agents: kind
// "resource", rsc = GROUP:ADDRESS, task = the event, desc = the reason, node,
// rc, timestamp (the alert's `timestamp-format`), recipient, the alert's
// instance attributes, and the legacy CRM_notify_* names. An alert whose
// <select> does not select resources is skipped.
//
// SNMP trap hosts are resolved off the loop (a GTask worker), or given
// resolved in Options::snmp_peers; traps raised before the resolution ends
// wait (bounded) and go out once it does.
//
// Invariants: nothing blocks the loop; at most kMaxRunning agents run at
// once and at most kMaxQueued events wait, an overflow is logged (never
// lost silently); a slow agent is killed at its timeout and logged.
#pragma once

#include "core/log_level.h"
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/member.h"

namespace rais {

// One <alert> of the CIB.
struct AlertAgent {
    std::string id, path;
    unsigned timeout_ms = 30000;
    std::string timestamp_format = "%H:%M:%S.%06N";
    bool selects_resources = true;
    std::vector<std::pair<std::string, std::string>> attributes;  // instance attributes -> environment
    std::vector<std::string> recipients;                           // empty: run once with no recipient
};

// Parses `cibadmin --query --scope alerts` output; nullopt on malformed XML.
std::optional<std::vector<AlertAgent>> parse_alerts(const std::string& xml, std::string* error);
// Pacemaker's timestamp-format: strftime plus %N (%3N, %6N, %06N ... = fraction digits).
std::string format_alert_time(const std::string& format, std::int64_t unix_us);

// Resolves SNMP trap targets (TrapSender::resolve_targets) in a GTask
// worker thread. `done` runs once on the thread-default main context of the
// caller, never synchronously, and never after the returned handle is
// destroyed (destroying it from inside `done` is allowed).
class TrapResolution {
public:
    using Done = std::function<void(bool ok, const std::vector<std::string>& peers, const std::string& error)>;
    static std::unique_ptr<TrapResolution> start(const std::vector<std::string>& targets, Done done);
    struct State;
    explicit TrapResolution(std::shared_ptr<State> s) : state_(std::move(s)) {}

private:
    std::shared_ptr<State> state_;
};

class Notifier {
public:
    using Log = std::function<void(LogLevel level, const std::string& text)>;
    struct Options {
        std::string group, node;
        std::uint32_t node_id = 0;
        std::vector<std::string> snmp_traps;
        // snmp_traps already resolved (TrapSender::resolve_targets, one per
        // target); empty: resolved in a worker thread after create().
        std::vector<std::string> snmp_peers;
        std::string snmp_community = "public";
        bool alerts = true;           // read the CIB's alerts
        std::string alert_user = "hacluster";
    };

    // Fails (nullptr, *error naming the parameter) only when the SNMP
    // settings are unusable (TrapSender::check, or given peers that do not
    // open). Never resolves a name on the caller's thread.
    static std::unique_ptr<Notifier> create(const Options& opts, Log log, std::string* error);
    ~Notifier();
    Notifier(const Notifier&) = delete;
    Notifier& operator=(const Notifier&) = delete;

    void notify(const Event& e, std::int64_t wall_us);

    struct Impl;
    explicit Notifier(std::unique_ptr<Impl> impl);  // use create()

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace rais
