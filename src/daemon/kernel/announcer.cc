// ARP probes, gratuitous ARP and unsolicited NA (see announcer.h).

#include "daemon/kernel/announcer.h"
#include "daemon/kernel/arp_frame.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

namespace rais::kernel {
namespace {

std::string mac_text(const std::uint8_t* m) {
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    return buf;
}

}  // namespace

std::unique_ptr<Announcer> Announcer::open(GMainContext* ctx, Log log, std::string* why) {
    std::unique_ptr<Announcer> a(new Announcer(ctx, std::move(log)));
    // Protocol 0: a socket that only sends, so it queues no traffic.
    a->arp_send_.reset(socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!a->arp_send_) {
        *why = "packet socket (needs CAP_NET_RAW): " + errno_text(errno);
        return nullptr;
    }
    a->nd_send_.reset(socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMPV6));
    if (!a->nd_send_) {
        if (errno != EAFNOSUPPORT) {
            *why = "ICMPv6 socket (needs CAP_NET_RAW): " + errno_text(errno);
            return nullptr;
        }
        a->log(LogLevel::Warning, "IPv6 is not available: no neighbour advertisements");
    } else {
        int fd = a->nd_send_.get();
        icmp6_filter filter;
        ICMP6_FILTER_SETBLOCKALL(&filter);  // we only send
        setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter);
        int hops = 255, loop = 0;  // RFC 4861: ND messages carry hop limit 255
        setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops);
        setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof hops);
        setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &loop, sizeof loop);
    }
    return a;
}

LinkInfo Announcer::link(const std::string& nic) const {
    LinkInfo li;
    ifreq ifr{};
    if (nic.empty() || nic.size() >= sizeof ifr.ifr_name) return li;
    std::memcpy(ifr.ifr_name, nic.data(), nic.size());
    if (ioctl(arp_send_.get(), SIOCGIFFLAGS, &ifr) < 0 || (ifr.ifr_flags & IFF_NOARP)) return li;
    if (ioctl(arp_send_.get(), SIOCGIFHWADDR, &ifr) < 0 || ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) return li;
    std::memcpy(li.mac.data(), ifr.ifr_hwaddr.sa_data, 6);
    li.arp = true;
    return li;
}

namespace {

bool must_wait(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS; }

}  // namespace

Announcer::ProbeStatus Announcer::probe(const ServiceAddress& addr, int ifindex, const std::string& nic,
                                        const LinkInfo& link, Answered answered, std::function<void()> sent) {
    if (probes_.count(addr)) stop_probe(addr);  // a new probe replaces the old one, backlog included
    if (!arp_recv_) {
        arp_recv_.reset(socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ARP)));
        if (!arp_recv_) {
            log(LogLevel::Warning, addr.str() + ": no ARP probe (packet socket: " + errno_text(errno) + ")");
            return ProbeStatus::Failed;
        }
        arp_watch_ = fd_watch(ctx_, arp_recv_.get(), on_arp_ready, this);
    }
    probes_[addr] = Probe{ifindex, link, std::move(answered), std::move(sent)};
    Pending p{addr, ifindex, nic, link, true};
    if (backlog_.empty()) {
        int err = send_pending(p);
        if (err == 0) {
            probes_[addr].sent = nullptr;
            return ProbeStatus::Sent;
        }
        if (!must_wait(err)) {
            stop_probe(addr);
            return ProbeStatus::Failed;
        }
    }
    queue(std::move(p));
    return ProbeStatus::Queued;
}

void Announcer::stop_probe(const ServiceAddress& addr) {
    if (probes_.erase(addr) && !backlog_.empty())
        backlog_.erase(std::remove_if(backlog_.begin(), backlog_.end(),
                                      [&](const Pending& a) { return a.probe && a.addr == addr; }),
                       backlog_.end());
    if (probes_.empty()) {
        arp_watch_.reset();
        arp_recv_.reset();
    }
}

gboolean Announcer::on_arp_ready(gint, GIOCondition, gpointer p) {
    static_cast<Announcer*>(p)->read_arp();
    return G_SOURCE_CONTINUE;
}

void Announcer::read_arp() {
    for (int i = 0; i < 256 && arp_recv_; ++i) {
        std::uint8_t pkt[64];
        sockaddr_ll from{};
        socklen_t fromlen = sizeof from;
        ssize_t n = recvfrom(arp_recv_.get(), pkt, sizeof pkt, 0, reinterpret_cast<sockaddr*>(&from), &fromlen);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (n < 28 || from.sll_pkttype == PACKET_OUTGOING) continue;
        // hrd Ethernet, pro IPv4, hln 6, pln 4
        if (pkt[0] != 0 || pkt[1] != 1 || pkt[2] != 0x08 || pkt[3] != 0 || pkt[4] != 6 || pkt[5] != 4) continue;
        const std::uint8_t* sha = pkt + 8;
        const std::uint8_t* spa = pkt + 14;
        for (auto& [addr, p] : probes_) {
            if (p.ifindex != from.sll_ifindex || std::memcmp(spa, addr.bytes(), 4) != 0 ||
                std::memcmp(sha, p.link.mac.data(), 6) == 0)
                continue;
            Answered answered = std::move(p.answered);
            stop_probe(ServiceAddress(addr));  // invalidates p and addr
            if (answered) answered(mac_text(sha));
            break;  // probes_ changed
        }
    }
}

