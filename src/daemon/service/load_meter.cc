#include "daemon/service/load_meter.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "core/codec.h"

namespace rais {

namespace {

constexpr std::size_t kIfNameMax = 15;          // IFNAMSIZ - 1
constexpr std::size_t kAnswerBuffer = 32768;    // >= the largest netlink skb the kernel builds for us
constexpr int kAnswerWaitMs = 100;              // bound on waiting for an answer (see exchange())

bool valid_iface(const std::string& s) {
    return !s.empty() && s.size() <= kIfNameMax && s.find_first_of("/: \t\n") == std::string::npos;
}

std::optional<std::uint16_t> parse_port(const std::string& s) {
    if (s.empty() || s.size() > 5 || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    unsigned long v = std::strtoul(s.c_str(), nullptr, 10);
    if (v < 1 || v > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(v);
}

std::string errno_text(int err) { return std::strerror(err); }

std::string read_small_file(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

}  // namespace

// ------------------------------------------------------------------ pure part

std::optional<LoadSpec> parse_load_spec(const std::string& spec, std::string* why) {
    auto fail = [why](const std::string& text) -> std::optional<LoadSpec> {
        if (why) *why = text;
        return std::nullopt;
    };
    LoadSpec s;
    if (spec == "cpu") {
        s.kind = LoadKind::Cpu;
    } else if (spec == "net" || spec.rfind("net:", 0) == 0) {
        s.kind = LoadKind::Net;
        if (spec.size() > 3) {
            s.iface = spec.substr(4);
            if (!valid_iface(s.iface)) return fail("net: needs an interface name (at most 15 characters, no '/', ':' or blanks)");
        }
    } else if (spec == "conns" || spec.rfind("conns:", 0) == 0) {
        s.kind = LoadKind::Conns;
        if (spec.size() > 5) {
            s.port = parse_port(spec.substr(6));
            if (!s.port) return fail("conns: needs a port between 1 and 65535");
        }
    } else if (spec.rfind("exec:", 0) == 0) {
        s.kind = LoadKind::Exec;
        s.path = spec.substr(5);
        if (s.path.size() < 2 || s.path[0] != '/') return fail("exec: needs an absolute path");
    } else {
        return fail("not a load measure (use cpu, net[:IFACE], conns[:PORT] or exec:PATH)");
    }
    return s;
}

namespace {

// At most 80 bytes of what a script printed, fit for one log line.
std::string printable(const std::string& s) {
    std::string out = s.substr(0, 80);
    for (auto& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    return out + (s.size() > 80 ? "..." : "");
}

std::string number_text(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

// A plain decimal number: digits, at most one '.', an optional exponent.
// Refuses what strtod would also take (nan, inf, hex, a sign, blanks).
std::optional<double> parse_plain_number(const std::string& t, std::string* why) {
    auto bad = [why, &t](const std::string& text) -> std::optional<double> {
        if (why) *why = "'" + t + "' " + text;
        return std::nullopt;
    };
    if (t.empty()) return bad("is empty");
    if (t[0] == '-') return bad("is negative");
    std::size_t i = 0, digits = 0;
    while (i < t.size() && g_ascii_isdigit(t[i])) i++, digits++;
    if (i < t.size() && t[i] == '.') {
        i++;
        while (i < t.size() && g_ascii_isdigit(t[i])) i++, digits++;
    }
    if (digits == 0) return bad("is not a number");
    if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        if (i < t.size() && (t[i] == '+' || t[i] == '-')) i++;
        std::size_t exp_digits = 0;
        while (i < t.size() && g_ascii_isdigit(t[i])) i++, exp_digits++;
        if (exp_digits == 0) return bad("is not a number");
    }
    if (i != t.size()) return bad("is not a number");
    errno = 0;
    char* end = nullptr;
    double v = g_ascii_strtod(t.c_str(), &end);
    if (errno == ERANGE || !std::isfinite(v) || end != t.c_str() + t.size()) return bad("is out of range");
    return v;
}

}  // namespace

std::optional<std::string> check_sample(double load, double capacity) {
    auto in_range = [](double v) { return std::isfinite(v) && v >= 0 && v < kMaxLoadValue; };
    const std::string range = " is not a number in [0, " + number_text(kMaxLoadValue) + ")";
    if (!in_range(load)) return "load " + number_text(load) + range;
    if (!in_range(capacity)) return "capacity " + number_text(capacity) + range;
    return std::nullopt;
}

std::optional<std::pair<double, double>> parse_exec_load(const std::string& text, std::string* why) {
    auto bad = [why](const std::string& t) -> std::optional<std::pair<double, double>> {
        if (why) *why = t;
        return std::nullopt;
    };
    if (text.find_first_of("\r\n") != std::string::npos) return bad("more than one line");
    std::vector<std::string> fields;
    std::size_t i = 0;
    while (i < text.size()) {
        if (text[i] == ' ' || text[i] == '\t') {
            i++;
            continue;
        }
        std::size_t end = text.find_first_of(" \t", i);
        if (end == std::string::npos) end = text.size();
        fields.push_back(text.substr(i, end - i));
        i = end;
    }
    if (fields.size() != 2) return bad("expected two numbers, found " + std::to_string(fields.size()) + " fields");
    std::string w;
    auto load = parse_plain_number(fields[0], &w);
    if (!load) return bad("LOAD " + w);
    auto cap = parse_plain_number(fields[1], &w);
    if (!cap) return bad("CAPACITY " + w);
    return std::make_pair(*load, *cap);
}

std::optional<std::pair<double, double>> parse_proc_stat(const std::string& text) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("cpu ", 0) != 0) continue;
        std::istringstream f(line.substr(4));
        std::vector<double> v;
        std::string field;
        while (f >> field) {
            // Kernel counters: unsigned 64-bit integers, nothing else.
            if (field.size() > 20 || field.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
            errno = 0;
            unsigned long long n = std::strtoull(field.c_str(), nullptr, 10);
            if (errno == ERANGE) return std::nullopt;
            v.push_back(static_cast<double>(n));
        }
        if (v.size() < 4) return std::nullopt;
        // user nice system idle iowait irq softirq steal guest guest_nice:
        // the kernel already counts guest and guest_nice in user and nice.
        double total = 0;
        for (std::size_t i = 0; i < v.size() && i < 8; ++i) total += v[i];
        double idle = v[3] + (v.size() > 4 ? v[4] : 0);
        return std::make_pair(total - idle, total);
    }
    return std::nullopt;
}

std::optional<double> cpu_load(const std::pair<double, double>& before, const std::pair<double, double>& after,
                               double cpus) {
    double total = after.second - before.second;
    if (!(total > 0) || !std::isfinite(total)) return std::nullopt;
    double share = std::clamp((after.first - before.first) / total, 0.0, 1.0);
    if (!std::isfinite(share)) return std::nullopt;
    if (!(cpus >= 1)) cpus = 1;
    return share * 100.0 * cpus;
}

std::optional<LinkCounters> parse_link_stats(const void* nlmsg, std::size_t len) {
    const auto* nlh = static_cast<const nlmsghdr*>(nlmsg);
    if (!nlmsg || len < sizeof(nlmsghdr) || len > 0x7fffffff || !mnl_nlmsg_ok(nlh, static_cast<int>(len)))
        return std::nullopt;
    if (nlh->nlmsg_type != RTM_NEWLINK || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(ifinfomsg))) return std::nullopt;
    ifinfomsg ifi;
    std::memcpy(&ifi, mnl_nlmsg_get_payload(nlh), sizeof ifi);
    const nlattr* stats = nullptr;
    auto collect = [](const nlattr* attr, void* data) -> int {
        if (mnl_attr_get_type(attr) == IFLA_STATS64) *static_cast<const nlattr**>(data) = attr;
        return MNL_CB_OK;
    };
    if (mnl_attr_parse(nlh, sizeof(ifinfomsg), collect, &stats) < 0) return std::nullopt;
    if (!stats || mnl_attr_get_payload_len(stats) < sizeof(rtnl_link_stats64)) return std::nullopt;
    // The payload is only 4-byte aligned: copy before reading 64-bit fields.
    rtnl_link_stats64 s;
    std::memcpy(&s, mnl_attr_get_payload(stats), sizeof s);
    return LinkCounters{ifi.ifi_index, s.rx_bytes, s.tx_bytes};
}

std::optional<double> link_rate(const LinkCounters& before, std::int64_t before_us, const LinkCounters& after,
                                std::int64_t after_us) {
    if (after_us <= before_us || before.ifindex != after.ifindex) return std::nullopt;
    if (after.rx_bytes < before.rx_bytes || after.tx_bytes < before.tx_bytes) return std::nullopt;
    // The busier direction: a full-duplex link is full when one direction
    // runs at line rate, so rx + tx against the speed would read up to 200%.
    double bytes = std::max(static_cast<double>(after.rx_bytes - before.rx_bytes),
                            static_cast<double>(after.tx_bytes - before.tx_bytes));
    return bytes * 1e6 / static_cast<double>(after_us - before_us);
}

std::optional<double> parse_link_speed(const std::string& text) {
    std::string t = text;
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
    if (t.empty() || t.size() > 9 || t.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    double mbit = std::strtod(t.c_str(), nullptr);
    double bytes = mbit * 1e6 / 8;
    if (!(bytes > 0) || bytes >= kMaxLoadValue) return std::nullopt;
    return bytes;
}

std::optional<SockEntry> parse_inet_diag(const void* nlmsg, std::size_t len) {
    const auto* nlh = static_cast<const nlmsghdr*>(nlmsg);
    if (!nlmsg || len < sizeof(nlmsghdr) || len > 0x7fffffff || !mnl_nlmsg_ok(nlh, static_cast<int>(len)))
        return std::nullopt;
    if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(inet_diag_msg)))
        return std::nullopt;
    inet_diag_msg m;
    std::memcpy(&m, mnl_nlmsg_get_payload(nlh), sizeof m);
    const auto* src = reinterpret_cast<const std::uint8_t*>(m.id.idiag_src);
    std::optional<ServiceAddress> a;
    if (m.idiag_family == AF_INET) {
        a = ServiceAddress::from_bytes(src, 4, 32);
    } else if (m.idiag_family == AF_INET6) {
        static const std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (std::memcmp(src, kMapped, sizeof kMapped) == 0) a = ServiceAddress::from_bytes(src + 12, 4, 32);
        else a = ServiceAddress::from_bytes(src, 16, 128);
    }
    if (!a) return std::nullopt;
    return SockEntry{*a, ntohs(m.id.idiag_sport)};
}

bool counts_connection(const SockEntry& e, const std::set<ServiceAddress>& held, std::optional<std::uint16_t> port) {
    return (!port || e.port == *port) && held.count(e.local) > 0;
}

std::size_t count_connections(const std::vector<SockEntry>& entries, const std::set<ServiceAddress>& held,
                              std::optional<std::uint16_t> port) {
    return static_cast<std::size_t>(std::count_if(
        entries.begin(), entries.end(), [&](const SockEntry& e) { return counts_connection(e, held, port); }));
}

namespace {

void put_op(std::vector<std::uint8_t>* out, std::uint8_t code, std::size_t yes, std::size_t no) {
    inet_diag_bc_op op{};
    op.code = code;
    op.yes = static_cast<unsigned char>(yes);
    op.no = static_cast<unsigned short>(no);
    const auto* p = reinterpret_cast<const std::uint8_t*>(&op);
    out->insert(out->end(), p, p + sizeof op);
}

// An INET_DIAG_BC_S_COND op with its hostcond and address; `addr` null for
// "any address" (family AF_UNSPEC, prefix 0).
void put_cond(std::vector<std::uint8_t>* out, const ServiceAddress* addr, std::optional<std::uint16_t> port,
              std::size_t yes, std::size_t no) {
    put_op(out, INET_DIAG_BC_S_COND, yes, no);
    inet_diag_hostcond c{};
    c.family = !addr ? AF_UNSPEC : addr->family() == Family::V4 ? AF_INET : AF_INET6;
    c.prefix_len = static_cast<std::uint8_t>(!addr ? 0 : addr->size() * 8);
    c.port = port ? *port : -1;  // host order; -1 is "any port"
    const auto* p = reinterpret_cast<const std::uint8_t*>(&c);
    out->insert(out->end(), p, p + sizeof c);
    if (addr) out->insert(out->end(), addr->bytes(), addr->bytes() + addr->size());
}

std::size_t cond_size(const ServiceAddress& a) {
    return sizeof(inet_diag_bc_op) + sizeof(inet_diag_hostcond) + a.size();
}

}  // namespace

std::vector<std::uint8_t> conns_bytecode(const std::set<ServiceAddress>& held, std::optional<std::uint16_t> port) {
    std::vector<std::uint8_t> out;
    if (held.empty()) return out;
    if (held.size() > kMaxConnsConditions) {
        // Too many addresses for one filter: the port alone, or no filter.
        if (port) {
            std::size_t n = sizeof(inet_diag_bc_op) + sizeof(inet_diag_hostcond);
            put_cond(&out, nullptr, port, n, n + sizeof(inet_diag_bc_op));
        }
        return out;
    }
    // Each condition: true -> the next op, a jump to the end (accept); false
    // -> skip that jump to the next condition. The last condition's false
    // lands 4 bytes past the end, which the kernel reads as "reject".
    std::size_t total = 0;
    for (const auto& a : held) total += cond_size(a) + sizeof(inet_diag_bc_op);
    total -= sizeof(inet_diag_bc_op);  // no jump after the last condition
    out.reserve(total);
    std::size_t left = total;
    std::size_t i = 0;
    for (const auto& a : held) {
        std::size_t n = cond_size(a);
        put_cond(&out, &a, port, n, n + sizeof(inet_diag_bc_op));
        left -= n;
        if (++i < held.size()) {
            put_op(&out, INET_DIAG_BC_JMP, sizeof(inet_diag_bc_op), left);
            left -= sizeof(inet_diag_bc_op);
        }
    }
    return out;
}

// ------------------------------------------------------------------ netlink exchange

void LoadMeter::MnlClose::operator()(mnl_socket* s) const { mnl_socket_close(s); }

namespace {

struct LinkAnswer {
    std::optional<LinkCounters> counters;
};

int on_link(const nlmsghdr* nlh, void* data) {
    auto* a = static_cast<LinkAnswer*>(data);
    if (!a->counters) a->counters = parse_link_stats(nlh, nlh->nlmsg_len);
    return MNL_CB_OK;
}

struct ConnsAnswer {
    const std::set<ServiceAddress>* held;
    std::optional<std::uint16_t> port;
    std::size_t count = 0;
};

int on_sock(const nlmsghdr* nlh, void* data) {
    auto* a = static_cast<ConnsAnswer*>(data);
    auto e = parse_inet_diag(nlh, nlh->nlmsg_len);
    if (e && counts_connection(*e, *a->held, a->port)) ++a->count;
    return MNL_CB_OK;
}

}  // namespace

// Sends the request in `req` on *sock (opened on `bus` first if needed) and
// runs `cb` over the answer: every part of a dump up to NLMSG_DONE, or the
// one message a plain request gets. Returns 0 or an errno value (the
// kernel's own for NLMSG_ERROR). On any error the socket is closed, so no
// stale answer can be read as the next one's; the next sample reopens it.
//
// Blocking is bounded: rtnetlink answers a request inside our sendto, and a
// sock_diag dump is produced in our sendto and recvfrom calls, so the answer
// is queued by the time we read; the poll only guards against a kernel that
// would do otherwise.
int LoadMeter::exchange(MnlPtr* sock, int bus, nlmsghdr* req, bool dump, AnswerFn cb, void* data) {
    if (buf_.empty()) buf_.resize(kAnswerBuffer);
    if (!*sock) {
        sock->reset(mnl_socket_open2(bus, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!*sock) return errno;
        if (mnl_socket_bind(sock->get(), 0, MNL_SOCKET_AUTOPID) < 0) {
            int err = errno;
            sock->reset();
            return err;
        }
    }
    auto failed = [sock](int err) {
        sock->reset();
        return err ? err : EPROTO;
    };
    std::uint32_t seq = ++seq_;
    req->nlmsg_seq = seq;
    if (mnl_socket_sendto(sock->get(), req, req->nlmsg_len) < 0) return failed(errno);
    std::uint32_t portid = mnl_socket_get_portid(sock->get());
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(sock->get(), buf_.data(), buf_.size());
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) return failed(errno);
            pollfd p{mnl_socket_get_fd(sock->get()), POLLIN, 0};
            int r = poll(&p, 1, kAnswerWaitMs);
            if (r == 0) return failed(ETIMEDOUT);
            if (r < 0 && errno != EINTR) return failed(errno);
            continue;
        }
        errno = 0;
        int r = mnl_cb_run(buf_.data(), static_cast<std::size_t>(n), seq, portid, cb, data);
        if (r < 0) return failed(errno);
        if (r == MNL_CB_STOP || !dump) return 0;
    }
}

