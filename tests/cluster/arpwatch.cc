// arpwatch — who answers for each service address, seen from the client
// namespace of the cluster testbed; the watcher of tests/cluster/chaos.
//
//   arpwatch [--interval-ms 50] [--iface eth0] [--port 9] [--duration S] ADDR...
//
// Every interval (a "round") it sends, for each IPv4 address, an ARP request
// from the interface's own address and MAC, for each IPv6 address a
// Neighbor Solicitation to its solicited-node group, and starts a TCP
// connect to ADDR:PORT (nothing listens there: a RST proves some host owns
// the address). What arrives until the next round belongs to this round:
// the MACs of the ARP replies (sender hardware address) and of the
// solicited Neighbor Advertisements (target link-layer address option) for
// the address, and whether the connect was answered. Gratuitous ARPs and
// unsolicited NAs (the holders' announcements) are not answers: only a
// reply to our own request says who answers now.
//
// Two MACs answering in one round means two hosts hold the address. Output,
// stamped with the send time of the round that showed it (epoch.ms):
//
//   start <epoch.ms> interval=<ms> mac=<our MAC>
//   <epoch.ms> <addr> arp <mac[,mac...]|none>     the answering set changed
//   <epoch.ms> <addr> tcp up|down                 the connect result changed
//
// and at exit (SIGTERM, SIGINT or the end of --duration), per address:
//
//   summary <addr> rounds=N two_rounds=N two_longest_ms=N none_longest_ms=N
//           none_longest_at=<epoch.ms> tcp_down_longest_ms=N final=<set|none>
//           final_for_ms=N macs_seen=<mac,...>
//
// "none" runs count only after the address first answered (an address that
// appears after the start is not unanswered before); a run still open at
// exit counts up to the exit. final is the set of the last complete round;
// final_for_ms how long that set had been unchanged. Exit 2: bad usage, 1:
// the interface or a socket could not be set up, 0 otherwise.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netpacket/packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "cluster/watch_common.h"
#include "daemon/kernel/arp_frame.h"

namespace {

using watch::fmt_epoch;
using watch::mono_ms;
using watch::parse_num;
using watch::real_ms;

using Mac = std::array<uint8_t, 6>;

std::string mac_text(const Mac &m) {
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    return buf;
}

std::string set_text(const std::set<Mac> &s) {
    if (s.empty())
        return "none";
    std::string out;
    for (const auto &m : s)
        out += (out.empty() ? "" : ",") + mac_text(m);
    return out;
}

// RAII for the sockets this program owns.
struct Fd {
    int fd = -1;
    Fd() = default;
    explicit Fd(int f) : fd(f) {}
    Fd(const Fd &) = delete;
    Fd &operator=(const Fd &) = delete;
    Fd(Fd &&o) noexcept : fd(o.fd) { o.fd = -1; }
    Fd &operator=(Fd &&o) noexcept {
        if (this != &o) {
            reset();
            fd = o.fd;
            o.fd = -1;
        }
        return *this;
    }
    ~Fd() { reset(); }
    void reset() {
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    explicit operator bool() const { return fd >= 0; }
};

struct Target {
    std::string text;
    int family = AF_INET;
    std::array<uint8_t, 16> ip{};
    sockaddr_storage tcp{};
    socklen_t tcplen = 0;

    // This round.
    std::set<Mac> answered;
    Fd conn;
    bool tcp_answered = false;

