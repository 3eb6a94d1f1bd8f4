// LoadMeter: samples this host's load and capacity for the group (the
// patent's load objects, DESIGN §5.1 `load=` and `capacity=`), every
// interval, on the main loop, and hands each sample to a Sink.
//
// Measures:
//   cpu          utilization from /proc/stat deltas; capacity 100 x CPUs.
//   net[:IFACE]  bytes/s (the busier of rx and tx) of IFACE (default: the group's nic) from
//                the link's IFLA_STATS64 counters, one RTM_GETLINK per
//                sample; capacity the link speed (/sys/class/net/IFACE/speed).
//   conns[:PORT] established TCP connections whose local address is one of
//                the group's addresses this host holds (set_addresses), and
//                whose local port is PORT when given; counted with one
//                NETLINK_SOCK_DIAG dump per family (clients of a `[::]`
//                listener are IPv6 sockets with v4-mapped addresses, DESIGN
//                §8). Capacity: the configured one, which this measure needs.
//   exec:PATH    PATH prints "LOAD CAPACITY"; killed after one interval.
// A configured `capacity` replaces the measured one for every measure.
//
// Every number from outside (a script's output, /proc/stat, netlink
// counters, /sys link speed) is hostile: a sample reaches the Sink only if
// load and capacity are finite, >= 0 and below kMaxLoadValue (the bound
// peers enforce on Info, core/codec.h). A bad sample is a failed sample:
// logged once per kind of failure, nothing sent, so the Member keeps the
// last good value.
//
// Invariants: nothing here blocks the main loop for longer than one netlink
// request/answer (the kernel answers in our own syscalls; a bounded poll
// guards the rest) or a small /proc or /sys read. Rates need two samples,
// so net and cpu report from their second sample on; a counter that went
// backwards or an interface that was re-created starts a new baseline
// instead of reporting nonsense. Each kind of error is logged once until a
// sample succeeds again, not once per interval.
//
// The pure functions below (spec parsing, /proc/stat, netlink message
// parsing, rates, the sock_diag filter bytecode, counting) take no clock and
// do no I/O, so the unit tests drive them with fixture text and messages
// built in memory.
#pragma once

#include "core/log_level.h"
#include <gio/gio.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/address.h"
#include "daemon/child_process.h"

struct mnl_socket;
struct nlmsghdr;

namespace rais {

// ------------------------------------------------------------------ pure part

enum class LoadKind { Cpu, Net, Conns, Exec };

// One `load=` value, split into its parts.
struct LoadSpec {
    LoadKind kind = LoadKind::Cpu;
    std::string iface;                  // net: empty = the group's nic
    std::optional<std::uint16_t> port;  // conns: local port filter
    std::string path;                   // exec: absolute path
};

// Parses a `load=` value. On failure returns nullopt and fills *why with
// what is wrong with it (without the "load=VALUE" prefix).
std::optional<LoadSpec> parse_load_spec(const std::string& spec, std::string* why = nullptr);

// Why (load, capacity) must not be sent, or nullopt when both are finite,
// >= 0 and below kMaxLoadValue.
std::optional<std::string> check_sample(double load, double capacity);

// Parses what a load=exec: program printed (ChildResult::output, trimmed):
// exactly one line "LOAD CAPACITY", two plain decimal numbers ("12", "0.5",
// "1e3") separated by blanks. nan, inf, hex, negative numbers, numbers that
// overflow or underflow, a missing or an extra field are refused with *why.
// The range is check_sample's business.
std::optional<std::pair<double, double>> parse_exec_load(const std::string& text, std::string* why = nullptr);

// Parses the aggregate "cpu" line of /proc/stat: returns (busy, total)
// jiffies. Idle and iowait are not busy; guest time is already part of user
// time, so it is not added to the total a second time. Every field must be a
// plain unsigned integer.
std::optional<std::pair<double, double>> parse_proc_stat(const std::string& text);

// load=cpu between two parse_proc_stat samples: busy share x 100 x cpus
// (cpus < 1 counts as 1). nullopt when no time passed or the total went
// backwards. The share is clamped to [0, 1]: iowait may go backwards
// (proc(5)), which would otherwise read as more than 100% busy.
std::optional<double> cpu_load(const std::pair<double, double>& before, const std::pair<double, double>& after,
                               double cpus);

// A link's byte counters as one RTM_NEWLINK message shows them.
struct LinkCounters {
    int ifindex = 0;
    std::uint64_t rx_bytes = 0;
    std::uint64_t tx_bytes = 0;
};

// Reads the ifindex and the IFLA_STATS64 byte counters out of an RTM_NEWLINK
// message of `len` bytes. nullopt for anything else, a truncated message or
// one without 64-bit statistics.
std::optional<LinkCounters> parse_link_stats(const void* nlmsg, std::size_t len);

// Bytes/s of the busier direction (max of rx, tx) between two samples taken at monotonic times in µs.
// nullopt when no rate can be told: no time passed, a counter went backwards
// (driver reset) or the interface is not the same one (re-created: new
// ifindex).
std::optional<double> link_rate(const LinkCounters& before, std::int64_t before_us, const LinkCounters& after,
                                std::int64_t after_us);

// Parses /sys/class/net/IFACE/speed (Mbit/s) into bytes/s. nullopt when the
// speed is unknown: -1 (link down, virtual device), 0, empty, garbage or
// beyond kMaxLoadValue.
std::optional<double> parse_link_speed(const std::string& text);

// The local end of one socket from a sock_diag dump. A v4-mapped IPv6
// address (::ffff:a.b.c.d) is returned as the IPv4 address.
struct SockEntry {
    ServiceAddress local;  // prefix 32 or 128
    std::uint16_t port = 0;
};

// Reads one SOCK_DIAG_BY_FAMILY answer (struct inet_diag_msg) of `len`
// bytes. nullopt for other messages, truncated ones, or families other than
// AF_INET and AF_INET6.
std::optional<SockEntry> parse_inet_diag(const void* nlmsg, std::size_t len);

// Whether a socket counts towards load=conns[:PORT]: its local address is
// held (compared without prefix) and, if `port` is given, its local port is
// that port.
bool counts_connection(const SockEntry& e, const std::set<ServiceAddress>& held, std::optional<std::uint16_t> port);
std::size_t count_connections(const std::vector<SockEntry>& entries, const std::set<ServiceAddress>& held,
                              std::optional<std::uint16_t> port);

// Most held addresses conns_bytecode puts into the kernel's filter. The
// kernel's audit of a filter is quadratic in its length (each condition's
// "false" jump is validated by walking the chain from the start): measured
// on a 6.x kernel, one sample (two dumps) costs 1 ms with 256 conditions,
// 2 ms with 512, 18 ms with 2048 -- main-loop time. 512 also keeps the
// filter (at most 16 KiB) far from the attribute's 64 KiB and the 16-bit
// jump offsets.
constexpr std::size_t kMaxConnsConditions = 512;

// The in-kernel filter (INET_DIAG_REQ_BYTECODE) for load=conns[:PORT]:
// "source is HELD_1 (port PORT) or source is HELD_2 (port PORT) or ...", one
// INET_DIAG_BC_S_COND per held address with a full-length prefix, chained by
// INET_DIAG_BC_JMP the way ss(8) compiles "or". An IPv4 condition also
// matches the v4-mapped address of an IPv6 socket (the kernel does that), so
// the same bytecode serves both families' dumps. With more than
// kMaxConnsConditions addresses only the port is filtered in the kernel (one
// S_COND of family AF_UNSPEC), or nothing at all without a port: user space
// checks every answer with counts_connection anyway. Empty when `held` is
// empty.
std::vector<std::uint8_t> conns_bytecode(const std::set<ServiceAddress>& held, std::optional<std::uint16_t> port);

// ------------------------------------------------------------------ the meter

class LoadMeter {
public:
    using Sink = std::function<void(double load, double capacity)>;
    // level: 0 debug, 1 info, 2 notice, 3 warning, 4 error.
    using Log = std::function<void(LogLevel level, const std::string& text)>;