// ------------------------------------------------------------------ the meter

std::optional<std::string> LoadMeter::check(const std::string& spec, std::optional<double> capacity,
                                            const std::string& nic) {
    std::string why;
    auto s = parse_load_spec(spec, &why);
    if (!s) return "load=" + spec + ": " + why;
    if (s->kind == LoadKind::Conns && !capacity)
        return "load=" + spec + " needs capacity=N, the number of connections this host can serve " +
               "(there is nothing to measure it from)";
    if (s->kind == LoadKind::Net && s->iface.empty() && nic.empty())
        return "load=" + spec + " needs an interface: write load=net:IFACE or set nic=";
    return std::nullopt;
}

LoadMeter::LoadMeter(std::string spec, std::optional<double> capacity, std::string nic, unsigned interval_ms,
                     Sink sink, Log log)
    : spec_(std::move(spec)),
      capacity_(capacity),
      interval_ms_(interval_ms),
      sink_(std::move(sink)),
      log_(std::move(log)),
      seq_(static_cast<std::uint32_t>(std::time(nullptr))) {
    parsed_ = parse_load_spec(spec_, &parse_error_);
    if (parsed_ && parsed_->kind == LoadKind::Net) iface_ = parsed_->iface.empty() ? nic : parsed_->iface;
}