    // History.
    bool started = false;            // at least one round closed
    std::set<Mac> last;              // set of the last closed round
    int64_t last_since = 0;          // round time when `last` began
    std::set<Mac> seen;
    long rounds = 0, two_rounds = 0;
    int64_t two_since = -1, two_longest = 0;
    bool ever_answered = false;
    int64_t none_since = -1, none_longest = 0, none_longest_at = 0;
    int tcp_state = -1;              // -1 unknown, 0 down, 1 up
    bool tcp_ever_up = false;
    int64_t tcp_down_since = -1, tcp_down_longest = 0;
};

[[noreturn]] void usage(const char *msg) {
    if (msg)
        std::fprintf(stderr, "arpwatch: %s\n", msg);
    std::fprintf(stderr, "usage: arpwatch [--interval-ms 50] [--iface eth0] [--port 9] [--duration S] ADDR...\n");
    std::exit(2);
}

[[noreturn]] void die(const std::string &what) {
    std::fprintf(stderr, "arpwatch: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(1);
}

bool parse_target(const std::string &s, int port, Target &t) {
    t.text = s;
    if (!watch::socket_address(s, port, t.tcp, t.tcplen))
        return false;
    t.family = t.tcp.ss_family;
    if (t.family == AF_INET)
        std::memcpy(t.ip.data(), &reinterpret_cast<const sockaddr_in *>(&t.tcp)->sin_addr, 4);
    else
        std::memcpy(t.ip.data(), &reinterpret_cast<const sockaddr_in6 *>(&t.tcp)->sin6_addr, 16);
    return true;
}

struct Link {
    int ifindex = 0;
    Mac mac{};
    uint8_t ip4[4] = {};
};

Link link_of(const std::string &iface) {
    Link l;
    Fd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!s)
        die("socket");
    ifreq ifr{};
    if (iface.size() >= sizeof ifr.ifr_name)
        usage("interface name too long");
    std::strncpy(ifr.ifr_name, iface.c_str(), sizeof ifr.ifr_name - 1);
    if (ioctl(s.fd, SIOCGIFINDEX, &ifr) < 0)
        die("interface " + iface);
    l.ifindex = ifr.ifr_ifindex;
    if (ioctl(s.fd, SIOCGIFHWADDR, &ifr) < 0)
        die("MAC of " + iface);
    std::memcpy(l.mac.data(), ifr.ifr_hwaddr.sa_data, 6);
    if (ioctl(s.fd, SIOCGIFADDR, &ifr) < 0)
        die("IPv4 address of " + iface);
    std::memcpy(l.ip4, &reinterpret_cast<sockaddr_in *>(&ifr.ifr_addr)->sin_addr, 4);
    return l;
}

void send_arp(int fd, const Link &l, const Target &t) {
    const auto pkt = rais::arp_request_frame(l.mac.data(), l.ip4, t.ip.data());
    const sockaddr_ll to = rais::arp_broadcast(l.ifindex);
    sendto(fd, pkt.data(), pkt.size(), 0, reinterpret_cast<const sockaddr *>(&to), sizeof to);
}

void send_ns(int fd, const Link &l, const Target &t) {
    // Type 135, target, source link-layer address option.
    uint8_t pkt[32] = {ND_NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(pkt + 8, t.ip.data(), 16);
    pkt[24] = ND_OPT_SOURCE_LINKADDR;
    pkt[25] = 1;
    std::memcpy(pkt + 26, l.mac.data(), 6);
    sockaddr_in6 to{};
    to.sin6_family = AF_INET6;
    uint8_t *d = to.sin6_addr.s6_addr;   // ff02::1:ffXX:XXXX
    d[0] = 0xff;
    d[1] = 0x02;
    d[11] = 0x01;
    d[12] = 0xff;
    d[13] = t.ip[13];
    d[14] = t.ip[14];
    d[15] = t.ip[15];
    to.sin6_scope_id = static_cast<uint32_t>(l.ifindex);
    sendto(fd, pkt, sizeof pkt, 0, reinterpret_cast<sockaddr *>(&to), sizeof to);
}

void start_connect(Target &t) {
    t.conn.reset();
    t.tcp_answered = false;
    Fd fd(socket(t.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd)
        return;
    linger lg{1, 0};   // a timed-out probe leaves no TIME_WAIT
    setsockopt(fd.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    int rc = connect(fd.fd, reinterpret_cast<sockaddr *>(&t.tcp), t.tcplen);
    if (rc == 0 || errno == ECONNREFUSED) {
        t.tcp_answered = true;
        return;
    }
    if (errno == EINPROGRESS)
        t.conn = std::move(fd);
}

void read_arp(int fd, const Link &l, std::vector<Target> &targets) {
    for (int i = 0; i < 4096; ++i) {
        uint8_t pkt[64];
        sockaddr_ll from{};
        socklen_t fromlen = sizeof from;
        ssize_t n = recvfrom(fd, pkt, sizeof pkt, 0, reinterpret_cast<sockaddr *>(&from), &fromlen);
        if (n < 0)
            return;
        if (n < 28 || from.sll_pkttype == PACKET_OUTGOING)
            continue;
        if (pkt[0] != 0 || pkt[1] != 1 || pkt[2] != 0x08 || pkt[3] != 0 || pkt[4] != 6 || pkt[5] != 4)
            continue;
        // Only replies to us: announcements (requests, or replies to
        // broadcast) say who claims, not who answers now.
        if (pkt[6] != 0 || pkt[7] != 2 || std::memcmp(pkt + 24, l.ip4, 4) != 0 ||
            std::memcmp(pkt + 18, l.mac.data(), 6) != 0)
            continue;
        Mac m;
        std::memcpy(m.data(), pkt + 8, 6);
        for (auto &t : targets)
            if (t.family == AF_INET && std::memcmp(t.ip.data(), pkt + 14, 4) == 0)
                t.answered.insert(m);
    }
}

void read_na(int fd, std::vector<Target> &targets) {
    for (int i = 0; i < 4096; ++i) {
        uint8_t pkt[256];
        ssize_t n = recv(fd, pkt, sizeof pkt, 0);
        if (n < 0)
            return;
        // Solicited flag set: an answer to a solicitation (ours or, rarely,
        // the kernel's own); unsolicited NAs are announcements.
        if (n < 24 || pkt[0] != ND_NEIGHBOR_ADVERT || !(pkt[4] & 0x40))
            continue;
        const uint8_t *target = pkt + 8;
        bool have = false;
        Mac m{};
        for (ssize_t off = 24; off + 8 <= n;) {
            size_t len = size_t(pkt[off + 1]) * 8;
            if (len == 0 || off + ssize_t(len) > n)
                break;
            if (pkt[off] == ND_OPT_TARGET_LINKADDR && len >= 8) {
                std::memcpy(m.data(), pkt + off + 2, 6);
                have = true;
            }
            off += ssize_t(len);
        }
        if (!have)
            continue;   // cannot tell who: every NA to a multicast NS carries it
        for (auto &t : targets)
            if (t.family == AF_INET6 && std::memcmp(t.ip.data(), target, 16) == 0)
                t.answered.insert(m);
    }
}

// Close the round that started at `when` (real ms) and lasted until `next`.
void close_round(Target &t, int64_t when) {
    if (t.conn) {
        int err = 0;
        socklen_t len = sizeof err;
        pollfd p{t.conn.fd, POLLOUT, 0};
        if (poll(&p, 1, 0) == 1 && getsockopt(t.conn.fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
            (err == 0 || err == ECONNREFUSED))
            t.tcp_answered = true;
        t.conn.reset();
    }
    ++t.rounds;
    const std::set<Mac> &now = t.answered;
    for (const auto &m : now)
        t.seen.insert(m);
    if (!t.started || now != t.last) {
        std::printf("%s %s arp %s\n", fmt_epoch(when).c_str(), t.text.c_str(), set_text(now).c_str());
        t.last_since = when;
    }
    if (now.size() >= 2) {
        ++t.two_rounds;
        if (t.two_since < 0)
            t.two_since = when;
    } else if (t.two_since >= 0) {
        t.two_longest = std::max(t.two_longest, when - t.two_since);
        t.two_since = -1;
    }
    if (now.empty()) {
        if (t.ever_answered && t.none_since < 0)
            t.none_since = when;
    } else {
        if (t.none_since >= 0 && when - t.none_since > t.none_longest) {
            t.none_longest = when - t.none_since;
            t.none_longest_at = t.none_since;
        }
        t.none_since = -1;
        t.ever_answered = true;
    }
    int tcp = t.tcp_answered ? 1 : 0;
    if (tcp != t.tcp_state) {
        std::printf("%s %s tcp %s\n", fmt_epoch(when).c_str(), t.text.c_str(), tcp ? "up" : "down");
        if (tcp == 1 && t.tcp_down_since >= 0)
            t.tcp_down_longest = std::max(t.tcp_down_longest, when - t.tcp_down_since);
        t.tcp_down_since = tcp == 0 && t.tcp_ever_up ? when : -1;
        t.tcp_state = tcp;
    }
    if (tcp)
        t.tcp_ever_up = true;
    t.last = now;
    t.started = true;
    t.answered.clear();
}

}  // namespace

int main(int argc, char **argv) {
    double interval_ms = 50, duration_s = -1, port_d = 9;
    std::string iface = "eth0";
    std::vector<std::string> addrs;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc)
                usage(("missing value for " + a).c_str());
            return argv[++i];
        };
        auto num = [&](double &out) {
            std::string v = next();
            if (!parse_num(v.c_str(), out))
                usage(("bad value for " + a + ": '" + v + "'").c_str());
        };
        if (a == "--interval-ms")
            num(interval_ms);
        else if (a == "--duration")
            num(duration_s);
        else if (a == "--port")
            num(port_d);
        else if (a == "--iface")
            iface = next();
        else if (a == "-h" || a == "--help")
            usage(nullptr);
        else if (!a.empty() && a[0] == '-')
            usage(("unknown option " + a).c_str());
        else
            addrs.push_back(a);
    }
    if (addrs.empty())
        usage("no address");
    if (interval_ms < 5)
        usage("--interval-ms must be at least 5");
    if (port_d < 1 || port_d > 65535)
        usage("--port must be 1..65535");
    std::vector<Target> targets(addrs.size());
    for (size_t i = 0; i < addrs.size(); ++i)
        if (!parse_target(addrs[i], int(port_d), targets[i]))
            usage(("bad address '" + addrs[i] + "'").c_str());

    watch::raise_fd_limit();
    watch::install_stop_signals();

    Link link = link_of(iface);
    Fd arp(socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ARP)));
    if (!arp)
        die("packet socket");
    sockaddr_ll bind_to{};
    bind_to.sll_family = AF_PACKET;
    bind_to.sll_protocol = htons(ETH_P_ARP);
    bind_to.sll_ifindex = link.ifindex;
    if (bind(arp.fd, reinterpret_cast<sockaddr *>(&bind_to), sizeof bind_to) < 0)
        die("bind packet socket");
    Fd nd(socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMPV6));
    if (!nd)
        die("ICMPv6 socket");
    int hops = 255;   // RFC 4861: ND with another hop limit is dropped
    setsockopt(nd.fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops);
    setsockopt(nd.fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof hops);
    int loop = 0;
    setsockopt(nd.fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &loop, sizeof loop);
    icmp6_filter filter;
    ICMP6_FILTER_SETBLOCKALL(&filter);
    ICMP6_FILTER_SETPASS(ND_NEIGHBOR_ADVERT, &filter);
    setsockopt(nd.fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter);
    if (setsockopt(nd.fd, SOL_SOCKET, SO_BINDTODEVICE, iface.c_str(), socklen_t(iface.size())) < 0)
        die("bind ICMPv6 socket to " + iface);

    const int64_t interval = int64_t(interval_ms);
    const int64_t start_mono = mono_ms();
    const int64_t end_mono = duration_s < 0 ? INT64_MAX : start_mono + int64_t(duration_s * 1000);
    std::printf("start %s interval=%lld mac=%s\n", fmt_epoch(real_ms()).c_str(), static_cast<long long>(interval),
                mac_text(link.mac).c_str());
    std::fflush(stdout);

    int64_t next_tick = start_mono;
    int64_t round_real = -1;   // send time of the open round
    std::vector<pollfd> pfds;
    while (!watch::stop_requested) {
        int64_t now = mono_ms();
        if (now >= next_tick || now >= end_mono) {
            int64_t r = real_ms();
            if (round_real >= 0) {
                read_arp(arp.fd, link, targets);
                read_na(nd.fd, targets);
                for (auto &t : targets)
                    close_round(t, round_real);
                std::fflush(stdout);
            }
            if (now >= end_mono)
                break;
            round_real = r;
            for (auto &t : targets) {
                if (t.family == AF_INET)
                    send_arp(arp.fd, link, t);
                else
                    send_ns(nd.fd, link, t);
                start_connect(t);
            }
            next_tick += interval;
            if (next_tick <= now)   // fell behind (a loaded machine): do not burst
                next_tick = now + interval;
        }
        pfds.clear();
        pfds.push_back(pollfd{arp.fd, POLLIN, 0});
        pfds.push_back(pollfd{nd.fd, POLLIN, 0});
        for (auto &t : targets)
            if (t.conn)
                pfds.push_back(pollfd{t.conn.fd, POLLOUT, 0});
        now = mono_ms();
        int64_t wake = std::min(next_tick, end_mono);
        int wait = wake > now ? int(std::min<int64_t>(wake - now, 1000)) : 0;
        int n = poll(pfds.data(), pfds.size(), wait);
        if (n < 0 && errno != EINTR)
            die("poll");
        if (n <= 0)
            continue;
        if (pfds[0].revents)
            read_arp(arp.fd, link, targets);
        if (pfds[1].revents)
            read_na(nd.fd, targets);
        size_t k = 2;
        for (auto &t : targets) {
            if (!t.conn)
                continue;
            const pollfd &p = pfds[k++];
            if (p.revents == 0)
                continue;
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(t.conn.fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && (err == 0 || err == ECONNREFUSED))
                t.tcp_answered = true;
            t.conn.reset();
        }
    }

    int64_t end_real = real_ms();
    for (auto &t : targets) {
        if (t.two_since >= 0)
            t.two_longest = std::max(t.two_longest, end_real - t.two_since);
        if (t.none_since >= 0 && end_real - t.none_since > t.none_longest) {
            t.none_longest = end_real - t.none_since;
            t.none_longest_at = t.none_since;
        }
        if (t.tcp_down_since >= 0)
            t.tcp_down_longest = std::max(t.tcp_down_longest, end_real - t.tcp_down_since);
        std::printf("summary %s rounds=%ld two_rounds=%ld two_longest_ms=%lld none_longest_ms=%lld "
                    "none_longest_at=%s tcp_down_longest_ms=%lld final=%s final_for_ms=%lld macs_seen=%s\n",
                    t.text.c_str(), t.rounds, t.two_rounds, static_cast<long long>(t.two_longest),
                    static_cast<long long>(t.none_longest), fmt_epoch(t.none_longest_at).c_str(),
                    static_cast<long long>(t.tcp_down_longest), set_text(t.last).c_str(),
                    static_cast<long long>(t.started ? end_real - t.last_since : 0), set_text(t.seen).c_str());
    }
    std::fflush(stdout);
    return 0;
}