bool Announcer::send_arp(int ifindex, const LinkInfo& link, const std::uint8_t* spa, const std::uint8_t* tpa,
                         std::string* why) {
    const auto pkt = arp_request_frame(link.mac.data(), spa, tpa);
    const sockaddr_ll to = arp_broadcast(ifindex);
    if (sendto(arp_send_.get(), pkt.data(), pkt.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) < 0) {
        send_errno_ = errno;
        *why = errno_text(send_errno_);
        return false;
    }
    return true;
}

bool Announcer::send_na(const ServiceAddress& addr, int ifindex, const LinkInfo& link, std::string* why) {
    if (!nd_send_) {
        send_errno_ = EAFNOSUPPORT;
        *why = "no ICMPv6 socket";
        return false;
    }
    // Type 136, override flag, target, target link-layer address option.
    std::uint8_t pkt[32] = {ND_NEIGHBOR_ADVERT, 0, 0, 0, 0x20, 0, 0, 0};
    std::memcpy(pkt + 8, addr.bytes(), 16);
    pkt[24] = ND_OPT_TARGET_LINKADDR;
    pkt[25] = 1;  // in units of 8 bytes
    std::memcpy(pkt + 26, link.mac.data(), 6);
    sockaddr_in6 to{};
    to.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);
    to.sin6_scope_id = static_cast<std::uint32_t>(ifindex);
    iovec iov{pkt, sizeof pkt};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
    msghdr msg{};
    msg.msg_name = &to;
    msg.msg_namelen = sizeof to;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
    in6_pktinfo info{};
    std::memcpy(&info.ipi6_addr, addr.bytes(), 16);  // from the address itself
    info.ipi6_ifindex = static_cast<unsigned>(ifindex);
    std::memcpy(CMSG_DATA(c), &info, sizeof info);
    if (sendmsg(nd_send_.get(), &msg, 0) < 0) {
        send_errno_ = errno;
        *why = errno_text(send_errno_);
        return false;
    }
    return true;
}

void Announcer::announce(const ServiceAddress& addr, int ifindex, const std::string& nic, const LinkInfo& link) {
    Pending a{addr, ifindex, nic, link, false};
    if (backlog_.empty() && !must_wait(send_pending(a))) return;
    queue(std::move(a));
}

void Announcer::queue(Pending a) {
    if (backlog_.size() >= kBacklogLimit && !a.probe) {
        // Announcements repeat: one that finds the backlog full is dropped
        // (probes are bounded by the addresses being acquired).
        log(LogLevel::Warning, "announcement backlog full: the one for " + a.addr.ip() + " is dropped");
        return;
    }
    backlog_.push_back(std::move(a));
    if (!retry_) retry_ = timeout(ctx_, 1, on_retry, this);
}

int Announcer::send_pending(const Pending& a) {
    static const std::uint8_t zero[4] = {0, 0, 0, 0};
    std::string why;
    bool ok = a.probe ? send_arp(a.ifindex, a.link, zero, a.addr.bytes(), &why)
              : a.addr.family() == Family::V4
                  ? send_arp(a.ifindex, a.link, a.addr.bytes(), a.addr.bytes(), &why)
                  : send_na(a.addr, a.ifindex, a.link, &why);
    if (ok) return 0;
    int err = send_errno_ ? send_errno_ : EIO;
    if (must_wait(err)) return err;
    if (a.probe)
        log(LogLevel::Warning, a.addr.str() + ": ARP probe not sent on " + a.nic + " (" + why + "); plumbing anyway");
    else
        log(LogLevel::Warning, "cannot announce " + a.addr.ip() + " on " + a.nic + ": " + why);
    return err;
}

void Announcer::forget(const ServiceAddress& addr) {
    backlog_.erase(std::remove_if(backlog_.begin(), backlog_.end(), [&](const Pending& a) { return a.addr == addr; }),
                   backlog_.end());
}

gboolean Announcer::on_retry(gpointer p) {
    auto* self = static_cast<Announcer*>(p);
    self->retry_.reset();  // destroys this source inside its dispatch, which GLib allows
    self->flush_backlog();
    return G_SOURCE_REMOVE;
}

void Announcer::flush_backlog() {
    while (!backlog_.empty()) {
        int err = send_pending(backlog_.front());
        if (must_wait(err)) {
            retry_ = timeout(ctx_, 1, on_retry, this);
            return;
        }
        Pending done = std::move(backlog_.front());
        backlog_.pop_front();
        if (!done.probe) continue;
        auto it = probes_.find(done.addr);
        // A probe that could not go out at all (logged) is not reported
        // sent: its owner's window still runs out, so nothing is plumbed
        // sooner than if it had gone out.
        if (it == probes_.end() || err) continue;
        auto sent = std::move(it->second.sent);
        it->second.sent = nullptr;
        if (sent) sent();  // may stop or start probes: the backlog is read afresh next turn
    }
}

}  // namespace rais::kernel
