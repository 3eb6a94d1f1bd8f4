// TrapSender: SNMPv2c traps with the net-snmp library (see trap_sender.h).
//
// Why not init_snmp(): on Debian's libsnmp40 (5.9.3) init_snmp() loads
// OpenSSL's configuration, creates /var/lib/snmp/cert_indexes, looks for TLS
// certificates, calls setlocale(LC_CTYPE, ""), and parses every MIB under
// /usr/share/snmp/mibs, logging ~35 "Cannot find module" warnings (Debian
// ships no IETF MIBs) — even with DONT_READ_CONFIGS set. A v2c trap needs
// none of it: snmp_sess_init() runs the library's internal set-up (request
// ids, transport domains), which is all snmp_sess_open() and snmp_sess_send()
// use for v2c. (SNMPv3 would need init_snmp() for its engine ID and boots
// counter; that is one reason v3 is left out.)
#include "daemon/outside/trap_sender.h"

#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <set>
#include <string_view>
#include <utility>

// net-snmp's headers are found in /usr/include (a system directory), so
// -Wall -Wextra -Werror do not judge them; its config header redefines
// PACKAGE_* for the rest of this file only, which uses none of them.
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>

namespace rais {

namespace {


// Numeric OIDs (mib/RAIS-MIB.txt). raisMIB is netSnmpPlaypen.7247, an
// experimental arc: it moves under the project's own enterprise number
// before release.
constexpr std::array<oid, 9> kSysUpTime0 = {1, 3, 6, 1, 2, 1, 1, 3, 0};              // SNMPv2-MIB::sysUpTime.0
constexpr std::array<oid, 11> kSnmpTrapOid0 = {1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0};     // SNMPv2-MIB::snmpTrapOID.0
constexpr std::array<oid, 10> kRaisMib = {1, 3, 6, 1, 4, 1, 8072, 9999, 9999, 7247};
constexpr oid kNotificationsArc = 0;   // raisNotifications: raisMIB.0.N
constexpr oid kObjectsArc = 1;         // raisObjects: raisMIB.1.N, sent as instance .0

// Event kinds and their notifications, in the order of their numbers
// (raisMIB.0.1 ...).
struct Kind {
    std::string_view kind, notification;
};
constexpr std::array<Kind, 13> kKinds = {{{"acquire", "raisAcquire"},
                                          {"release", "raisRelease"},
                                          {"acquire_failed", "raisAcquireFailed"},
                                          {"release_failed", "raisReleaseFailed"},
                                          {"test_failed", "raisTestFailed"},
                                          {"test_recovered", "raisTestRecovered"},
                                          {"cannot_assign", "raisCannotAssign"},
                                          {"orphaned", "raisOrphaned"},
                                          {"expired", "raisExpired"},
                                          {"leader", "raisLeader"},
                                          {"dns_update", "raisDnsUpdate"},
                                          {"dns_failed", "raisDnsFailed"},
                                          {"failover", "raisFailover"}}};

// The objects, their numbers under raisObjects and their largest size in
// octets (the SIZE of their SYNTAX in the MIB).
enum class Object : oid { Group = 1, Node = 2, Address = 3, Reason = 4, Time = 5 };
constexpr std::array<std::string_view, 5> kObjectNames = {"raisEventGroup", "raisEventNode", "raisEventAddress",
                                                          "raisEventReason", "raisEventTime"};
constexpr std::size_t kMaxText = 255;    // SnmpAdminString
constexpr std::size_t kMaxAddress = 64;

oid kind_number(std::string_view kind) {
    for (std::size_t i = 0; i < kKinds.size(); ++i)
        if (kKinds[i].kind == kind) return static_cast<oid>(i + 1);
    return 0;
}

// sysUpTime is raisd's uptime (not the host's): measured from this
// constant, initialised before main().
const auto kProcessStart = std::chrono::steady_clock::now();

// Everything net-snmp is called with goes through this lock (net-snmp's
// global state — logging, initialisation — is not ours to share unguarded);
// while it is held, g_log says where the library's own messages go.
std::mutex g_mutex;
const TrapSender::Log* g_log = nullptr;

class LogRoute {   // RAII: net-snmp's messages go to `log` for the lifetime of this object
public:
    explicit LogRoute(const TrapSender::Log& log) : saved_(g_log) { g_log = &log; }
    ~LogRoute() { g_log = saved_; }
    LogRoute(const LogRoute&) = delete;
    LogRoute& operator=(const LogRoute&) = delete;

private:
    const TrapSender::Log* saved_;
};

int on_library_log(int, int, void* serverarg, void*) {
    const auto* m = static_cast<const snmp_log_message*>(serverarg);
    if (!m || !m->msg || !g_log || !*g_log) return 1;
    std::string text = m->msg;
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (text.empty()) return 1;
    LogLevel level = m->priority <= LOG_ERR ? LogLevel::Error : m->priority == LOG_WARNING ? LogLevel::Warning
              : m->priority == LOG_NOTICE ? LogLevel::Notice : m->priority == LOG_INFO ? LogLevel::Info : LogLevel::Debug;
    try {
        (*g_log)(level, "SNMP library: " + text);
    } catch (...) {
    }
    return 1;
}

// Once per process, under g_mutex. Never undone: net-snmp cannot be shut
// down and initialised again safely, and it holds nothing until a session
// is opened.
void init_library() {
    static bool done = false;
    if (done) return;
    done = true;
    // Before anything can log: with no handler registered net-snmp writes to stderr.
    snmp_register_callback(SNMP_CALLBACK_LIBRARY, SNMP_CALLBACK_LOGGING, on_library_log, nullptr);
    snmp_enable_calllog();
    // Belt and braces, should anything call init_snmp() later in this process.
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_PERSIST_STATE, 1);
    netsnmp_ds_set_string(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_APPTYPE, "raisd");
}

struct FreeDeleter {
    void operator()(void* p) const noexcept { std::free(p); }
};
struct SessionCloser {
    void operator()(void* s) const noexcept { snmp_sess_close(s); }
};
struct PduFreer {
    void operator()(netsnmp_pdu* p) const noexcept { snmp_free_pdu(p); }
};
struct AddrinfoFreer {
    void operator()(addrinfo* a) const noexcept { freeaddrinfo(a); }
};
using SessionHandle = std::unique_ptr<void, SessionCloser>;   // snmp_sess_open()'s opaque handle
using PduPtr = std::unique_ptr<netsnmp_pdu, PduFreer>;
using CString = std::unique_ptr<char, FreeDeleter>;           // strings net-snmp mallocs for us

// "HOST[:PORT]", "[V6]:PORT", "[V6]", or a bare IPv6 address.
bool parse_target(const std::string& t, std::string* host, std::uint16_t* port, std::string* why) {
    std::string port_text;
    if (t.empty()) {
        *why = "empty target";
        return false;
    }
    if (t.front() == '[') {
        auto close = t.find(']');
        if (close == std::string::npos) {
            *why = "missing ']'";
            return false;
        }
        *host = t.substr(1, close - 1);
        std::string rest = t.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') {
                *why = "expected ':PORT' after ']'";
                return false;
            }
            port_text = rest.substr(1);
            if (port_text.empty()) {
                *why = "empty port";
                return false;
            }
        }
    } else {
        auto colon = t.find(':');
        if (colon != std::string::npos && t.find(':', colon + 1) == std::string::npos) {
            *host = t.substr(0, colon);
            port_text = t.substr(colon + 1);
            if (port_text.empty()) {
                *why = "empty port";
                return false;
            }
        } else {
            *host = t;   // no colon, or an IPv6 address without brackets (and so without port)
        }
    }
    if (host->empty()) {
        *why = "empty host";
        return false;
    }
    *port = 162;
    if (!port_text.empty()) {
        unsigned long p = 0;
        for (char c : port_text) {
            if (c < '0' || c > '9' || p > 65535) {
                *why = "bad port '" + port_text + "'";
                return false;
            }
            p = p * 10 + static_cast<unsigned long>(c - '0');
        }
        if (p < 1 || p > 65535) {
            *why = "port " + port_text + " out of 1..65535";
            return false;
        }
        *port = static_cast<std::uint16_t>(p);
    }
    return true;
}

