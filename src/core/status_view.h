// StatusView: what `raisctl status` and `raisctl events` print (text and
// --json, DESIGN §5), rendered from typed data: the Member's status and
// view, the running configuration, the few facts only the shell knows, and
// the event ring. Pure: no I/O, no clock (times come in, wall-clock times
// are formatted by a function the caller passes).
//
// Invariants: the output is exactly what tests and the agent read (the
// status JSON is the view of `raisctl plan --view` plus a "status" object;
// its shape is frozen). Each JSON document is generated once from what it
// shows; nothing is parsed back.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>

#include "core/config.h"
#include "core/failover_trace.h"
#include "core/member.h"
#include "core/model.h"

namespace rais {

// An event as the shell logged it, with the wall-clock time of its emission.
struct LoggedEvent {
    Event event;
    std::int64_t wall_us = 0;   // µs since the epoch
};

// "2026-12-03 16:23:58.123" for a wall-clock time in µs since the epoch:
// the shell's formatter (local time), a fixed one in tests.
using WallFormat = std::function<std::string(std::int64_t wall_us)>;

// What status shows that the Member does not know.
struct ShellStatus {
    // Reloads (SIGHUP): completed attempts, applied ones (the generation),
    // and the last attempt's refusal ("" when it was applied).
    std::uint64_t reload_attempts = 0;
    std::uint64_t config_generation = 1;
    std::string reload_error;
    std::string dns_last;        // the last DNS exchange: time, read/update, result ("" = none yet)
    std::string quiesce_error;   // the quiesce flag could not be written or removed ("" = fine)
    std::optional<FailoverBreakdown> last_failover;   // the last failover this host took part in
};

// Everything one status rendering reads. `config` is the running one (the
// shell's, which the Member's follows); `now` is the Member's clock.
struct StatusInput {
    const MemberStatus& member;
    const View& view;
    const GroupConfig& config;
    const ShellStatus& shell;
    double now = 0;
};

std::string status_text(const StatusInput& in);
// Pretty-printed, newline-terminated.
std::string status_json(const StatusInput& in);

// One line per event: "TIME KIND NODE|- ADDRESS|-: REASON".
std::string events_text(const std::deque<LoggedEvent>& events, const WallFormat& wall_time);
// One compact JSON array, newline-terminated.
std::string events_json(const std::deque<LoggedEvent>& events);

}  // namespace rais