LoadMeter::~LoadMeter() {
    if (timer_) g_source_remove(timer_);
}

void LoadMeter::start() {
    sample();
    timer_ = g_timeout_add(interval_ms_, [](gpointer p) -> gboolean {
        static_cast<LoadMeter*>(p)->sample();
        return G_SOURCE_CONTINUE;
    }, this);
}

void LoadMeter::set_addresses(std::vector<ServiceAddress> held) {
    std::set<ServiceAddress> s(held.begin(), held.end());
    if (s == held_) return;
    held_ = std::move(s);
    if (parsed_ && parsed_->kind == LoadKind::Conns) bytecode_ = conns_bytecode(held_, parsed_->port);
}

void LoadMeter::fail(const std::string& kind, LogLevel level, const std::string& text) {
    if (failing_.insert(kind).second) log_(level, "load=" + spec_ + ": " + text);
}

void LoadMeter::report(double load, double measured_capacity) {
    double capacity = capacity_ ? *capacity_ : measured_capacity;
    if (auto why = check_sample(load, capacity)) {
        fail("range", LogLevel::Warning, "ignored a sample: " + *why + "; keeping the last good one");
        return;
    }
    if (!failing_.empty()) {
        log_(LogLevel::Info, "load=" + spec_ + ": sampling again");
        failing_.clear();
    }
    sink_(load, capacity);
}

