// ChildProcess: one program run asynchronously on the GLib main loop, with
// its output collected and a hard timeout — the one way raisd runs anything
// (load=exec:, hooks' neighbours, crm_attribute, attrd_updater, later health
// tests and alert agents).
//
// Invariants: the child runs in its own process group, and the whole group
// is killed at the timeout or when the ChildProcess is destroyed, so nothing
// it started outlives it. `done` is called at most once, from the main loop,
// and never after the ChildProcess is gone (destroying it from inside `done`
// is allowed).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace rais {

struct ChildResult {
    bool started = false;         // false: could not run it (see error)
    bool exited = false;          // ended by exit(); code is valid
    int code = -1;
    int signal = 0;               // ended by this signal
    bool timed_out = false;       // killed by us at the timeout
    std::string output;           // stdout (and stderr if merged), trimmed, valid UTF-8, at most 4 KiB
    std::string error;            // why it could not run or be read

    bool ok() const { return exited && code == 0; }
    // "exit status 1", "killed after the 10 s timeout", "killed by signal 9", ...
    std::string status() const;
};

struct ChildOptions {
    unsigned timeout_ms = 10000;
    bool merge_stderr = true;     // false: stderr goes to /dev/null
    std::vector<std::pair<std::string, std::string>> env;   // set on top of raisd's environment
    std::string user;             // run as this user (and its groups); empty: as raisd
};

class ChildProcess {
public:
    using Done = std::function<void(const ChildResult&)>;

    // Starts argv[0] (a path, or a name looked up in PATH). If it cannot
    // start (or `user` does not exist), `done` runs from the main loop with
    // started = false.
    ChildProcess(const std::vector<std::string>& argv, const ChildOptions& opts, Done done);
    ~ChildProcess();
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    bool running() const;
    struct State;

private:
    std::shared_ptr<State> state_;
};

}  // namespace rais
