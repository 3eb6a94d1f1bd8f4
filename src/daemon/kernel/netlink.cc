// The rtnetlink sockets and the table they keep (see netlink.h).

#include "daemon/kernel/netlink.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

namespace rais::kernel {
namespace {

// Bound on a synchronous dump. rtnetlink answers a request in the sender's
// context, so the data is queued before sendto returns; this only guards
// against a kernel that does otherwise.
constexpr int kDumpWaitMs = 1000;
constexpr std::size_t kNlBufferSize = 32768;  // >= the largest dump skb
constexpr std::size_t kBatchLimit = 16384;    // bytes of requests per sendto

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

// Builds an RTM_NEWADDR/RTM_DELADDR request for `a` on `ifindex` in buf.
nlmsghdr* build_addr_msg(char* buf, std::uint16_t type, std::uint16_t flags, std::uint32_t seq,
                         const ServiceAddress& a, int ifindex, std::optional<std::uint32_t> lifetime,
                         bool nodad = false) {
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | flags);
    nlh->nlmsg_seq = seq;
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = a.family() == Family::V4 ? AF_INET : AF_INET6;
    ifa->ifa_prefixlen = static_cast<std::uint8_t>(a.prefix());
    ifa->ifa_flags = nodad && a.family() == Family::V6 ? IFA_F_NODAD : 0;
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

bool sysctl_is_one(const std::string& path) {
    Fd in(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    char c = 0;
    return in && read(in.get(), &c, 1) == 1 && c == '1';
}

}  // namespace

std::string netlink_error_text(int err, const std::string& ext) {
    std::string s = errno_text(err);
    if (!ext.empty()) s += " (" + ext + ")";
    return s;
}

std::string interface_name(int ifindex) {
    char buf[IF_NAMESIZE] = {0};
    if (ifindex <= 0 || !if_indextoname(static_cast<unsigned>(ifindex), buf)) return {};
    return buf;
}

int interface_index(const std::string& nic) { return static_cast<int>(if_nametoindex(nic.c_str())); }

// On when the interface's setting or conf.all's (which the kernel ORs) is 1.
PromoteResult promote_secondaries(const std::string& nic) {
    PromoteResult r;
    if (nic.empty() || nic.find('/') != std::string::npos || nic == "." || nic == "..") return r;
    std::string path = "/proc/sys/net/ipv4/conf/" + nic + "/promote_secondaries";
    if (sysctl_is_one(path)) {
        r.on = true;
        return r;
    }
    Fd out(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!out || write(out.get(), "1\n", 2) != 2) {
        r.level = LogLevel::Warning;
        r.note = "cannot set " + path + " to 1 (" + errno_text(errno) +
                 "): removing the first address of a subnet there removes the others too";
        r.on = sysctl_is_one("/proc/sys/net/ipv4/conf/all/promote_secondaries");
        return r;
    }
    r.level = LogLevel::Info;
    r.note = "set net.ipv4.conf." + nic + ".promote_secondaries=1";
    r.on = true;
    return r;
}

void Netlink::MnlDeleter::operator()(mnl_socket* s) const { mnl_socket_close(s); }

Netlink::Netlink(GMainContext* ctx, Callbacks cb)
    : ctx_(ctx), cb_(std::move(cb)), buf_(kNlBufferSize), dump_buf_(kNlBufferSize), mon_buf_(kNlBufferSize),
      seq_(static_cast<std::uint32_t>(g_get_real_time())) {}

Netlink::~Netlink() = default;

Netlink::MnlPtr Netlink::open_socket(unsigned groups, std::string* why) {
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

std::unique_ptr<Netlink> Netlink::open(GMainContext* ctx, Callbacks cb, std::string* why) {
    std::unique_ptr<Netlink> n(new Netlink(ctx, std::move(cb)));
    n->cmd_ = open_socket(0, why);
    if (!n->cmd_) return nullptr;
    n->query_ = open_socket(0, why);
    if (!n->query_) return nullptr;
    n->monitor_ = open_socket(RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR, why);
    if (!n->monitor_) return nullptr;
    // Subscribed first, dumped second: events queued meanwhile replay onto
    // the dump and converge on the kernel's table.
    if (!n->load_table(why)) return nullptr;
    n->cmd_watch_ = fd_watch(ctx, mnl_socket_get_fd(n->cmd_.get()), on_cmd_ready, n.get());
    n->monitor_watch_ = fd_watch(ctx, mnl_socket_get_fd(n->monitor_.get()), on_monitor_ready, n.get());
    return n;
}

std::uint32_t Netlink::next_seq() {
    if (++seq_ == 0) ++seq_;
    return seq_;
}

bool Netlink::send(std::uint16_t type, std::uint16_t flags, const ServiceAddress& a, int ifindex,
                   std::optional<std::uint32_t> lifetime, Ack ack, std::string* why) {
    char msg[256];
    std::uint32_t seq = next_seq();
    nlmsghdr* nlh =
        build_addr_msg(msg, type, static_cast<std::uint16_t>(flags | NLM_F_ACK), seq, a, ifindex, lifetime);
    if (mnl_socket_sendto(cmd_.get(), nlh, nlh->nlmsg_len) < 0) {
        *why = errno_text(errno);
        return false;
    }
    pending_[seq] = std::move(ack);
    return true;
}

bool Netlink::add(const ServiceAddress& a, int ifindex, bool replace, std::uint32_t lifetime, Ack ack,
                  std::string* why) {
    auto flags = static_cast<std::uint16_t>(NLM_F_CREATE | (replace ? NLM_F_REPLACE : NLM_F_EXCL));
    return send(RTM_NEWADDR, flags, a, ifindex, lifetime, std::move(ack), why);
}

bool Netlink::remove(const ServiceAddress& a, int ifindex, Ack ack, std::string* why) {
    return send(RTM_DELADDR, 0, a, ifindex, std::nullopt, std::move(ack), why);
}

void Netlink::append(std::vector<char>* batch, const nlmsghdr* nlh, Ack ack) {
    if (batch->size() + NLMSG_ALIGN(nlh->nlmsg_len) > kBatchLimit) flush_batch(batch);
    const char* msg = reinterpret_cast<const char*>(nlh);
    batch->insert(batch->end(), msg, msg + NLMSG_ALIGN(nlh->nlmsg_len));
    pending_[nlh->nlmsg_seq] = std::move(ack);
}

void Netlink::refresh(std::vector<Lifetime> addresses, std::uint32_t lifetime) {
    std::vector<char> batch;
    for (auto& l : addresses) {
        char msg[256];
        nlmsghdr* nlh =
            build_addr_msg(msg, RTM_NEWADDR, NLM_F_ACK | NLM_F_REPLACE, next_seq(), l.addr, l.ifindex, lifetime);
        append(&batch, nlh, std::move(l.ack));
    }
    flush_batch(&batch);
}

void Netlink::add_batch(std::vector<AddRequest> requests) {
    std::vector<char> batch;
    for (auto& r : requests) {
        char msg[256];
        auto flags = static_cast<std::uint16_t>(NLM_F_ACK | NLM_F_CREATE | (r.replace ? NLM_F_REPLACE : NLM_F_EXCL));
        nlmsghdr* nlh = build_addr_msg(msg, RTM_NEWADDR, flags, next_seq(), r.addr, r.ifindex, r.lifetime, r.nodad);
        append(&batch, nlh, std::move(r.ack));
    }
    flush_batch(&batch);
}

void Netlink::flush_batch(std::vector<char>* batch) {
    if (batch->empty()) return;
    if (mnl_socket_sendto(cmd_.get(), batch->data(), batch->size()) < 0) {
        int err = errno;
        // None of these requests reached the kernel: answer them all.
        for (auto* nlh = reinterpret_cast<const nlmsghdr*>(batch->data());;) {
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

gboolean Netlink::on_cmd_ready(gint, GIOCondition, gpointer p) {
    static_cast<Netlink*>(p)->read_cmd();
    return G_SOURCE_CONTINUE;
}

void Netlink::read_cmd() {
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(cmd_.get(), buf_.data(), buf_.size());
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                if (errno == EINTR) continue;
                return;
            }
            if (errno == ENOBUFS) {
                // ACKs were dropped. Tell every waiter; each one checks the
                // interface for itself before believing anything.
                log(LogLevel::Warning, "netlink command socket overran; re-checking pending requests");
                auto waiting = std::move(pending_);
                pending_.clear();
                for (auto& [seq, fn] : waiting) fn(ENOBUFS, "");
                continue;
            }
            log(LogLevel::Error, "netlink receive: " + errno_text(errno));
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

std::optional<std::vector<AddrRecord>> Netlink::dump_addresses(std::string* why) {
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
                    *why = netlink_error_text(err, ext);
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

// The table is kept from the monitor socket, so an operation looks
// addresses up instead of dumping them (a burst of n acquires would cost n
// dumps of n addresses).
bool Netlink::load_table(std::string* why) {
    auto dump = dump_addresses(why);
    if (!dump) {
        table_stale_ = true;
        return false;
    }
    table_.load(std::move(*dump));
    table_stale_ = false;
    return true;
}

void Netlink::look() {
    if (table_stale_) {
        std::string why;
        if (load_table(&why)) {
            KernelEvent ev;
            ev.resync = true;
            queue_event(std::move(ev));
        } else {
            log(LogLevel::Error, "cannot list addresses: " + why);
        }
    }
    sync_table();
}

std::vector<KernelEvent> Netlink::take_events() {
    events_source_.reset();
    std::vector<KernelEvent> out(std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
    events_.clear();
    return out;
}

gboolean Netlink::on_monitor_ready(gint, GIOCondition, gpointer p) {
    auto* self = static_cast<Netlink*>(p);
    self->sync_table();
    if (self->cb_.events) self->cb_.events();
    return G_SOURCE_CONTINUE;
}

void Netlink::queue_event(KernelEvent ev) {
    events_.push_back(std::move(ev));
    if (!events_source_) events_source_ = idle(ctx_, on_events, this);
}

gboolean Netlink::on_events(gpointer p) {
    auto* self = static_cast<Netlink*>(p);
    self->events_source_.reset();
    if (self->cb_.events) self->cb_.events();
    return G_SOURCE_REMOVE;
}

// Reads what the monitor has queued into the table; the events are handed
// on later, never inside the caller's step.
void Netlink::sync_table() {
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(monitor_.get(), mon_buf_.data(), mon_buf_.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return;
            if (errno == ENOBUFS) {
                log(LogLevel::Warning, "address events overran the monitor socket; re-reading the address list");
                std::string why;
                if (!load_table(&why)) {
                    log(LogLevel::Error, "cannot list addresses: " + why);
                    return;
                }
                KernelEvent ev;
                ev.resync = true;
                queue_event(std::move(ev));
                continue;
            }
            log(LogLevel::Error, "netlink monitor receive: " + errno_text(errno));
            return;
        }
        int len = static_cast<int>(n);
        for (auto* nlh = reinterpret_cast<const nlmsghdr*>(mon_buf_.data()); mnl_nlmsg_ok(nlh, len);
             nlh = mnl_nlmsg_next(nlh, &len)) {
            if (nlh->nlmsg_type != RTM_NEWADDR && nlh->nlmsg_type != RTM_DELADDR) continue;
            auto rec = parse_addr(nlh);
            if (!rec) continue;
            KernelEvent ev;
            ev.add = nlh->nlmsg_type == RTM_NEWADDR;
            ev.rec = table_.apply(*rec, ev.add);
            ev.portid = nlh->nlmsg_pid;
            queue_event(std::move(ev));
        }
    }
}

}  // namespace rais::kernel
