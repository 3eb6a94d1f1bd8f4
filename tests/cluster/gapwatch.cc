// gapwatch — the client-side gap helper of rais's cluster tests and benchmarks
// (doc/design.md §6).
//
//   gapwatch [--interval-ms 10] [--timeout-ms 50] [--duration S] [--until-up]
//            ADDR:PORT... ([IPV6]:PORT for IPv6)
//
// Every interval it starts a non-blocking TCP connect to each target (probes
// overlap when the timeout is longer than the interval). A target "answers"
// when the connect succeeds or is refused (RST): either proves that some
// host owns the address. A timeout, "host/network unreachable" or any other
// error is no answer. A successful connection is closed at once with a RST
// (SO_LINGER 0), so no TIME_WAIT piles up.
//
// A probe's result belongs to the moment it was sent; results that arrive
// after the result of a later probe of the same target are ignored. Output,
// one line per state change (the first line per target gives its initial
// state), stamped with the send time of the probe that showed it:
//
//   <epoch.ms> <target> up|down
//
// and on exit (SIGTERM, SIGINT, or the end of --duration) one line per target:
//
//   gap <target> longest=<ms> total=<ms> changes=<n> final=up|down|none
//
// A gap is a period of "down" after the target first answered (so an address
// that appears after gapwatch started does not count as a gap); a gap still
// open at exit counts up to the exit. changes counts transitions after the
// initial state. final=none: no probe of it ever completed.
//
// --until-up: exit 0 as soon as every target answers at once, after printing
//   allup <epoch.ms> after=<ms since start>
// or exit 1 at the end of --duration (default: no limit) without that.
// Exit 2: bad usage. Exit 0 otherwise.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cluster/watch_common.h"

namespace {

using watch::fmt_epoch;
using watch::mono_ms;
using watch::parse_num;
using watch::real_ms;

enum class State { unknown, up, down };

const char *state_name(State s) {
    switch (s) {
    case State::up: return "up";
    case State::down: return "down";
    default: return "none";
    }
}

struct Target {
    std::string text;
    sockaddr_storage addr{};
    socklen_t addrlen = 0;

    State state = State::unknown;
    int64_t applied_seq = -1;   // newest probe whose result was applied
    bool ever_up = false;
    int64_t down_since = 0;     // real ms; valid while state == down && ever_up
    int64_t longest = 0;
    int64_t total = 0;
    long changes = 0;
};

struct Probe {
    int fd;
    size_t target;
    int64_t seq;
    int64_t sent_real;   // ms
    int64_t deadline;    // monotonic ms
};

bool parse_target(const std::string &s, Target &t) {
    std::string host, port;
    if (!s.empty() && s[0] == '[') {
        size_t close = s.find(']');
        if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':')
            return false;
        host = s.substr(1, close - 1);
        port = s.substr(close + 2);
    } else {
        size_t colon = s.rfind(':');
        if (colon == std::string::npos || s.find(':') != colon)
            return false;
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
    }
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
        return false;
    long p = std::strtol(port.c_str(), nullptr, 10);
    if (p < 1 || p > 65535)
        return false;
    t.text = s;
    return watch::socket_address(host, int(p), t.addr, t.addrlen);
}

[[noreturn]] void usage(const char *msg) {
    if (msg)
        std::fprintf(stderr, "gapwatch: %s\n", msg);
    std::fprintf(stderr,
                 "usage: gapwatch [--interval-ms 10] [--timeout-ms 50] [--duration S] "
                 "[--until-up] ADDR:PORT... ([IPV6]:PORT)\n");
    std::exit(2);
}

void apply(Target &t, int64_t seq, int64_t sent_real, bool answered) {
    if (seq <= t.applied_seq)
        return;   // a later probe already spoke
    t.applied_seq = seq;
    State s = answered ? State::up : State::down;
    if (s == t.state)
        return;
    if (t.state != State::unknown)
        ++t.changes;
    if (s == State::up) {
        if (t.ever_up && t.state == State::down) {
            int64_t gap = sent_real - t.down_since;
            t.total += gap;
            if (gap > t.longest)
                t.longest = gap;
        }
        t.ever_up = true;
    } else {
        t.down_since = sent_real;
    }
    t.state = s;
    std::printf("%s %s %s\n", fmt_epoch(sent_real).c_str(), t.text.c_str(), state_name(s));
    std::fflush(stdout);
}

void finish(Probe &p, std::vector<Target> &targets, bool answered) {
    close(p.fd);
    apply(targets[p.target], p.seq, p.sent_real, answered);
    p.fd = -1;
}

// Errors that mean "no answer" from the network are expected; others (no
// free port, no buffer...) say more about this machine than about the
// target: they count as no answer too, but are reported once each.
void warn_unusual(int err) {
    static std::vector<int> seen;
    switch (err) {
    case 0:
    case ECONNREFUSED:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ETIMEDOUT:
    case EHOSTDOWN:
        return;
    default:
        break;
    }
    if (std::find(seen.begin(), seen.end(), err) != seen.end())
        return;
    seen.push_back(err);
    std::fprintf(stderr, "gapwatch: connect: %s (counted as no answer)\n", std::strerror(err));
}

// Start one probe; a probe that completes at once has its result applied here.
void start_probe(std::vector<Target> &targets, size_t i, int64_t seq, int64_t timeout_ms,
                 std::vector<Probe> &probes) {
    Target &t = targets[i];
    int64_t sent = real_ms();
    int fd = socket(t.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        std::fprintf(stderr, "gapwatch: socket: %s\n", std::strerror(errno));
        apply(t, seq, sent, false);
        return;
    }
    linger lg{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    int rc = connect(fd, reinterpret_cast<sockaddr *>(&t.addr), t.addrlen);
    if (rc == 0 || errno == ECONNREFUSED) {
        close(fd);
        apply(t, seq, sent, true);
        return;
    }
    if (errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        warn_unusual(err);
        apply(t, seq, sent, false);
        return;
    }
    probes.push_back(Probe{fd, i, seq, sent, mono_ms() + timeout_ms});
}

}  // namespace