    // Returns an error message (naming the load= value) when `spec` cannot be
    // measured with this configuration: an unknown measure, conns without
    // `capacity`, net without an interface (neither net:IFACE nor `nic`).
    // Does not look at the host (the interface may appear later).
    static std::optional<std::string> check(const std::string& spec, std::optional<double> capacity,
                                            const std::string& nic);

    // `capacity`: the configured one, if any; `nic`: the group's interface
    // (default for net). Nothing is sampled before start().
    LoadMeter(std::string spec, std::optional<double> capacity, std::string nic, unsigned interval_ms, Sink sink,
              Log log);
    ~LoadMeter();
    LoadMeter(const LoadMeter&) = delete;
    LoadMeter& operator=(const LoadMeter&) = delete;

    void start();

    // The group's addresses this host holds now (prefixes are ignored); only
    // load=conns uses them. Call whenever the held set changes.
    void set_addresses(std::vector<ServiceAddress> held);

    // Takes one sample now (start() does this every interval).
    void sample();

private:
    struct MnlClose {
        void operator()(mnl_socket* s) const;
    };
    using MnlPtr = std::unique_ptr<mnl_socket, MnlClose>;
    using AnswerFn = int (*)(const nlmsghdr* nlh, void* data);  // libmnl's mnl_cb_t

    void sample_cpu();
    void sample_net();
    void sample_conns();
    void sample_exec();
    // One netlink request and its answer on *sock; 0 or an errno value.
    int exchange(MnlPtr* sock, int bus, nlmsghdr* req, bool dump, AnswerFn cb, void* data);
    void report(double load, double measured_capacity);
    // Logs `text` unless an error of this kind was logged since the last
    // good sample.
    void fail(const std::string& kind, LogLevel level, const std::string& text);

    std::string spec_;
    std::optional<LoadSpec> parsed_;
    std::string parse_error_;
    std::optional<double> capacity_;
    std::string iface_;  // net: the interface measured
    unsigned interval_ms_;
    Sink sink_;
    Log log_;
    guint timer_ = 0;
    std::set<std::string> failing_;  // kinds of error logged since the last good sample

    // cpu
    std::optional<std::pair<double, double>> last_cpu_;
    // net
    MnlPtr route_;
    std::optional<std::pair<LinkCounters, std::int64_t>> last_link_;
    std::optional<double> last_speed_;  // the last link speed read, used while it reads as unknown
    // conns
    MnlPtr diag_;
    std::set<ServiceAddress> held_;
    std::vector<std::uint8_t> bytecode_;
    // net and conns
    std::uint32_t seq_ = 0;
    std::vector<char> buf_;  // answers
    // exec
    std::unique_ptr<ChildProcess> exec_;
};

}  // namespace rais