// net-snmp's transport specifier for the first address HOST resolves to:
// "udp:192.0.2.1:162" or "udp6:[2001:db8::1]:162". Resolving here rather
// than in net-snmp gives a clear error, and lets a name resolve to IPv6.
bool resolve(const std::string& host, std::uint16_t port, std::string* peer, std::string* why) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* raw = nullptr;
    int rc = getaddrinfo(host.c_str(), nullptr, &hints, &raw);
    std::unique_ptr<addrinfo, AddrinfoFreer> list(raw);
    if (rc != 0 || !list) {
        *why = std::string("cannot resolve '") + host + "': " + gai_strerror(rc);
        return false;
    }
    for (const addrinfo* a = list.get(); a; a = a->ai_next) {
        if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
        char text[NI_MAXHOST];
        if (getnameinfo(a->ai_addr, a->ai_addrlen, text, sizeof text, nullptr, 0, NI_NUMERICHOST) != 0) continue;
        *peer = a->ai_family == AF_INET ? "udp:" + std::string(text) + ":" + std::to_string(port)
                                        : "udp6:[" + std::string(text) + "]:" + std::to_string(port);
        return true;
    }
    *why = "'" + host + "' has no IPv4 or IPv6 address";
    return false;
}

// Cut s to at most max octets without splitting a UTF-8 character.
std::string_view clip_utf8(std::string_view s, std::size_t max) {
    if (s.size() <= max) return s;
    std::size_t n = max;
    // s[n] is the first octet left out: while it continues a character, that
    // character started before n and must go too.
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    return s.substr(0, n);
}