int main(int argc, char **argv) {
    double interval_ms = 10, timeout_ms = 50, duration_s = -1;
    bool until_up = false;
    std::vector<Target> targets;

    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](double &out) {
            std::string v;
            size_t eq = a.find('=');
            if (eq != std::string::npos) {
                v = a.substr(eq + 1);
            } else {
                if (i + 1 >= argc)
                    usage(("missing value for " + a).c_str());
                v = argv[++i];
            }
            if (!parse_num(v.c_str(), out))
                usage(("bad value for " + a + ": '" + v + "'").c_str());
        };
        auto is = [&](const char *opt) {
            size_t n = std::strlen(opt);
            return a == opt || (a.compare(0, n, opt) == 0 && a.size() > n && a[n] == '=');
        };
        if (is("--interval-ms"))
            value(interval_ms);
        else if (is("--timeout-ms"))
            value(timeout_ms);
        else if (is("--duration"))
            value(duration_s);
        else if (a == "--until-up")
            until_up = true;
        else if (a == "-h" || a == "--help")
            usage(nullptr);
        else if (!a.empty() && a[0] == '-' && a != "-")
            usage(("unknown option " + a).c_str());
        else {
            Target t;
            if (!parse_target(a, t))
                usage(("bad target '" + a + "' (ADDR:PORT or [IPV6]:PORT)").c_str());
            targets.push_back(t);
        }
    }
    if (targets.empty())
        usage("no target");
    if (interval_ms < 1 || timeout_ms < 1)
        usage("--interval-ms and --timeout-ms must be at least 1");

    // Up to timeout/interval + 1 probes in flight per target.
    watch::raise_fd_limit();
    watch::install_stop_signals();

    const int64_t start_mono = mono_ms();
    const int64_t start_real = real_ms();
    const int64_t end_mono = duration_s < 0 ? INT64_MAX : start_mono + int64_t(duration_s * 1000);
    const int64_t interval = int64_t(interval_ms);
    const int64_t timeout = int64_t(timeout_ms);
    int64_t next_tick = start_mono;
    int64_t seq = 0;
    std::vector<Probe> probes;
    std::vector<pollfd> pfds;
    int exit_code = 0;
    bool done = false;

    while (!watch::stop_requested && !done) {
        int64_t now = mono_ms();
        if (now >= end_mono)
            break;
        if (now >= next_tick) {
            for (size_t i = 0; i < targets.size(); ++i)
                start_probe(targets, i, seq, timeout, probes);
            ++seq;
            next_tick += interval;
            if (next_tick <= now)   // fell behind: do not burst
                next_tick = now + interval;
        }

        // Expire probes past their deadline.
        now = mono_ms();
        for (auto &p : probes)
            if (p.fd >= 0 && now >= p.deadline)
                finish(p, targets, false);

        pfds.clear();
        for (auto &p : probes)
            if (p.fd >= 0)
                pfds.push_back(pollfd{p.fd, POLLOUT, 0});

        if (until_up) {
            bool all = true;
            for (auto &t : targets)
                all = all && t.state == State::up;
            if (all) {
                int64_t r = real_ms();
                std::printf("allup %s after=%lld\n", fmt_epoch(r).c_str(),
                            static_cast<long long>(r - start_real));
                done = true;
                break;
            }
        }

        int64_t wake = std::min(next_tick, end_mono);
        for (auto &p : probes)
            if (p.fd >= 0 && p.deadline < wake)
                wake = p.deadline;
        now = mono_ms();
        int wait = wake > now ? int(std::min<int64_t>(wake - now, 1000)) : 0;
        int n = poll(pfds.data(), pfds.size(), wait);
        if (n < 0 && errno != EINTR) {
            std::perror("gapwatch: poll");
            return 1;
        }
        if (n > 0) {
            size_t k = 0;
            for (auto &p : probes) {
                if (p.fd < 0)
                    continue;
                const pollfd &pf = pfds[k++];
                if (pf.revents == 0)
                    continue;
                int err = 0;
                socklen_t len = sizeof err;
                if (getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                    err = errno;
                warn_unusual(err);
                finish(p, targets, err == 0 || err == ECONNREFUSED);
            }
        }
        // Drop finished probes (order kept; it is also the poll order).
        size_t w = 0;
        for (size_t r = 0; r < probes.size(); ++r)
            if (probes[r].fd >= 0)
                probes[w++] = probes[r];
        probes.resize(w);
    }

    for (auto &p : probes)
        if (p.fd >= 0)
            close(p.fd);

    if (done)
        return 0;
    if (until_up)
        exit_code = 1;

    int64_t end_real = real_ms();
    for (auto &t : targets) {
        if (t.ever_up && t.state == State::down) {
            int64_t gap = end_real - t.down_since;
            t.total += gap;
            if (gap > t.longest)
                t.longest = gap;
        }
        std::printf("gap %s longest=%lld total=%lld changes=%ld final=%s\n", t.text.c_str(),
                    static_cast<long long>(t.longest), static_cast<long long>(t.total), t.changes,
                    state_name(t.state));
    }
    if (until_up)
        std::fprintf(stderr, "gapwatch: not every target answered at once before the end\n");
    std::fflush(stdout);
    return exit_code;
}
