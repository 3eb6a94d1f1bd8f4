// ChildProcess: one program run asynchronously on the GLib main loop, with
// its output collected and a hard timeout — the one way raisd runs anything
// (hooks, load=exec:, exec: health tests, alert agents, crm_attribute,
// attrd_updater, cibadmin).
//
// Invariants:
// - The child runs in its own process group. At the timeout, or when the
//   ChildProcess is destroyed first, the whole group gets SIGKILL — also
//   when the direct child has already exited and only what it started in
//   the background is left.
// - `done` runs exactly once (unless the ChildProcess is destroyed first),
//   from the main loop, at most timeout + kOutputGraceMs after the start,
//   whatever the child does. Completion needs the direct child's exit and
//   the end of its output; a background process still holding the output
//   kOutputGraceMs after the direct child exited gets its group killed and
//   the output is closed, so it cannot hold `done` back. A background
//   process that closed its output (`cmd >/dev/null 2>&1 &`) is left alone.
//   Destroying the ChildProcess from inside `done` is allowed.
// - Output is capped while it is read: at most max_output bytes are kept,
//   the rest is read and discarded so the child never blocks on a full
//   pipe; memory use does not depend on how much a child prints.
// - Nothing blocks the loop: the user lookup (getpwnam_r, getgrouplist,
//   which may ask LDAP or sssd) runs in a worker thread.
//
// The child's environment is minimal and fixed, never raisd's own (which
// holds the agent's OCF_RESKEY_* parameters and whatever Pacemaker passed):
//   PATH=/usr/sbin:/usr/bin:/sbin:/bin   (also where argv[0] without '/' is looked up)
//   LANG=C
//   plus exactly the variables in ChildOptions::env (which may override these).
// stdin is /dev/null; no other descriptor of raisd is inherited; signal
// dispositions and the signal mask are reset to the defaults.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace rais {

// The search path children get (see above).
inline constexpr const char* kChildPath = "/usr/sbin:/usr/bin:/sbin:/bin";
// How long a background process may hold the output after the direct child exited.
inline constexpr unsigned kOutputGraceMs = 200;

struct ChildResult {
    bool started = false;         // false: could not run it (see error)
    bool exited = false;          // ended by exit(); code is valid
    int code = -1;
    int signal = 0;               // ended by this signal
    bool timed_out = false;       // killed by us at the timeout
    bool output_held = false;     // exited, but processes it left held the output: killed after the grace
    std::string output;           // stdout (and stderr if merged), trimmed, valid UTF-8, at most
                                  // max_output bytes of it ("..." appended when cut)
    std::string error;            // why it could not run or be read

    bool ok() const { return exited && code == 0; }
    // "exit status 1", "killed at its timeout", "killed by signal 9", ...
    std::string status() const;
};

struct ChildOptions {
    unsigned timeout_ms = 10000;
    bool merge_stderr = true;     // false: stderr goes to /dev/null
    std::vector<std::pair<std::string, std::string>> env;   // added to the minimal environment above
    std::string user;             // run as this user (and its groups); empty: as raisd
    std::size_t max_output = 4096;  // bytes of output kept
};

class ChildProcess {
public:
    using Done = std::function<void(const ChildResult&)>;

    // Starts argv[0] (a path, or a name looked up in kChildPath). If it
    // cannot start (or `user` does not exist), `done` runs from the main
    // loop with started = false.
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