// RFC 2579 DateAndTime, 11 octets, UTC, deci-second resolution.
std::array<unsigned char, 11> date_and_time(std::int64_t unix_ms) {
    std::int64_t secs = unix_ms / 1000, ms = unix_ms % 1000;
    if (ms < 0) {   // floor, for times before 1970 (never expected)
        ms += 1000;
        --secs;
    }
    std::time_t t = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    int year = tm.tm_year + 1900;
    return {static_cast<unsigned char>((year >> 8) & 0xff),
            static_cast<unsigned char>(year & 0xff),
            static_cast<unsigned char>(tm.tm_mon + 1),
            static_cast<unsigned char>(tm.tm_mday),
            static_cast<unsigned char>(tm.tm_hour),
            static_cast<unsigned char>(tm.tm_min),
            static_cast<unsigned char>(tm.tm_sec),   // 0..60, as DateAndTime allows
            static_cast<unsigned char>(ms / 100),
            '+', 0, 0};
}

std::string oid_text(const oid* o, std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s += (i ? "." : "") + std::to_string(o[i]);
    return s;
}

// The varbind name of one of our objects: raisMIB.1.N.0.
std::array<oid, 13> object_oid(Object o) {
    std::array<oid, 13> name{};
    std::copy(kRaisMib.begin(), kRaisMib.end(), name.begin());
    name[10] = kObjectsArc;
    name[11] = static_cast<oid>(o);
    name[12] = 0;
    return name;
}

bool add_text(netsnmp_pdu* pdu, Object o, std::string_view value, std::size_t max) {
    auto name = object_oid(o);
    std::string_view v = clip_utf8(value, max);
    return snmp_pdu_add_variable(pdu, name.data(), name.size(), ASN_OCTET_STR, v.data(), v.size()) != nullptr;
}

}  // namespace

std::string trap_oid_for(const std::string& kind) {
    oid n = kind_number(kind);
    if (!n) return "";
    return oid_text(kRaisMib.data(), kRaisMib.size()) + "." + std::to_string(kNotificationsArc) + "." +
           std::to_string(n);
}

std::vector<std::pair<std::string, std::string>> trap_mib_oids() {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& k : kKinds) out.emplace_back(std::string(k.notification), trap_oid_for(std::string(k.kind)));
    for (std::size_t i = 0; i < kObjectNames.size(); ++i) {
        auto name = object_oid(static_cast<Object>(i + 1));
        // The object itself, without the ".0" instance the varbinds carry.
        out.emplace_back(std::string(kObjectNames[i]), oid_text(name.data(), name.size() - 1));
    }
    return out;
}

struct TrapSender::Impl {
    struct Target {
        std::string text;               // as configured, for messages
        std::string peer;               // net-snmp transport specifier
        SessionHandle session;
        std::set<std::pair<int, int>> failures;   // (net-snmp error, errno) reported since the last success
    };
    Log log;
    std::vector<Target> targets;
    std::set<std::string> unknown_kinds;   // reported once each

