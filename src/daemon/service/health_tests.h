// HealthTests: the patent's test objects (Fig. 3, step 320) for one host —
// the `tests=` of DESIGN §5.1, run every `test_interval` ms on the GLib loop:
//
//   tcp:PORT        a TCP connect to PORT on this host (127.0.0.1, then ::1)
//                   is accepted; tcp:HOST:PORT names another address
//   http:URL        GET URL (http:// only) answers with a 2xx or 3xx status
//   exec:PATH       PATH exits 0 (run by ChildProcess; killed at the timeout)
//
// One round starts every test at once; all must pass. A round is bounded by
// the interval itself (at most 10 s): a test still running when its time is
// up fails with "timed out". The round's verdict goes to the sink, one per
// round; the Member counts `test_failures` verdicts in a row.
//
// Invariants: nothing blocks the loop: host names are resolved by GIO's
// asynchronous resolver (a worker thread), connects and reads are GIO async
// calls, exec: runs through ChildProcess;
// destroying HealthTests cancels the running round, and no verdict arrives
// after that.
#pragma once

#include "core/log_level.h"
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace rais {

class HealthTests {
public:
    using Sink = std::function<void(bool ok, const std::string& detail)>;
    using Log = std::function<void(LogLevel level, const std::string& text)>;

    // Returns a message naming the bad test when a spec cannot be run.
    static std::optional<std::string> check(const std::vector<std::string>& specs);

    HealthTests(std::vector<std::string> specs, unsigned interval_ms, Sink sink, Log log);
    ~HealthTests();
    HealthTests(const HealthTests&) = delete;
    HealthTests& operator=(const HealthTests&) = delete;

    void start();
    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

// Parsed forms, exposed for the unit tests.
struct HttpTarget {
    std::string host;          // without brackets for IPv6
    unsigned port = 80;
    std::string path = "/";
};
std::optional<HttpTarget> parse_http_url(const std::string& url);
// "HTTP/1.1 204 No Content" -> 204; nullopt when not a status line.
std::optional<int> parse_http_status(const std::string& first_line);

}  // namespace rais
