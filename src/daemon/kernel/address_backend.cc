// The netlink address backend (see address_backend.h for the sequence of an
// acquire). Everything runs on the GMainContext that was thread-default when
// the backend was created; nothing here sleeps or waits on the network.
//
// Shape of the code: one Entry per service address with an operation in
// flight or held. An Entry moves through Phase values; each asynchronous
// step (netlink ACK, ARP probe window, DAD, hook, timers) carries the
// Entry's operation number, so an answer that arrives after the operation
// was superseded is recognised and dropped. Callbacks to the owner are
// posted and delivered from an idle source, never from inside our own
// handlers, so the owner may call back into the backend (or destroy it)
// from a callback.

#include "daemon/kernel/address_backend.h"

#include "core/text.h"
#include "daemon/child_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "core/glib_ptr.h"

namespace rais {
namespace {

constexpr int kDebug = 0, kInfo = 1, kNotice = 2, kWarning = 3, kError = 4;

// IPaddr2 sends 5 announcements 200 ms apart; the first goes out at once.
constexpr unsigned kAnnounceRepeats = 4;
constexpr unsigned kAnnounceGapMs = 200;
// DAD takes up to rtr_solicit_delay (1 s) + dad_transmits x retrans (1 s).
constexpr unsigned kDadLimitMs = 3000;
// Bound on a synchronous dump. rtnetlink answers a request in the sender's
// context, so the data is queued before sendto returns; this only guards
// against a kernel that does otherwise.
constexpr int kDumpWaitMs = 1000;
constexpr std::size_t kNlBufferSize = 32768;  // >= the largest dump skb
constexpr std::size_t kBatchLimit = 16384;    // bytes of requests per sendto
constexpr std::uint32_t kInfiniteLifetime = 0xFFFFFFFFu;

std::string errno_text(int err) { return g_strerror(err); }

std::string seconds_text(double s) { return format_number("%g", s); }

// An owned file descriptor.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) reset(std::exchange(o.fd_, -1));
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    void reset(int fd = -1) {
        if (fd_ >= 0) close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

struct MnlDeleter {
    void operator()(mnl_socket* s) const { mnl_socket_close(s); }
};
using MnlPtr = std::unique_ptr<mnl_socket, MnlDeleter>;

// A source attached to our context; destroying the pointer detaches it, so
// no callback can outlive the object that owns the pointer.
struct SourceDeleter {
    void operator()(GSource* s) const {
        g_source_destroy(s);
        g_source_unref(s);
    }
};
using SourcePtr = std::unique_ptr<GSource, SourceDeleter>;

struct ContextDeleter {
    void operator()(GMainContext* c) const { g_main_context_unref(c); }
};
using ContextPtr = std::unique_ptr<GMainContext, ContextDeleter>;

// One address as an RTM_NEWADDR/RTM_DELADDR message or dump line shows it.
struct AddrRecord {
    int ifindex = 0;
    ServiceAddress addr;  // with the prefix length on the interface
    std::uint32_t flags = 0;
    std::uint32_t valid = kInfiniteLifetime;  // seconds left
    std::uint64_t gen = 0;                    // mirror generation it arrived in
};

// A change the monitor saw, handled after the mirror took it in.
struct MonEvent {
    bool add = true;
    bool resync = false;  // events were lost; compare everything
    AddrRecord rec;
    std::uint32_t portid = 0;
};

bool covers(const ServiceAddress& net, const ServiceAddress& a) {
    if (net.family() != a.family()) return false;
    unsigned bits = net.prefix();
    const std::uint8_t* x = net.bytes();
    const std::uint8_t* y = a.bytes();
    for (unsigned i = 0; i < bits / 8; ++i)
        if (x[i] != y[i]) return false;
    unsigned rest = bits % 8;
    if (rest == 0) return true;
    std::uint8_t mask = static_cast<std::uint8_t>(0xFFu << (8 - rest));
    return (x[bits / 8] & mask) == (y[bits / 8] & mask);
}

std::uint32_t lifetime_secs(double s) {
    if (!(s > 1)) return 1;  // also NaN
    if (s >= static_cast<double>(kInfiniteLifetime - 1)) return kInfiniteLifetime - 1;
    return static_cast<std::uint32_t>(std::ceil(s));
}

std::string mac_text(const std::uint8_t* m) {
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    return buf;
}

std::string ifname(int ifindex) {
    char buf[IF_NAMESIZE] = {0};
    if (ifindex <= 0 || !if_indextoname(static_cast<unsigned>(ifindex), buf)) return {};
    return buf;
}

// The administrator's: configured without a lifetime. Ours always have one.
bool is_permanent(const AddrRecord& r) { return (r.flags & IFA_F_PERMANENT) != 0; }

std::optional<AddrRecord> parse_addr(const nlmsghdr* nlh) {
    if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(ifaddrmsg))) return std::nullopt;
    const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
    std::size_t len;
    if (ifa->ifa_family == AF_INET) {
        len = 4;
    } else if (ifa->ifa_family == AF_INET6) {
        len = 16;
    } else {
        return std::nullopt;
    }
    std::array<const nlattr*, IFA_MAX + 1> tb{};
    auto collect = [](const nlattr* attr, void* data) -> int {
        auto* t = static_cast<std::array<const nlattr*, IFA_MAX + 1>*>(data);
        if (mnl_attr_type_valid(attr, IFA_MAX) > 0) (*t)[mnl_attr_get_type(attr)] = attr;
        return MNL_CB_OK;
    };
    if (mnl_attr_parse(nlh, sizeof(ifaddrmsg), collect, &tb) < 0) return std::nullopt;
    // IFA_LOCAL is the local end of a point-to-point address; otherwise
    // IFA_ADDRESS is the address itself.
    const nlattr* a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
    if (!a || mnl_attr_get_payload_len(a) != len) return std::nullopt;
    auto sa = ServiceAddress::from_bytes(static_cast<const std::uint8_t*>(mnl_attr_get_payload(a)), len,
                                         ifa->ifa_prefixlen);
    if (!sa) return std::nullopt;
    AddrRecord r;
    r.ifindex = static_cast<int>(ifa->ifa_index);
    r.addr = *sa;
    r.flags = ifa->ifa_flags;
    if (tb[IFA_FLAGS] && mnl_attr_get_payload_len(tb[IFA_FLAGS]) == sizeof(std::uint32_t))
        r.flags = mnl_attr_get_u32(tb[IFA_FLAGS]);
    if (tb[IFA_CACHEINFO] && mnl_attr_get_payload_len(tb[IFA_CACHEINFO]) >= sizeof(ifa_cacheinfo)) {
        ifa_cacheinfo ci;
        std::memcpy(&ci, mnl_attr_get_payload(tb[IFA_CACHEINFO]), sizeof ci);
        r.valid = ci.ifa_valid;
    }
    return r;
}

// errno and the kernel's extended-ACK text of an NLMSG_ERROR.
std::pair<int, std::string> parse_error(const nlmsghdr* nlh) {
    if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(nlmsgerr))) return {EPROTO, "truncated netlink error"};
    const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
    int err = -e->error;
    std::string text;
    if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
        std::size_t off = sizeof(nlmsgerr);
        if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - sizeof(nlmsghdr);
        if (mnl_nlmsg_size(MNL_ALIGN(off)) <= nlh->nlmsg_len) {
            auto collect = [](const nlattr* attr, void* data) -> int {
                if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
                    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
                    *static_cast<std::string*>(data) = mnl_attr_get_str(attr);
                return MNL_CB_OK;
            };
            mnl_attr_parse(nlh, static_cast<unsigned>(off), collect, &text);
        }
    }
    return {err, text};
}

std::string nl_error_text(int err, const std::string& ext) {
    std::string s = errno_text(err);
    if (!ext.empty()) s += " (" + ext + ")";
    return s;
}