void LoadMeter::sample() {
    if (!parsed_) {
        fail("spec", LogLevel::Error, parse_error_);  // check() refuses this at start; never sampled
        return;
    }
    switch (parsed_->kind) {
    case LoadKind::Cpu: sample_cpu(); break;
    case LoadKind::Net: sample_net(); break;
    case LoadKind::Conns: sample_conns(); break;
    case LoadKind::Exec: sample_exec(); break;
    }
}

void LoadMeter::sample_cpu() {
    auto now = parse_proc_stat(read_small_file("/proc/stat"));
    if (!now) {
        fail("proc_stat", LogLevel::Warning, "cannot read the cpu line of /proc/stat");
        return;
    }
    double cpus = std::max(1.0, static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN)));
    auto previous = std::exchange(last_cpu_, now);
    if (!previous) return;
    if (auto load = cpu_load(*previous, *now, cpus)) report(*load, 100.0 * cpus);
}

void LoadMeter::sample_net() {
    if (iface_.empty()) {
        fail("iface", LogLevel::Error, "no interface to measure (write load=net:IFACE or set nic=)");
        return;
    }
    std::vector<char> req(MNL_SOCKET_BUFFER_SIZE);
    nlmsghdr* nlh = mnl_nlmsg_put_header(req.data());
    nlh->nlmsg_type = RTM_GETLINK;
    nlh->nlmsg_flags = NLM_F_REQUEST;
    auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
    ifi->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, iface_.c_str());  // looked up by name: survives re-creation
    LinkAnswer answer;
    std::int64_t now_us = g_get_monotonic_time();
    if (int err = exchange(&route_, NETLINK_ROUTE, nlh, false, on_link, &answer)) {
        if (err == ENODEV)
            fail("getlink:nodev", LogLevel::Warning, "interface " + iface_ + " does not exist");
        else
            fail("getlink", LogLevel::Warning, "cannot read the statistics of " + iface_ + ": " + errno_text(err));
        last_link_.reset();
        return;
    }
    if (!answer.counters) {
        fail("stats64", LogLevel::Warning, "the kernel gave no 64-bit statistics for " + iface_);
        last_link_.reset();
        return;
    }
    auto previous = std::exchange(last_link_, std::make_pair(*answer.counters, now_us));
    if (!previous) return;
    auto rate = link_rate(previous->first, previous->second, *answer.counters, now_us);
    if (!rate) return;  // counters reset or interface re-created: this sample is the new baseline

    auto speed = parse_link_speed(read_small_file("/sys/class/net/" + iface_ + "/speed"));
    if (speed) last_speed_ = speed;
    if (!capacity_ && !last_speed_) {
        fail("speed", LogLevel::Warning, "the link speed of " + iface_ + " is unknown (/sys/class/net/" + iface_ +
                             "/speed); set capacity= in bytes/s");
        return;
    }
    report(*rate, last_speed_ ? *last_speed_ : 0);
}