    void say(LogLevel level, const std::string& text) const noexcept {
        if (!log) return;
        try {
            log(level, text);
        } catch (...) {
        }
    }

    PduPtr build(const TrapEvent& e, oid kind) const {
        PduPtr pdu(snmp_pdu_create(SNMP_MSG_TRAP2));
        if (!pdu) return nullptr;
        // TimeTicks are hundredths of a second and wrap at 2^32 (497 days).
        auto cs = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                        kProcessStart).count() / 10;
        u_long ticks = static_cast<u_long>(cs) & 0xffffffffUL;
        std::array<oid, 12> trap{};
        std::copy(kRaisMib.begin(), kRaisMib.end(), trap.begin());
        trap[10] = kNotificationsArc;
        trap[11] = kind;
        auto when = date_and_time(e.unix_ms);
        auto time_name = object_oid(Object::Time);
        bool ok =
            snmp_pdu_add_variable(pdu.get(), kSysUpTime0.data(), kSysUpTime0.size(), ASN_TIMETICKS, &ticks,
                                  sizeof ticks) &&
            snmp_pdu_add_variable(pdu.get(), kSnmpTrapOid0.data(), kSnmpTrapOid0.size(), ASN_OBJECT_ID,
                                  trap.data(), trap.size() * sizeof(oid)) &&
            add_text(pdu.get(), Object::Group, e.group, kMaxText) &&
            add_text(pdu.get(), Object::Node, e.node, kMaxText) &&
            add_text(pdu.get(), Object::Address, e.address, kMaxAddress) &&
            add_text(pdu.get(), Object::Reason, e.reason, kMaxText) &&
            snmp_pdu_add_variable(pdu.get(), time_name.data(), time_name.size(), ASN_OCTET_STR, when.data(),
                                  when.size());
        if (!ok) return nullptr;
        return pdu;
    }

    void send_to(Target& t, PduPtr pdu, const std::string& kind) {
        // On success snmp_sess_send() owns (and has freed) the PDU; on failure it is still ours.
        if (snmp_sess_send(t.session.get(), pdu.get())) {
            pdu.release();
            if (!t.failures.empty()) {
                t.failures.clear();
                say(LogLevel::Notice, "SNMP traps to " + t.text + " are sent again (" + kind + ")");
            }
            say(LogLevel::Debug, "SNMP trap " + kind + " sent to " + t.text);
            return;
        }
        int liberr = 0, syserr = 0;
        char* raw = nullptr;
        snmp_sess_error(t.session.get(), &liberr, &syserr, &raw);
        CString msg(raw);
        if (t.failures.insert({liberr, syserr}).second)
            say(LogLevel::Warning, "SNMP trap " + kind + " to " + t.text + " not sent: " +
                              (msg ? std::string(msg.get()) : "unknown error") +
                              " (further failures like this one are not logged until a trap gets through)");
        else
            say(LogLevel::Debug, "SNMP trap " + kind + " to " + t.text + " not sent (same failure as before)");
    }
};

std::optional<std::string> TrapSender::check(const std::vector<std::string>& targets, const std::string& community) {
    if (targets.empty()) return std::string("no SNMP trap target");
    if (community.empty()) return std::string("the SNMP community is empty");
    for (const auto& text : targets) {
        std::string host, why;
        std::uint16_t port = 0;
        if (!parse_target(text, &host, &port, &why)) return "target '" + text + "': " + why;
    }
    return std::nullopt;
}

bool TrapSender::resolve_targets(const std::vector<std::string>& targets, std::vector<std::string>* peers,
                                 std::string* error) {
    std::vector<std::string> out;
    for (const auto& text : targets) {
        std::string host, why, peer;
        std::uint16_t port = 0;
        if (!parse_target(text, &host, &port, &why) || !resolve(host, port, &peer, &why)) {
            if (error) *error = "target '" + text + "': " + why;
            return false;
        }
        out.push_back(peer);
    }
    *peers = std::move(out);
    return true;
}

std::unique_ptr<TrapSender> TrapSender::create(const std::vector<std::string>& targets,
                                               const std::string& community, Log log, std::string* error) {
    if (auto e = check(targets, community)) {
        if (error) *error = *e;
        return nullptr;
    }
    std::vector<std::string> peers;
    if (!resolve_targets(targets, &peers, error)) return nullptr;
    return open(targets, peers, community, std::move(log), error);
}