// Builds an RTM_NEWADDR/RTM_DELADDR request for `a` on `ifindex` in buf.
nlmsghdr* build_addr_msg(char* buf, std::uint16_t type, std::uint16_t flags, std::uint32_t seq,
                         const ServiceAddress& a, int ifindex, std::optional<std::uint32_t> lifetime) {
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | flags);
    nlh->nlmsg_seq = seq;
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = a.family() == Family::V4 ? AF_INET : AF_INET6;
    ifa->ifa_prefixlen = static_cast<std::uint8_t>(a.prefix());
    ifa->ifa_flags = 0;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = static_cast<unsigned>(ifindex);
    auto len = static_cast<std::uint16_t>(a.size());
    mnl_attr_put(nlh, IFA_LOCAL, len, a.bytes());
    // An IPv4 delete that names IFA_ADDRESS must also match the prefix; with
    // IFA_LOCAL alone it removes the first address with that IP whatever its
    // mask, which may be the administrator's 198.18.0.5/16 next to our
    // 198.18.0.5/24. Every delete here names a prefix read from the kernel.
    mnl_attr_put(nlh, IFA_ADDRESS, len, a.bytes());
    if (type == RTM_NEWADDR && a.family() == Family::V4 && a.prefix() <= 30) {
        std::uint32_t ip;
        std::memcpy(&ip, a.bytes(), 4);
        std::uint32_t mask = htonl(0xFFFFFFFFu << (32 - a.prefix()));
        std::uint32_t brd = ip | ~mask;
        mnl_attr_put(nlh, IFA_BROADCAST, 4, &brd);
    }
    if (lifetime) {
        ifa_cacheinfo ci{};
        ci.ifa_prefered = *lifetime;
        ci.ifa_valid = *lifetime;
        mnl_attr_put(nlh, IFA_CACHEINFO, sizeof ci, &ci);
    }
    return nlh;
}

MnlPtr open_netlink(unsigned groups, std::string* why) {
    MnlPtr s(mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!s) {
        *why = "netlink socket: " + errno_text(errno);
        return nullptr;
    }
    int one = 1;
    // Best effort: older kernels lack them and we then get bare errnos.
    mnl_socket_setsockopt(s.get(), NETLINK_EXT_ACK, &one, sizeof one);
    mnl_socket_setsockopt(s.get(), NETLINK_CAP_ACK, &one, sizeof one);
    int size = 1 << 20;
    int fd = mnl_socket_get_fd(s.get());
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    if (mnl_socket_bind(s.get(), groups, MNL_SOCKET_AUTOPID) < 0) {
        *why = "netlink bind: " + errno_text(errno);
        return nullptr;
    }
    return s;
}

// What an interface can do for announcements.
struct LinkInfo {
    bool arp = false;  // Ethernet-like, ARP/ND in use
    std::array<std::uint8_t, 6> mac{};
};

enum class Phase : std::uint8_t { Idle, Probe, Plumb, Dad, HookAcquire, Held, HookRelease, Unplumb };

bool acquiring(Phase p) {
    return p == Phase::Probe || p == Phase::Plumb || p == Phase::Dad || p == Phase::HookAcquire;
}

struct QueuedOp {
    bool acquire = true;
    ServiceAddress addr;
    bool probe = false;
    double lifetime = 0;
};

class Impl;

struct Entry {
    Impl* owner = nullptr;
    ServiceAddress requested;  // as the caller named it; returned in callbacks
    ServiceAddress plumbed;    // with the prefix on the interface
    Phase phase = Phase::Idle;
    std::uint64_t op = 0;
    std::string nic;
    int ifindex = 0;
    LinkInfo link;
    double lifetime = 0;
    gint64 expires_us = 0;  // monotonic time the kernel lifetime runs out
    // The mirror generation this entry last decided on; older events about
    // it describe a state it has already acted on.
    std::uint64_t seen_gen = 0;
    bool tentative = false;  // held IPv6 address redoing DAD (link came back)
    // The plumb replaces a copy already there (ours, from before); otherwise
    // it is exclusive, so an address that appeared meanwhile (perhaps the
    // administrator's) makes it fail instead of being overwritten.
    bool replace = false;
    unsigned announce_left = 0;
    SourcePtr timer;     // probe window or DAD limit
    SourcePtr announce;  // next announcement
    std::unique_ptr<ChildProcess> hook;  // killed with its process group when reset
    std::deque<QueuedOp> queue;
};

class Impl final : public AddressBackend {
public:
    Impl(AddressBackendOptions opts, Callbacks cb)
        : opts_(std::move(opts)), cb_(std::move(cb)), ctx_(g_main_context_ref_thread_default()),
          buf_(kNlBufferSize), self_(std::make_shared<Impl*>(this)) {}

    ~Impl() override {
        self_.reset();
        entries_.clear();  // kills running hooks, detaches timers
    }

