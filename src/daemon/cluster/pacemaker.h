// PacemakerLink: what raisd learns from and tells the Pacemaker it runs under
// (DESIGN §4.3, issue 4).
//
//  - Fence confirmations: a libstonithd connection to the local fencer with
//    a T_STONITH_NOTIFY_FENCE subscription; every successful "off"/"reboot"
//    reaches the callback with the target's node name. The connection is
//    retried every 2 s while pacemaker-fenced is not there (start-up order,
//    fencer restart), so raisd never depends on starting after Pacemaker.
//  - Whether the cluster fences: `stonith-enabled` read from the CIB with
//    crm_attribute (child process, never blocking the loop) at start and
//    every 10 s. A failed query keeps the last answer (unknown is not off,
//    DESIGN §4 rule 8; fencing_state.h); only a host without crm_attribute
//    (Pacemaker not installed) reports "off".
//  - Transient node attributes (rais-GROUP-addresses/-util/-role) written
//    with attrd_updater as a child process (no public attrd API in 2.1.5),
//    one at a time, only when a value changed, the newest value winning.
//
// Invariants: every child runs asynchronously (GSubprocess) and is killed
// after 10 s; a failure is logged once per kind of failure, not per try.
#pragma once

#include "core/log_level.h"
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace rais {

class PacemakerLink {
public:
    struct Callbacks {
        // Fencing confirmed `target` (a node name) down.
        std::function<void(const std::string& target, const std::string& detail)> fenced;
        // stonith-enabled as last known: nullopt until the first real
        // answer (count it as on), false when Pacemaker is not installed. A
        // failed query never changes it. Called at every change of the value
        // (and once at the first query, answered or not).
        std::function<void(std::optional<bool> enabled, const std::string& detail)> stonith_enabled;
        std::function<void(LogLevel level, const std::string& text)> log;
    };

    // watch_fencing: connect to the fencer (fencing=auto or require).
    PacemakerLink(std::string group, bool watch_fencing, Callbacks cb);
    ~PacemakerLink();
    PacemakerLink(const PacemakerLink&) = delete;
    PacemakerLink& operator=(const PacemakerLink&) = delete;

    void start();
    bool fencer_connected() const;

    // Publishes rais-GROUP-KEY = value as a transient node attribute when it
    // differs from what was last published.
    void publish(const std::string& key, const std::string& value);

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace rais