void LoadMeter::sample_conns() {
    if (!capacity_) {
        fail("no-capacity", LogLevel::Error, "needs capacity= (refused at start)");
        return;
    }
    if (held_.empty()) {  // no address held: nothing can be connected to one
        report(0, 0);
        return;
    }
    ConnsAnswer answer{&held_, parsed_->port};
    std::vector<char> req(MNL_SOCKET_BUFFER_SIZE + bytecode_.size());
    for (int family : {AF_INET, AF_INET6}) {
        std::fill(req.begin(), req.end(), 0);
        nlmsghdr* nlh = mnl_nlmsg_put_header(req.data());
        nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
        nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
        auto* r = static_cast<inet_diag_req_v2*>(mnl_nlmsg_put_extra_header(nlh, sizeof(inet_diag_req_v2)));
        r->sdiag_family = static_cast<std::uint8_t>(family);
        r->sdiag_protocol = IPPROTO_TCP;
        r->idiag_states = 1u << TCP_ESTABLISHED;
        if (!bytecode_.empty())
            mnl_attr_put(nlh, INET_DIAG_REQ_BYTECODE, bytecode_.size(), bytecode_.data());
        if (int err = exchange(&diag_, NETLINK_SOCK_DIAG, nlh, true, on_sock, &answer)) {
            // A kernel without IPv6 (ipv6.disable=1) has no AF_INET6 sockets to count.
            if (family == AF_INET6 && (err == ENOENT || err == EAFNOSUPPORT)) continue;
            fail(family == AF_INET ? "sock_diag4" : "sock_diag6", LogLevel::Warning,
                 std::string("cannot list the ") + (family == AF_INET ? "IPv4" : "IPv6") +
                     " TCP connections (sock_diag): " + errno_text(err));
            return;
        }
    }
    report(static_cast<double>(answer.count), 0);
}

void LoadMeter::sample_exec() {
    if (exec_ && exec_->running()) return;  // the previous sample is still running: skip, never pile up
    const std::string& path = parsed_->path;
    ChildOptions o;
    o.timeout_ms = interval_ms_;  // a hung load command is killed after one interval
    o.merge_stderr = false;
    exec_ = std::make_unique<ChildProcess>(std::vector<std::string>{path}, o, [this](const ChildResult& r) {
        if (!r.ok()) {
            std::string printed = r.output.empty() ? "" : ", printed '" + printable(r.output) + "'";
            fail("exec", LogLevel::Warning, "failed (" + r.status() + printed + "); keeping the last good sample");
            return;
        }
        std::string why;
        auto v = parse_exec_load(r.output, &why);
        if (!v) {
            fail("exec:output", LogLevel::Warning, "printed '" + printable(r.output) + "', not 'LOAD CAPACITY' (" + why +
                                       "); keeping the last good sample");
            return;
        }
        report(v->first, v->second);
    });
}

}  // namespace rais