    bool open(std::string* why) {
        cmd_ = open_netlink(0, why);
        if (!cmd_) return false;
        query_ = open_netlink(0, why);
        if (!query_) return false;
        monitor_ = open_netlink(RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR, why);
        if (!monitor_) return false;
        // Subscribed first, dumped second: events queued meanwhile replay
        // onto the dump and converge on the kernel's table.
        if (!load_mirror(why)) return false;
        // Protocol 0: a socket that only sends, so it queues no traffic.
        arp_send_.reset(socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!arp_send_) {
            *why = "packet socket (needs CAP_NET_RAW): " + errno_text(errno);
            return false;
        }
        nd_send_.reset(socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMPV6));
        if (!nd_send_) {
            if (errno != EAFNOSUPPORT) {
                *why = "ICMPv6 socket (needs CAP_NET_RAW): " + errno_text(errno);
                return false;
            }
            log(kWarning, "IPv6 is not available: no neighbour advertisements");
        } else {
            icmp6_filter filter;
            ICMP6_FILTER_SETBLOCKALL(&filter);  // we only send
            setsockopt(nd_send_.get(), IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter);
            int hops = 255, loop = 0;  // RFC 4861: ND messages carry hop limit 255
            setsockopt(nd_send_.get(), IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops);
            setsockopt(nd_send_.get(), IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof hops);
            setsockopt(nd_send_.get(), IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &loop, sizeof loop);
        }
        cmd_watch_ = fd_watch(mnl_socket_get_fd(cmd_.get()), on_cmd_ready, this);
        monitor_watch_ = fd_watch(mnl_socket_get_fd(monitor_.get()), on_monitor_ready, this);
        return true;
    }

    void acquire(const ServiceAddress& a, bool probe, double lifetime) override {
        Entry& e = entry_for(a);
        if (e.phase == Phase::Idle || e.phase == Phase::Held) {
            start_acquire(e, a, probe, lifetime);
        } else {
            log(kDebug, a.str() + ": acquire queued behind the operation in progress");
            e.queue.push_back(QueuedOp{true, a, probe, lifetime});
        }
    }

    void release(const ServiceAddress& a) override {
        Entry& e = entry_for(a);
        // A release supersedes every acquire not yet done.
        std::deque<QueuedOp> kept;
        for (auto& q : e.queue) {
            if (q.acquire)
                post_done(q.addr, true, false, "superseded by a release");
            else
                kept.push_back(q);
        }
        e.queue = std::move(kept);
        if (acquiring(e.phase)) {
            abandon_acquire(e, "superseded by a release");
            start_release(e, a);
        } else if (e.phase == Phase::Idle || e.phase == Phase::Held) {
            start_release(e, a);
        } else {
            e.queue.push_back(QueuedOp{false, a, false, 0});
        }
    }

    void refresh(const std::vector<ServiceAddress>& held, double lifetime) override {
        // A replace of a missing address re-creates it. Handle the pending
        // deletions first, so an address that vanished is reported lost (with
        // its reason) and not resurrected.
        look(nullptr);
        process_events();
        std::uint32_t secs = lifetime_secs(lifetime);
        std::vector<char> batch;
        for (const auto& a : held) {
            auto it = entries_.find(a);
            Entry* e = it == entries_.end() ? nullptr : it->second.get();
            if (e) e->lifetime = lifetime;
            if (e && (e->phase == Phase::Idle || e->phase == Phase::Probe || e->phase == Phase::HookRelease ||
                      e->phase == Phase::Unplumb))
                continue;  // not plumbed yet (it will use the new lifetime), or on its way out
            const AddrRecord* rec = e ? find_record(e->plumbed, e->ifindex, true) : find_ours(a, 0);
            if (rec && is_permanent(*rec)) rec = nullptr;  // never give the administrator's a lifetime
            if (!rec && find_permanent(a, false)) {
                log(kDebug, "refresh: " + a.str() + " is a permanent address (the administrator's); left alone");
                if (e && e->phase == Phase::Held) relinquish(*e);
                continue;
            }
            if (!rec) {
                if (e && e->phase == Phase::Held) {
                    declare_lost(*e, "it was not on " + e->nic + " at refresh");
                } else if (!e) {
                    log(kWarning, "refresh: " + a.str() + " is on no interface; not adding it back");
                }
                continue;
            }
            char msg[256];
            std::uint32_t seq = next_seq();
            nlmsghdr* nlh = build_addr_msg(msg, RTM_NEWADDR, NLM_F_ACK | NLM_F_REPLACE, seq, rec->addr,
                                           rec->ifindex, secs);
            if (batch.size() + NLMSG_ALIGN(nlh->nlmsg_len) > kBatchLimit) flush_batch(&batch);
            batch.insert(batch.end(), msg, msg + NLMSG_ALIGN(nlh->nlmsg_len));
            pending_[seq] = [this, a](int err, const std::string& ext) {
                if (err) log(kWarning, "refresh of " + a.str() + " failed: " + nl_error_text(err, ext));
            };
            if (e) e->expires_us = g_get_monotonic_time() + static_cast<gint64>(secs) * G_USEC_PER_SEC;
        }
        flush_batch(&batch);
    }

    std::vector<ServiceAddress> present(const std::vector<ServiceAddress>& group) override {
        std::vector<ServiceAddress> out;
        look(nullptr);
        for (const auto& a : group)
            if (find_any(a)) out.push_back(a);
        return out;
    }

    std::vector<ServiceAddress> permanent(const std::vector<ServiceAddress>& group) override {
        look(nullptr);
        process_events();  // report what changed for the group watched so far first
        watched_.clear();
        fixed_.clear();
        std::vector<ServiceAddress> out;
        for (const auto& a : group) {
            watched_.insert(a);
            if (!fixed_now(a)) continue;
            fixed_.insert(a);
            out.push_back(a);
        }
        return out;
    }

    std::string interface_for(const ServiceAddress& a) override {
        auto it = entries_.find(a);
        if (it != entries_.end() && it->second->phase != Phase::Idle && it->second->phase != Phase::Probe &&
            !it->second->nic.empty())
            return it->second->nic;
        look(nullptr);
        const AddrRecord* rec = find_any(a);
        return rec ? ifname(rec->ifindex) : std::string();
    }

    // ---- GLib plumbing -------------------------------------------------

    SourcePtr attach(GSource* s, GSourceFunc fn, gpointer data) {
        g_source_set_callback(s, fn, data, nullptr);
        g_source_attach(s, ctx_.get());
        return SourcePtr(s);
    }
    SourcePtr fd_watch(int fd, GUnixFDSourceFunc fn, gpointer data) {
        return attach(g_unix_fd_source_new(fd, static_cast<GIOCondition>(G_IO_IN | G_IO_ERR | G_IO_HUP)),
                      G_SOURCE_FUNC(fn), data);
    }
    SourcePtr timeout(unsigned ms, GSourceFunc fn, gpointer data) {
        return attach(g_timeout_source_new(ms), fn, data);
    }

    void log(int level, const std::string& text) {
        if (cb_.log) cb_.log(level, text);
    }

    void post(std::function<void()> fn) {
        posted_.push_back(std::move(fn));
        if (!post_source_) {
            GSource* s = g_idle_source_new();
            g_source_set_priority(s, G_PRIORITY_DEFAULT);
            post_source_ = attach(s, on_posted, this);
        }
    }
    void post_done(const ServiceAddress& a, bool acquire, bool ok, const std::string& detail) {
        post([this, a, acquire, ok, detail] {
            if (cb_.done) cb_.done(a, acquire, ok, detail);
        });
    }

    static gboolean on_posted(gpointer p) {
        auto* self = static_cast<Impl*>(p);
        std::weak_ptr<Impl*> alive = self->self_;
        std::deque<std::function<void()>> batch;
        batch.swap(self->posted_);
        self->post_source_.reset();
        for (auto& fn : batch) {
            fn();
            if (alive.expired()) break;  // the owner destroyed us from a callback
        }
        return G_SOURCE_REMOVE;
    }

    // ---- netlink ---------------------------------------------------------

    std::uint32_t next_seq() {
        if (++seq_ == 0) ++seq_;
        return seq_;
    }

    // Sends one address request on the command socket; its ACK goes to fn.
    bool send_addr(std::uint16_t type, std::uint16_t flags, const ServiceAddress& a, int ifindex,
                   std::optional<std::uint32_t> lifetime, std::function<void(int, const std::string&)> fn,
                   std::string* why) {
        char msg[256];
        std::uint32_t seq = next_seq();
        nlmsghdr* nlh = build_addr_msg(msg, type, static_cast<std::uint16_t>(flags | NLM_F_ACK), seq, a, ifindex,
                                       lifetime);
        if (mnl_socket_sendto(cmd_.get(), nlh, nlh->nlmsg_len) < 0) {
            *why = errno_text(errno);
            return false;
        }
        pending_[seq] = std::move(fn);
        return true;
    }

    void flush_batch(std::vector<char>* batch) {
        if (batch->empty()) return;
        if (mnl_socket_sendto(cmd_.get(), batch->data(), batch->size()) < 0) {
            int err = errno;
            // None of these requests reached the kernel: answer them all.
            for (auto* nlh = reinterpret_cast<const nlmsghdr*>(batch->data()); ; ) {
                auto it = pending_.find(nlh->nlmsg_seq);
                if (it != pending_.end()) {
                    auto fn = std::move(it->second);
                    pending_.erase(it);
                    fn(err, "");
                }
                std::size_t off = reinterpret_cast<const char*>(nlh) - batch->data() + NLMSG_ALIGN(nlh->nlmsg_len);
                if (off >= batch->size()) break;
                nlh = reinterpret_cast<const nlmsghdr*>(batch->data() + off);
            }
        }
        batch->clear();
        // The kernel queued the ACKs while we sent: read them now, so a long
        // refresh never overruns the socket.
        read_cmd();
    }

    static gboolean on_cmd_ready(gint, GIOCondition, gpointer p) {
        static_cast<Impl*>(p)->read_cmd();
        return G_SOURCE_CONTINUE;
    }

    void read_cmd() {
        for (;;) {
            ssize_t n = mnl_socket_recvfrom(cmd_.get(), buf_.data(), buf_.size());
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    if (errno == EINTR) continue;
                    return;
                }
                if (errno == ENOBUFS) {
                    // ACKs were dropped. Tell every waiter; each one checks
                    // the interface for itself before believing anything.
                    log(kWarning, "netlink command socket overran; re-checking pending requests");
                    auto waiting = std::move(pending_);
                    pending_.clear();
                    for (auto& [seq, fn] : waiting) fn(ENOBUFS, "");
                    continue;
                }
                log(kError, "netlink receive: " + errno_text(errno));
                return;
            }
            int len = static_cast<int>(n);
            std::vector<std::pair<std::uint32_t, std::pair<int, std::string>>> acks;
            for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf_.data()); mnl_nlmsg_ok(nlh, len);
                 nlh = mnl_nlmsg_next(nlh, &len)) {
                if (nlh->nlmsg_type == NLMSG_ERROR) acks.emplace_back(nlh->nlmsg_seq, parse_error(nlh));
            }
            // A handler may read this socket again (a refresh from a callback): copy out first.
            for (auto& [seq, res] : acks) {
                auto it = pending_.find(seq);
                if (it == pending_.end()) continue;
                auto fn = std::move(it->second);
                pending_.erase(it);
                fn(res.first, res.second);
            }
        }
    }

    // The interface's addresses now, from a dump on the query socket.
    std::optional<std::vector<AddrRecord>> dump_addresses(std::string* why) {
        int fd = mnl_socket_get_fd(query_.get());
        for (int attempt = 0; attempt < 3; ++attempt) {
            // Leftovers of a dump we gave up on.
            while (mnl_socket_recvfrom(query_.get(), dump_buf_.data(), dump_buf_.size()) >= 0) {
            }
            char req[64];
            nlmsghdr* nlh = mnl_nlmsg_put_header(req);
            nlh->nlmsg_type = RTM_GETADDR;
            nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
            std::uint32_t seq = next_seq();
            nlh->nlmsg_seq = seq;
            auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
            ifa->ifa_family = AF_UNSPEC;
            if (mnl_socket_sendto(query_.get(), nlh, nlh->nlmsg_len) < 0) {
                *why = "send: " + errno_text(errno);
                return std::nullopt;
            }
            std::vector<AddrRecord> out;
            bool done = false, interrupted = false;
            gint64 deadline = g_get_monotonic_time() + kDumpWaitMs * 1000;
            while (!done) {
                ssize_t n = mnl_socket_recvfrom(query_.get(), dump_buf_.data(), dump_buf_.size());
                if (n < 0) {
                    if (errno == EINTR) continue;
                    if (errno != EAGAIN) {
                        *why = "receive: " + errno_text(errno);
                        return std::nullopt;
                    }
                    gint64 left = (deadline - g_get_monotonic_time()) / 1000;
                    pollfd pfd{fd, POLLIN, 0};
                    if (left <= 0 || poll(&pfd, 1, static_cast<int>(left)) <= 0) {
                        *why = "the kernel did not finish the address dump";
                        return std::nullopt;
                    }
                    continue;
                }
                int len = static_cast<int>(n);
                for (auto* m = reinterpret_cast<const nlmsghdr*>(dump_buf_.data()); mnl_nlmsg_ok(m, len);
                     m = mnl_nlmsg_next(m, &len)) {
                    if (m->nlmsg_seq != seq) continue;
                    if (m->nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
                    if (m->nlmsg_type == NLMSG_DONE) {
                        done = true;
                        break;
                    }
                    if (m->nlmsg_type == NLMSG_ERROR) {
                        auto [err, ext] = parse_error(m);
                        *why = nl_error_text(err, ext);
                        return std::nullopt;
                    }
                    if (m->nlmsg_type == RTM_NEWADDR) {
                        if (auto r = parse_addr(m)) out.push_back(*r);
                    }
                }
            }
            if (!interrupted) return out;
        }
        *why = "the address list kept changing during the dump";
        return std::nullopt;
    }

    // ---- the mirror of the kernel's address table -------------------------
    //
    // Kept from the monitor socket, so an operation looks addresses up
    // instead of dumping the table (a burst of n acquires would cost n
    // dumps of n addresses). It is as fresh as a dump: the kernel queues the
    // notification of a change before the sendto that made it returns, and
    // look() reads everything queued.

    bool load_mirror(std::string* why) {
        auto dump = dump_addresses(why);
        if (!dump) {
            mirror_stale_ = true;
            return false;
        }
        mirror_.clear();
        for (auto& r : *dump) {
            r.gen = ++mirror_gen_;
            mirror_[r.addr].push_back(r);
        }
        mirror_stale_ = false;
        return true;
    }

    void apply(const AddrRecord& r, bool add) {
        auto& v = mirror_[r.addr];
        auto it = std::find_if(v.begin(), v.end(), [&](const AddrRecord& x) {
            return x.ifindex == r.ifindex && x.addr.prefix() == r.addr.prefix();
        });
        if (add) {
            if (it != v.end())
                *it = r;
            else
                v.push_back(r);
        } else if (it != v.end()) {
            v.erase(it);
        }
        if (v.empty()) mirror_.erase(r.addr);
    }

    // Call before deciding anything on the mirror. Pointers into the mirror
    // stay valid until the next look().
    void look(Entry* e) {
        if (mirror_stale_) {
            std::string why;
            if (load_mirror(&why)) {
                MonEvent ev;
                ev.resync = true;
                queue_event(std::move(ev));
            } else {
                log(kError, "cannot list addresses: " + why);
            }
        }
        sync_mirror();
        if (e) e->seen_gen = mirror_gen_;
    }

    const AddrRecord* find_record(const ServiceAddress& a, int ifindex, bool match_prefix) const {
        auto it = mirror_.find(a);
        if (it == mirror_.end()) return nullptr;
        for (const auto& r : it->second)
            if (r.ifindex == ifindex && (!match_prefix || r.addr.prefix() == a.prefix())) return &r;
        return nullptr;
    }
    // Where `a` is in service on this host (a dadfailed copy does not count).
    const AddrRecord* find_any(const ServiceAddress& a) const {
        auto it = mirror_.find(a);
        if (it == mirror_.end()) return nullptr;
        for (const auto& r : it->second)
            if (!(r.flags & IFA_F_DADFAILED)) return &r;
        return nullptr;
    }

    // A permanent copy of `a` on any interface; in_service: not dadfailed.
    const AddrRecord* find_permanent(const ServiceAddress& a, bool in_service) const {
        auto it = mirror_.find(a);
        if (it == mirror_.end()) return nullptr;
        for (const auto& r : it->second)
            if (is_permanent(r) && (!in_service || !(r.flags & IFA_F_DADFAILED))) return &r;
        return nullptr;
    }
    // A copy of `a` that is not permanent: on ifindex (any state), or with
    // ifindex 0 on any interface (in service only).
    const AddrRecord* find_ours(const ServiceAddress& a, int ifindex) const {
        auto it = mirror_.find(a);
        if (it == mirror_.end()) return nullptr;
        for (const auto& r : it->second) {
            if (is_permanent(r)) continue;
            if (ifindex ? r.ifindex == ifindex : !(r.flags & IFA_F_DADFAILED)) return &r;
        }
        return nullptr;
    }
    bool fixed_now(const ServiceAddress& a) const { return find_permanent(a, true) != nullptr; }

    // Reports a change of a's permanent presence, if a is watched or was
    // reported before.
    void check_fixed(const ServiceAddress& a) {
        auto w = watched_.find(a);
        auto f = fixed_.find(a);
        if (w == watched_.end() && f == fixed_.end()) return;
        ServiceAddress name = w != watched_.end() ? *w : *f;  // as the owner named it
        bool now = fixed_now(a);
        if (now == (f != fixed_.end())) return;
        if (now)
            fixed_.insert(name);
        else
            fixed_.erase(f);
        log(kNotice, name.str() + (now ? " is now a permanent address on this host (the administrator's)"
                                       : " is no longer a permanent address on this host"));
        post([this, name, now] {
            if (cb_.fixed) cb_.fixed(name, now);
        });
    }
    // An operation found a permanent: tell the owner before its answer.
    void mark_fixed(const ServiceAddress& a) {
        if (fixed_.count(a) || !fixed_now(a)) return;
        fixed_.insert(a);
        post([this, a] {
            if (cb_.fixed) cb_.fixed(a, true);
        });
    }

    static gboolean on_monitor_ready(gint, GIOCondition, gpointer p) {
        auto* self = static_cast<Impl*>(p);
        self->sync_mirror();
        self->process_events();
        return G_SOURCE_CONTINUE;
    }

    void queue_event(MonEvent ev) {
        events_.push_back(std::move(ev));
        if (!events_source_) {
            GSource* s = g_idle_source_new();
            g_source_set_priority(s, G_PRIORITY_DEFAULT);
            events_source_ = attach(s, on_events, this);
        }
    }

    static gboolean on_events(gpointer p) {
        static_cast<Impl*>(p)->process_events();
        return G_SOURCE_REMOVE;
    }

    // Reads what the monitor has queued into the mirror; the events are
    // handled later (process_events), never inside the caller's step.
    void sync_mirror() {
        for (;;) {
            ssize_t n = mnl_socket_recvfrom(monitor_.get(), mon_buf_.data(), mon_buf_.size());
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) return;
                if (errno == ENOBUFS) {
                    log(kWarning, "address events overran the monitor socket; re-reading the address list");
                    std::string why;
                    if (!load_mirror(&why)) {
                        log(kError, "cannot list addresses: " + why);
                        return;
                    }
                    MonEvent ev;
                    ev.resync = true;
                    queue_event(std::move(ev));
                    continue;
                }
                log(kError, "netlink monitor receive: " + errno_text(errno));
                return;
            }
            int len = static_cast<int>(n);
            for (auto* nlh = reinterpret_cast<const nlmsghdr*>(mon_buf_.data()); mnl_nlmsg_ok(nlh, len);
                 nlh = mnl_nlmsg_next(nlh, &len)) {
                if (nlh->nlmsg_type != RTM_NEWADDR && nlh->nlmsg_type != RTM_DELADDR) continue;
                auto rec = parse_addr(nlh);
                if (!rec) continue;
                MonEvent ev;
                ev.add = nlh->nlmsg_type == RTM_NEWADDR;
                ev.rec = *rec;
                ev.rec.gen = ++mirror_gen_;
                ev.portid = nlh->nlmsg_pid;
                apply(ev.rec, ev.add);
                queue_event(std::move(ev));
            }
        }
    }

    void process_events() {
        events_source_.reset();
        std::set<ServiceAddress> touched;
        bool all = false;
        while (!events_.empty()) {
            MonEvent ev = std::move(events_.front());
            events_.pop_front();
            if (ev.resync) {
                all = true;
                resync();
            } else {
                touched.insert(ev.rec.addr);
                if (ev.add)
                    on_new_address(ev.rec);
                else
                    on_del_address(ev.rec, ev.portid);
            }
        }
        if (all) {
            touched.insert(watched_.begin(), watched_.end());
            touched.insert(fixed_.begin(), fixed_.end());
        }
        for (const auto& a : touched) check_fixed(a);
    }

    Entry* entry_on(const AddrRecord& r) {
        auto it = entries_.find(r.addr);
        if (it == entries_.end()) return nullptr;
        Entry* e = it->second.get();
        if (e->ifindex != r.ifindex || e->plumbed.prefix() != r.addr.prefix()) return nullptr;
        if (r.gen <= e->seen_gen) return nullptr;  // already acted on a later state
        return e;
    }

    void on_new_address(const AddrRecord& r) {
        Entry* e = entry_on(r);
        if (!e) return;
        if (is_permanent(r)) return relinquish(*e);
        if (r.addr.family() != Family::V6) return;
        if (e->phase == Phase::Dad) {
            if (r.flags & IFA_F_DADFAILED) {
                fail_and_unplumb(*e, "duplicate address detected (DAD failed)");
            } else if (!(r.flags & IFA_F_TENTATIVE)) {
                e->timer.reset();
                log(kDebug, e->plumbed.str() + ": duplicate address detection passed");
                after_plumb(*e);
            }
        } else if (e->phase == Phase::Held) {
            if (r.flags & IFA_F_DADFAILED) {
                unplumb_quietly(*e);
                declare_lost(*e, "duplicate address detected (DAD after the link came back)");
            } else if (r.flags & IFA_F_TENTATIVE) {
                e->tentative = true;
            } else if (e->tentative) {
                e->tentative = false;
                log(kInfo, e->plumbed.str() + ": DAD passed again after a link change; announcing");
                start_announcements(*e);
            }
        }
    }

    void on_del_address(const AddrRecord& r, std::uint32_t portid) {
        Entry* e = entry_on(r);
        if (!e) return;
        switch (e->phase) {
        case Phase::Dad:
            finish_acquire(*e, false, "the kernel removed it during duplicate address detection "
                                      "(another node uses it?)");
            break;
        case Phase::HookAcquire:
            e->hook.reset();
            finish_acquire(*e, false, "removed from " + e->nic + " behind our back while the acquire hook ran");
            break;
        case Phase::Held: {
            std::string why;
            gint64 now = g_get_monotonic_time();
            if (r.valid == 0 || now >= e->expires_us - G_USEC_PER_SEC / 2)
                why = "its lifetime ran out (not refreshed in time)";
            else if (portid)
                why = "deleted from " + e->nic + " by another process (netlink port " + std::to_string(portid) + ")";
            else
                why = "removed from " + e->nic + " behind our back";
            declare_lost(*e, why);
            break;
        }
        default:
            break;  // not plumbed yet, or we are removing it ourselves
        }
    }

    // The monitor lost events and the mirror was reloaded: compare what we
    // hold with it, as if each address had just changed.
    void resync() {
        std::vector<ServiceAddress> keys;
        for (auto& [k, e] : entries_) keys.push_back(k);
        for (const auto& k : keys) {
            auto it = entries_.find(k);
            if (it == entries_.end()) continue;
            Entry& e = *it->second;
            if (e.phase != Phase::Dad && e.phase != Phase::HookAcquire && e.phase != Phase::Held) continue;
            AddrRecord now;
            now.ifindex = e.ifindex;
            now.addr = e.plumbed;
            const AddrRecord* rec = find_record(e.plumbed, e.ifindex, true);
            if (rec) now = *rec;
            now.gen = mirror_gen_;
            if (rec)
                on_new_address(now);
            else
                on_del_address(now, 0);
        }
    }

    // ---- entries and operations -----------------------------------------

    Entry& entry_for(const ServiceAddress& a) {
        auto& slot = entries_[a];
        if (!slot) {
            slot = std::make_unique<Entry>();
            slot->owner = this;
            slot->requested = a;
            slot->plumbed = a;
        }
        return *slot;
    }

    Entry* find_op(const ServiceAddress& key, std::uint64_t op) {
        auto it = entries_.find(key);
        return it != entries_.end() && it->second->op == op ? it->second.get() : nullptr;
    }

    void stop_activity(Entry& e) {
        if (e.phase == Phase::Probe) end_probe(e);
        e.timer.reset();
        e.announce.reset();
        e.hook.reset();
        e.tentative = false;
    }

    // Starts the next queued operation, or forgets an idle entry. The entry
    // may be gone on return.
    void next_op(Entry& e) {
        if (e.phase != Phase::Idle && e.phase != Phase::Held) return;
        if (!e.queue.empty()) {
            QueuedOp q = e.queue.front();
            e.queue.pop_front();
            if (q.acquire)
                start_acquire(e, q.addr, q.probe, q.lifetime);
            else
                start_release(e, q.addr);
            return;
        }
        if (e.phase == Phase::Idle) {
            ServiceAddress key = e.requested;
            entries_.erase(key);
        }
    }

    // The entry may be gone on return from the finish_* and declare_lost.
    void finish_acquire(Entry& e, bool ok, const std::string& detail) {
        if (ok) {
            log(kInfo, "acquired " + e.plumbed.str() + " on " + e.nic);
            e.phase = Phase::Held;
        } else {
            log(kWarning, "acquire of " + e.requested.str() + " failed: " + detail);
            stop_activity(e);
            e.phase = Phase::Idle;
        }
        post_done(e.requested, true, ok, detail);
        next_op(e);
    }

    void finish_release(Entry& e, bool ok, const std::string& detail) {
        if (ok)
            log(kInfo, "released " + e.requested.str() + (detail.empty() ? "" : " (" + detail + ")"));
        else
            log(kWarning, "release of " + e.requested.str() + " failed: " + detail);
        stop_activity(e);
        e.phase = Phase::Idle;
        post_done(e.requested, false, ok, detail);
        next_op(e);
    }

    void declare_lost(Entry& e, const std::string& why) {
        log(kWarning, "lost " + e.plumbed.str() + ": " + why);
        stop_activity(e);
        e.phase = Phase::Idle;
        ServiceAddress a = e.requested;
        post([this, a, why] {
            if (cb_.lost) cb_.lost(a, why);
        });
        next_op(e);
    }

    // The address is (or became) permanent: the operation ends without
    // touching it, successfully. The entry may be gone on return.
    void finish_fixed(Entry& e, bool acquire) {
        log(kNotice, e.requested.str() + (e.nic.empty() ? "" : " on " + e.nic) +
                         " is a permanent address (configured by the administrator): " +
                         (acquire ? "not adopted" : "not removed"));
        stop_activity(e);
        e.phase = Phase::Idle;
        mark_fixed(e.requested);
        post_done(e.requested, acquire, true, kPermanentDetail);
        next_op(e);
    }

    // The administrator made one of ours permanent (ip addr change ...
    // valid_lft forever): it is theirs now. Acquires in flight end as for a
    // permanent address; a held one is dropped without lost(): it is still
    // there, reported through fixed(). A release in flight checks before it
    // deletes. The entry may be gone on return.
    void relinquish(Entry& e) {
        switch (e.phase) {
        case Phase::Dad:
        case Phase::HookAcquire:
            return finish_fixed(e, true);
        case Phase::Held:
            log(kNotice, e.plumbed.str() + " on " + e.nic +
                             " was made permanent by the administrator: no longer refreshed or removed by raisd");
            stop_activity(e);
            e.phase = Phase::Idle;
            mark_fixed(e.requested);
            return next_op(e);
        default:
            return;
        }
    }

    // Whether deleting `victim` (one of ours, on the mirror) leaves every
    // permanent address where it is. Deleting the primary IPv4 address of a
    // subnet deletes the secondaries with it unless promote_secondaries is on.
    bool safe_to_delete(const ServiceAddress& victim, int ifindex, const std::string& nic, std::string* why) {
        const AddrRecord* r = find_record(victim, ifindex, true);
        if (!r) return true;  // gone already; the kernel answers EADDRNOTAVAIL
        if (is_permanent(*r)) {
            *why = kPermanentDetail;
            return false;
        }
        if (victim.family() != Family::V4 || (r->flags & IFA_F_SECONDARY)) return true;
        if (set_promote_secondaries(nic)) return true;
        ServiceAddress subnet = r->addr;
        for (const auto& [ip, records] : mirror_)
            for (const auto& o : records)
                if (o.ifindex == ifindex && is_permanent(o) && o.addr.family() == Family::V4 &&
                    o.addr.prefix() == subnet.prefix() && covers(subnet, o.addr)) {
                    *why = "removing it would also remove " + o.addr.str() +
                           ", a permanent address of the administrator (net.ipv4.conf." + nic +
                           ".promote_secondaries is not 1); left in place";
                    return false;
                }
        return true;
    }

    // Ends an acquire in flight without touching the interface (the caller
    // goes on to release); its answer is "failed".
    void abandon_acquire(Entry& e, const std::string& why) {
        log(kInfo, "acquire of " + e.requested.str() + " abandoned: " + why);
        stop_activity(e);
        e.phase = Phase::Idle;
        e.op = ++next_op_;
        post_done(e.requested, true, false, why);
    }

    void unplumb_quietly(Entry& e) {
        std::string why;
        ServiceAddress a = e.plumbed;
        look(nullptr);
        if (!safe_to_delete(a, e.ifindex, e.nic, &why)) {
            log(kWarning, "not removing " + a.str() + " from " + e.nic + ": " + why);
            return;
        }
        auto fn = [this, a](int err, const std::string& ext) {
            if (err && err != EADDRNOTAVAIL && err != ENODEV && err != ENOBUFS)
                log(kWarning, "cannot remove " + a.str() + ": " + nl_error_text(err, ext));
        };
        if (!send_addr(RTM_DELADDR, 0, e.plumbed, e.ifindex, std::nullopt, fn, &why))
            log(kWarning, "cannot remove " + a.str() + ": " + why);
    }

    void fail_and_unplumb(Entry& e, const std::string& why) {
        unplumb_quietly(e);
        finish_acquire(e, false, why);
    }

    static bool sysctl_is_one(const std::string& path) {
        Fd in(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        char c = 0;
        return in && read(in.get(), &c, 1) == 1 && c == '1';
    }

    // True when the kernel promotes secondaries on nic now (the interface's
    // setting or conf.all's, which the kernel ORs).
    bool set_promote_secondaries(const std::string& nic) {
        if (nic.empty() || nic.find('/') != std::string::npos || nic == "." || nic == "..") return false;
        std::string path = "/proc/sys/net/ipv4/conf/" + nic + "/promote_secondaries";
        if (sysctl_is_one(path)) return true;
        Fd out(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
        if (!out || write(out.get(), "1\n", 2) != 2) {
            log(kWarning, "cannot set " + path + " to 1 (" + errno_text(errno) +
                              "): removing the first address of a subnet there removes the others too");
            return sysctl_is_one("/proc/sys/net/ipv4/conf/all/promote_secondaries");
        }
        log(kInfo, "set net.ipv4.conf." + nic + ".promote_secondaries=1");
        return true;
    }

    LinkInfo link_info(const std::string& nic) {
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

    // Picks the interface: the configured one, else the one that already
    // holds the address, else the one whose connected subnet covers it most
    // narrowly (IPaddr2's findif).
    bool resolve_interface(Entry& e, std::string* why) {
        const ServiceAddress& a = e.requested;
        if (!opts_.nic.empty()) {
            unsigned idx = if_nametoindex(opts_.nic.c_str());
            if (idx == 0) {
                *why = "interface " + opts_.nic + " does not exist";
                return false;
            }
            e.nic = opts_.nic;
            e.ifindex = static_cast<int>(idx);
            return true;
        }
        const AddrRecord* best = find_any(a);
        if (!best) {
            for (const auto& [ip, records] : mirror_) {
                for (const auto& r : records) {
                    if (r.flags & IFA_F_DADFAILED) continue;
                    if (covers(r.addr, a) && (!best || r.addr.prefix() > best->addr.prefix())) best = &r;
                }
            }
        }
        if (!best) {
            *why = "no interface has a connected subnet that covers " + a.ip() + " (set nic)";
            return false;
        }
        e.ifindex = best->ifindex;
        e.nic = ifname(best->ifindex);
        if (e.nic.empty()) {
            *why = "interface " + std::to_string(best->ifindex) + " vanished";
            return false;
        }
        return true;
    }

    void start_acquire(Entry& e, const ServiceAddress& a, bool probe, double lifetime) {
        stop_activity(e);
        e.op = ++next_op_;
        e.requested = a;
        e.plumbed = a;
        e.lifetime = lifetime;
        e.phase = Phase::Plumb;  // provisional: not Idle, so next_op leaves it alone
        std::string why;
        look(&e);
        // The administrator's, on whatever interface: held by this host
        // already, and not ours to change.
        if (const AddrRecord* p = find_permanent(a, true)) {
            e.ifindex = p->ifindex;
            e.nic = ifname(p->ifindex);
            return finish_fixed(e, true);
        }
        if (const AddrRecord* p = find_permanent(a, false))
            return finish_acquire(e, false, "a permanent copy on " + ifname(p->ifindex) +
                                                " (the administrator's) failed duplicate address detection; "
                                                "left alone");
        if (!resolve_interface(e, &why)) return finish_acquire(e, false, why);
        std::optional<AddrRecord> existing;
        if (const AddrRecord* r = find_record(a, e.ifindex, false)) existing = *r;
        e.link = link_info(e.nic);
        if (a.family() == Family::V4) set_promote_secondaries(e.nic);
        if (existing && (existing->flags & IFA_F_DADFAILED)) {
            log(kNotice, a.str() + ": removing a copy on " + e.nic + " that failed DAD before");
            e.plumbed = existing->addr;
            unplumb_quietly(e);
            existing.reset();
        }
        e.replace = existing.has_value();
        if (existing) {
            // Ours from before (a restart) or a repeat: re-arm, no probe.
            if (existing->addr.prefix() != a.prefix())
                log(kNotice, a.str() + ": already on " + e.nic + " as " + existing->addr.str() + "; keeping that");
            e.plumbed = existing->addr;
            return plumb(e);
        }
        if (a.family() == Family::V4 && probe && opts_.arp_probe_ms > 0) {
            if (e.link.arp) return start_probe(e);
            log(kDebug, a.str() + ": " + e.nic + " does not do ARP; no probe");
        }
        plumb(e);
    }

    void plumb(Entry& e) {
        e.phase = Phase::Plumb;
        std::uint32_t secs = lifetime_secs(e.lifetime);
        ServiceAddress key = e.requested;
        std::uint64_t op = e.op;
        std::string why;
        auto fn = [this, key, op](int err, const std::string& ext) { on_plumbed(key, op, err, ext); };
        auto flags = static_cast<std::uint16_t>(NLM_F_CREATE | (e.replace ? NLM_F_REPLACE : NLM_F_EXCL));
        if (!send_addr(RTM_NEWADDR, flags, e.plumbed, e.ifindex, secs, fn, &why))
            return finish_acquire(e, false, "netlink: " + why);
        e.expires_us = g_get_monotonic_time() + static_cast<gint64>(secs) * G_USEC_PER_SEC;
    }

    void on_plumbed(const ServiceAddress& key, std::uint64_t op, int err, const std::string& ext) {
        Entry* e = find_op(key, op);
        if (!e || e->phase != Phase::Plumb) return;
        if (err == EEXIST) {
            look(e);
            if (find_permanent(e->requested, true)) return finish_fixed(*e, true);
            return finish_acquire(*e, false, "someone else added it to " + e->nic + " meanwhile");
        }
        if (err && err != ENOBUFS)
            return finish_acquire(*e, false, "cannot add it to " + e->nic + ": " + nl_error_text(err, ext));
        look(e);
        const AddrRecord* r = find_record(e->plumbed, e->ifindex, true);
        if (!r) return finish_acquire(*e, false, "it vanished from " + e->nic + " right after it was added");
        if (is_permanent(*r)) return finish_fixed(*e, true);  // made permanent by the administrator meanwhile
        if (e->plumbed.family() == Family::V6) {
            if (r->flags & IFA_F_DADFAILED) return fail_and_unplumb(*e, "duplicate address detected (DAD failed)");
            if (r->flags & IFA_F_TENTATIVE) {
                e->phase = Phase::Dad;
                e->timer = timeout(kDadLimitMs, on_dad_limit, e);
                log(kDebug, e->plumbed.str() + ": waiting for duplicate address detection");
                return;
            }
        }
        after_plumb(*e);
    }

    static gboolean on_dad_limit(gpointer p) {
        auto* e = static_cast<Entry*>(p);
        e->owner->fail_and_unplumb(*e, "duplicate address detection did not finish within " +
                                           std::to_string(kDadLimitMs / 1000) + " s (link down?)");
        return G_SOURCE_REMOVE;
    }

    void after_plumb(Entry& e) {
        if (opts_.hook.empty()) return announce_and_finish(e);
        e.phase = Phase::HookAcquire;
        run_hook(e, true);
    }

    void announce_and_finish(Entry& e) {
        e.phase = Phase::Held;
        start_announcements(e);
        finish_acquire(e, true, "");
    }

    // ---- ARP probe -------------------------------------------------------

    void start_probe(Entry& e) {
        std::string why;
        if (!arp_recv_) {
            // Opened before the probe goes out, so no answer is missed;
            // closed when the last probe ends, so it queues nothing else.
            arp_recv_.reset(socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ARP)));
            if (!arp_recv_) {
                log(kWarning, e.requested.str() + ": no ARP probe (packet socket: " + errno_text(errno) + ")");
                return plumb(e);
            }
            arp_watch_ = fd_watch(arp_recv_.get(), on_arp_ready, this);
        }
        static const std::uint8_t zero[4] = {0, 0, 0, 0};
        e.phase = Phase::Probe;
        probing_.insert(e.requested);
        if (!send_arp(e, zero, e.requested.bytes(), &why)) {
            log(kWarning, e.requested.str() + ": ARP probe not sent on " + e.nic + " (" + why + "); plumbing anyway");
            end_probe(e);
            return plumb(e);
        }
        e.timer = timeout(opts_.arp_probe_ms, on_probe_done, &e);
    }

    void end_probe(Entry& e) {
        probing_.erase(e.requested);
        if (probing_.empty()) {
            arp_watch_.reset();
            arp_recv_.reset();
        }
    }

    static gboolean on_probe_done(gpointer p) {
        auto* e = static_cast<Entry*>(p);
        e->owner->end_probe(*e);
        e->timer.reset();
        e->owner->plumb(*e);
        return G_SOURCE_REMOVE;
    }

    static gboolean on_arp_ready(gint, GIOCondition, gpointer p) {
        static_cast<Impl*>(p)->read_arp();
        return G_SOURCE_CONTINUE;
    }

    void read_arp() {
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
            for (const auto& key : probing_) {
                auto it = entries_.find(key);
                if (it == entries_.end()) continue;
                Entry& e = *it->second;
                if (e.ifindex != from.sll_ifindex || std::memcmp(spa, e.requested.bytes(), 4) != 0 ||
                    std::memcmp(sha, e.link.mac.data(), 6) == 0)
                    continue;
                end_probe(e);
                finish_acquire(e, false, "ARP probe for " + e.requested.ip() + " answered by " + mac_text(sha));
                break;  // probing_ changed
            }
        }
    }

    // ---- announcements ---------------------------------------------------

    bool send_arp(const Entry& e, const std::uint8_t* spa, const std::uint8_t* tpa, std::string* why) {
        std::uint8_t pkt[28] = {0, 1, 0x08, 0, 6, 4, 0, 1};  // Ethernet, IPv4, request
        std::memcpy(pkt + 8, e.link.mac.data(), 6);
        std::memcpy(pkt + 14, spa, 4);
        std::memcpy(pkt + 24, tpa, 4);  // target hardware address stays zero
        sockaddr_ll to{};
        to.sll_family = AF_PACKET;
        to.sll_protocol = htons(ETH_P_ARP);
        to.sll_ifindex = e.ifindex;
        to.sll_halen = 6;
        std::memset(to.sll_addr, 0xFF, 6);
        if (sendto(arp_send_.get(), pkt, sizeof pkt, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) < 0) {
            *why = errno_text(errno);
            return false;
        }
        return true;
    }

    bool send_na(const Entry& e, std::string* why) {
        if (!nd_send_) {
            *why = "no ICMPv6 socket";
            return false;
        }
        // Type 136, override flag, target, target link-layer address option.
        std::uint8_t pkt[32] = {ND_NEIGHBOR_ADVERT, 0, 0, 0, 0x20, 0, 0, 0};
        std::memcpy(pkt + 8, e.plumbed.bytes(), 16);
        pkt[24] = ND_OPT_TARGET_LINKADDR;
        pkt[25] = 1;  // in units of 8 bytes
        std::memcpy(pkt + 26, e.link.mac.data(), 6);
        sockaddr_in6 to{};
        to.sin6_family = AF_INET6;
        inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);
        to.sin6_scope_id = static_cast<std::uint32_t>(e.ifindex);
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
        std::memcpy(&info.ipi6_addr, e.plumbed.bytes(), 16);  // from the address itself
        info.ipi6_ifindex = static_cast<unsigned>(e.ifindex);
        std::memcpy(CMSG_DATA(c), &info, sizeof info);
        if (sendmsg(nd_send_.get(), &msg, 0) < 0) {
            *why = errno_text(errno);
            return false;
        }
        return true;
    }

    void announce_once(Entry& e) {
        if (!e.link.arp || e.tentative) return;
        std::string why;
        bool ok = e.plumbed.family() == Family::V4 ? send_arp(e, e.plumbed.bytes(), e.plumbed.bytes(), &why)
                                                   : send_na(e, &why);
        if (!ok) log(kWarning, "cannot announce " + e.plumbed.ip() + " on " + e.nic + ": " + why);
    }

    void start_announcements(Entry& e) {
        if (!e.link.arp) {
            log(kDebug, e.plumbed.str() + ": " + e.nic + " does not do ARP/ND; no announcements");
            return;
        }
        announce_once(e);
        e.announce_left = kAnnounceRepeats;
        e.announce = timeout(kAnnounceGapMs, on_announce_burst, &e);
    }

    static gboolean on_announce_burst(gpointer p) {
        auto* e = static_cast<Entry*>(p);
        Impl* self = e->owner;
        self->announce_once(*e);
        if (e->announce_left > 0) --e->announce_left;
        if (e->announce_left > 0) return G_SOURCE_CONTINUE;
        double every = self->opts_.announce_interval;
        if (every > 0) {
            auto ms = static_cast<unsigned>(std::min(every * 1000.0, 86400000.0));
            e->announce = self->timeout(std::max(ms, 1u), on_announce_periodic, e);  // replaces this source
        } else {
            e->announce.reset();
        }
        return G_SOURCE_REMOVE;
    }

    static gboolean on_announce_periodic(gpointer p) {
        auto* e = static_cast<Entry*>(p);
        e->owner->announce_once(*e);
        return G_SOURCE_CONTINUE;
    }

    // ---- the hook ----------------------------------------------------------

    void run_hook(Entry& e, bool acquire) {
        const char* what = acquire ? "acquire" : "release";
        std::string addr = e.plumbed.str();
        log(kDebug, "running " + opts_.hook + " " + what + " " + addr + " " + e.nic);
        ChildOptions o;
        o.timeout_ms = static_cast<unsigned>(std::clamp(opts_.hook_timeout * 1000.0, 1.0, 86400000.0));
        // The ChildProcess belongs to the entry: a superseded or timed-out
        // hook is killed with it and never reports.
        Entry* entry = &e;
        e.hook = std::make_unique<ChildProcess>(
            std::vector<std::string>{opts_.hook, what, addr, e.nic}, o, [this, entry, acquire](const ChildResult& r) {
                entry->hook.reset();
                if (r.ok()) {
                    if (!r.output.empty()) log(kDebug, "hook output: " + r.output);
                    return hook_result(*entry, acquire, true, "");
                }
                std::string why = r.timed_out ? "timed out after " + seconds_text(opts_.hook_timeout) +
                                                    " s and was killed"
                                              : r.status();
                hook_result(*entry, acquire, false, "hook " + why + (r.output.empty() ? "" : ": " + r.output));
            });
    }

    void hook_result(Entry& e, bool acquire, bool ok, const std::string& detail) {
        if (acquire) {
            if (ok) return announce_and_finish(e);
            return fail_and_unplumb(e, detail);
        }
        if (!ok) log(kWarning, "release hook for " + e.plumbed.str() + " failed (" + detail + "); removing it anyway");
        unplumb_for_release(e);
    }

    // ---- release -----------------------------------------------------------

    void start_release(Entry& e, const ServiceAddress& a) {
        stop_activity(e);
        e.op = ++next_op_;
        e.requested = a;
        e.phase = Phase::Unplumb;  // provisional: not Idle, so next_op leaves it alone
        look(&e);
        // Only our own copy is removed; the administrator's stays.
        const AddrRecord* rec = e.ifindex ? find_ours(a, e.ifindex) : nullptr;
        if (!rec) rec = find_ours(a, 0);
        if (!rec) {
            if (const AddrRecord* p = find_permanent(a, false)) {
                e.nic = ifname(p->ifindex);
                return finish_fixed(e, false);
            }
            return finish_release(e, true, "it was not on any interface");
        }
        e.ifindex = rec->ifindex;
        e.nic = ifname(rec->ifindex);
        e.plumbed = rec->addr;
        if (opts_.hook.empty()) return unplumb_for_release(e);
        e.phase = Phase::HookRelease;
        run_hook(e, false);
    }

    void unplumb_for_release(Entry& e) {
        e.phase = Phase::Unplumb;
        ServiceAddress key = e.requested;
        std::uint64_t op = e.op;
        std::string why;
        // The hook ran meanwhile: look again before deleting.
        look(&e);
        if (const AddrRecord* r = find_record(e.plumbed, e.ifindex, true); r && is_permanent(*r))
            return finish_fixed(e, false);
        if (!safe_to_delete(e.plumbed, e.ifindex, e.nic, &why)) return finish_release(e, false, why);
        auto fn = [this, key, op](int err, const std::string& ext) { on_unplumbed(key, op, err, ext); };
        if (!send_addr(RTM_DELADDR, 0, e.plumbed, e.ifindex, std::nullopt, fn, &why))
            finish_release(e, false, "netlink: " + why);
    }

    void on_unplumbed(const ServiceAddress& key, std::uint64_t op, int err, const std::string& ext) {
        Entry* e = find_op(key, op);
        if (!e || e->phase != Phase::Unplumb) return;
        if (err == ENOBUFS) {  // the ACK was lost: look instead
            look(nullptr);
            err = find_record(e->plumbed, e->ifindex, true) ? EBUSY : 0;
        }
        if (err && err != EADDRNOTAVAIL && err != ENODEV)
            return finish_release(*e, false, "cannot remove it from " + e->nic + ": " + nl_error_text(err, ext));
        finish_release(*e, true, err ? "it was already gone" : "");
    }

    AddressBackendOptions opts_;
    Callbacks cb_;
    ContextPtr ctx_;
    std::vector<char> buf_;
    std::vector<char> dump_buf_ = std::vector<char>(kNlBufferSize);
    std::vector<char> mon_buf_ = std::vector<char>(kNlBufferSize);
    MnlPtr cmd_, query_, monitor_;
    Fd arp_send_, nd_send_, arp_recv_;
    std::uint32_t seq_ = static_cast<std::uint32_t>(g_get_real_time());
    std::uint64_t next_op_ = 0;
    std::map<std::uint32_t, std::function<void(int, const std::string&)>> pending_;
    std::set<ServiceAddress> probing_;
    std::deque<std::function<void()>> posted_;
    std::shared_ptr<Impl*> self_;
    std::map<ServiceAddress, std::vector<AddrRecord>> mirror_;  // keyed by IP, one record per interface/prefix
    std::uint64_t mirror_gen_ = 0;
    bool mirror_stale_ = false;  // a reload failed; retry at the next look()
    std::deque<MonEvent> events_;
    std::set<ServiceAddress> watched_;  // the group given to permanent()
    std::set<ServiceAddress> fixed_;    // reported permanent-present (by IP, as the owner named them)
    // Declared last, destroyed first: no source outlives what it reads.
    std::map<ServiceAddress, std::unique_ptr<Entry>> entries_;
    SourcePtr cmd_watch_, monitor_watch_, arp_watch_, post_source_, events_source_;
};

}  // namespace

std::unique_ptr<AddressBackend> AddressBackend::create(AddressBackendOptions opts, Callbacks cb, std::string* error) {
    auto impl = std::make_unique<Impl>(std::move(opts), std::move(cb));
    std::string why;
    if (!impl->open(&why)) {
        if (error) *error = why;
        return nullptr;
    }
    return impl;
}

}  // namespace rais