std::unique_ptr<TrapSender> TrapSender::open(const std::vector<std::string>& targets,
                                             const std::vector<std::string>& peers, const std::string& community,
                                             Log log, std::string* error) {
    auto fail = [&](const std::string& text) -> std::unique_ptr<TrapSender> {
        if (error) *error = text;
        return nullptr;
    };
    if (auto e = check(targets, community)) return fail(*e);
    if (peers.size() != targets.size()) return fail("the SNMP trap targets were not all resolved");

    std::lock_guard<std::mutex> lock(g_mutex);
    LogRoute route(log);
    init_library();

    auto impl = std::make_unique<Impl>();
    impl->log = log;
    std::set<std::string> seen;
    for (std::size_t i = 0; i < targets.size(); ++i) {
        const std::string& text = targets[i];
        const std::string& peer = peers[i];
        if (!seen.insert(text).second) continue;   // the same receiver twice would get every trap twice
        // Only numeric peers: net-snmp would resolve a name here, blocking.
        if (peer.rfind("udp:", 0) != 0 && peer.rfind("udp6:[", 0) != 0)
            return fail("target '" + text + "': '" + peer + "' is not a resolved address");
        netsnmp_session s;
        snmp_sess_init(&s);
        s.version = SNMP_VERSION_2c;
        // snmp_sess_open() copies peername and community; these buffers only
        // need to outlive the call.
        std::string peer_buf = peer, community_buf = community;
        s.peername = peer_buf.data();
        s.community = reinterpret_cast<u_char*>(community_buf.data());
        s.community_len = community_buf.size();
        s.retries = 0;   // traps are not acknowledged: nothing to retry
        SessionHandle session(snmp_sess_open(&s));
        if (!session) {
            int liberr = 0, syserr = 0;
            char* raw = nullptr;
            snmp_error(&s, &liberr, &syserr, &raw);
            CString msg(raw);
            return fail("target '" + text + "': cannot open " + peer + ": " +
                        (msg ? std::string(msg.get()) : "unknown error"));
        }
        // Non-blocking, so that a full socket buffer drops a trap (logged)
        // rather than stalling raisd's main loop; close-on-exec, because
        // net-snmp opens it without and hooks and alert agents need not
        // inherit it.
        if (netsnmp_transport* tr = snmp_sess_transport(session.get()); tr && tr->sock >= 0) {
            int flags = fcntl(tr->sock, F_GETFL);
            if (flags >= 0) fcntl(tr->sock, F_SETFL, flags | O_NONBLOCK);
            int fd_flags = fcntl(tr->sock, F_GETFD);
            if (fd_flags >= 0) fcntl(tr->sock, F_SETFD, fd_flags | FD_CLOEXEC);
        }
        impl->say(LogLevel::Info, "SNMP traps (v2c) go to " + text + (text == peer ? "" : " (" + peer + ")"));
        impl->targets.push_back(Impl::Target{text, peer, std::move(session), {}});
    }
    return std::make_unique<TrapSender>(std::move(impl));
}

TrapSender::TrapSender(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

TrapSender::~TrapSender() {
    if (!impl_) return;
    std::lock_guard<std::mutex> lock(g_mutex);
    LogRoute route(impl_->log);
    impl_->targets.clear();   // closes the sessions, under the lock
}

void TrapSender::send(const TrapEvent& e) noexcept {
    try {
        std::lock_guard<std::mutex> lock(g_mutex);
        LogRoute route(impl_->log);
        oid kind = kind_number(e.kind);
        if (!kind) {
            if (impl_->unknown_kinds.insert(e.kind).second)
                impl_->say(LogLevel::Warning, "SNMP: no notification for event kind '" + e.kind + "'; not sent");
            return;
        }
        for (auto& t : impl_->targets) {
            PduPtr pdu = impl_->build(e, kind);
            if (!pdu) {
                impl_->say(LogLevel::Error, "SNMP trap " + e.kind + ": cannot build the PDU (out of memory?)");
                return;
            }
            impl_->send_to(t, std::move(pdu), e.kind);
        }
    } catch (...) {
        // Only allocation can throw here; a lost trap must not take raisd down.
    }
}

}  // namespace rais
