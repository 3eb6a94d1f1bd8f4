// What the cluster tests' client-side watchers (gapwatch, arpwatch) share:
// clocks in milliseconds, the epoch stamp of their output, a stop flag set
// by SIGTERM/SIGINT, the file-descriptor limit raised for many probes in
// flight, checked numbers on the command line, and a socket address from
// an address text. Header-only: each watcher is one small program.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace watch {

// Set by SIGTERM or SIGINT: the watcher closes its last round and prints
// its summary instead of dying with it unsaid.
inline volatile sig_atomic_t stop_requested = 0;

inline void install_stop_signals() {
    struct sigaction sa {};
    sa.sa_handler = [](int) { stop_requested = 1; };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
}

// Probes overlap (several connects per target in flight): use the hard limit.
inline void raise_fd_limit() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

inline int64_t clock_ms(clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}
inline int64_t mono_ms() { return clock_ms(CLOCK_MONOTONIC); }
inline int64_t real_ms() { return clock_ms(CLOCK_REALTIME); }

// <epoch seconds>.<ms>: the stamp tests compare with raisd's logs.
inline std::string fmt_epoch(int64_t ms) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%lld.%03lld", static_cast<long long>(ms / 1000),
                  static_cast<long long>(ms % 1000));
    return buf;
}

// A whole, non-negative number and nothing after it.
inline bool parse_num(const char* s, double& out) {
    char* end = nullptr;
    errno = 0;
    out = std::strtod(s, &end);
    return errno == 0 && end != s && *end == '\0' && out >= 0;
}

// HOST (an IPv4 or IPv6 address, no name lookup) and PORT as a socket
// address; false when HOST is not an address.
inline bool socket_address(const std::string& host, int port, sockaddr_storage& out, socklen_t& len) {
    std::memset(&out, 0, sizeof out);
    auto* a4 = reinterpret_cast<sockaddr_in*>(&out);
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&out);
    if (inet_pton(AF_INET, host.c_str(), &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(static_cast<uint16_t>(port));
        len = sizeof *a4;
        return true;
    }
    if (inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(static_cast<uint16_t>(port));
        len = sizeof *a6;
        return true;
    }
    return false;
}

}  // namespace watch
