// DnsUpdater: RFC 2136 updates with TSIG through ldns (see dns_updater.h).
//
// How ldns is used, and why not ldns_resolver_send_pkt(): that function
// throws the answer away when its TSIG does not verify, and a server that
// rejects our signature answers NOTAUTH with an unsigned TSIG carrying the
// error (BADSIG, BADKEY, BADTIME) — exactly the answer an operator needs to
// see. So requests are built (ldns_update_pkt_new, ldns_pkt_query_new),
// signed (ldns_pkt_tsig_sign) and sent with ldns_send(), which verifies the
// answer's TSIG against the resolver's key and returns the answer together
// with LDNS_STATUS_CRYPTO_TSIG_BOGUS when it does not verify; the fall-back
// to TCP on truncation (ldns_resolver_send_pkt's other job) is done here.
// A fresh resolver per exchange: ldns marks a server that did not answer as
// unreachable for the resolver's lifetime. Key files and the algorithms
// ldns can sign with are tsig_key's.
#include "daemon/outside/dns_updater.h"

#include "core/parameters.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <utility>

#include "core/glib_ptr.h"

// ldns's common.h defines bool, true and false as macros unless
// __bool_true_false_are_defined is set, which <stdbool.h> does (also in C++).
#include <stdbool.h>
#include <ldns/ldns.h>

namespace rais {

namespace {

// ------------------------------------------------------------------ limits

// One exchange with the server: kTries tries of kTryTimeout each (over UDP,
// and again over TCP only when the answer came back truncated).
constexpr int kTryTimeoutSeconds = 1;
constexpr int kTries = 2;
constexpr int kBudgetSeconds = kTryTimeoutSeconds * kTries;
// After no answer over UDP: how long a TCP connect may take to tell
// "nothing listens there" from "nothing answers".
constexpr int kProbeMs = 300;
constexpr std::uint16_t kTsigFudge = 300;   // s, as BIND and nsupdate use
constexpr unsigned kMaxTtl = 2147483647u;   // RFC 2181 §8

// ------------------------------------------------------------------ ldns ownership

struct LdnsDeleter {
    void operator()(ldns_resolver* r) const { ldns_resolver_deep_free(r); }
    void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
    void operator()(ldns_rr* rr) const { ldns_rr_free(rr); }
    void operator()(ldns_rr_list* l) const { ldns_rr_list_deep_free(l); }
    void operator()(ldns_rdf* d) const { ldns_rdf_deep_free(d); }
    void operator()(char* s) const { std::free(s); }   // strings ldns allocates (LDNS_FREE is free)
};
using ResolverPtr = std::unique_ptr<ldns_resolver, LdnsDeleter>;
using PktPtr = std::unique_ptr<ldns_pkt, LdnsDeleter>;
using RrPtr = std::unique_ptr<ldns_rr, LdnsDeleter>;
using RrListPtr = std::unique_ptr<ldns_rr_list, LdnsDeleter>;
using RdfPtr = std::unique_ptr<ldns_rdf, LdnsDeleter>;
using LdnsString = std::unique_ptr<char, LdnsDeleter>;

struct Fd {   // a socket, closed on scope exit
    int fd = -1;
    explicit Fd(int f) : fd(f) {}
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
};

// ------------------------------------------------------------------ settings

// Everything an operation needs, checked by create() and immutable after:
// shared with the worker threads by const pointer.
struct Settings {
    std::string server;        // "127.0.0.1:15353", "[::1]:53" (for messages)
    std::string address;       // "127.0.0.1", "::1"
    bool v6 = false;
    std::uint16_t port = 53;
    std::string zone;          // absolute: "rais.test."
    std::string owner;         // absolute: "web.rais.test."
    std::uint32_t ttl = 30;
    std::optional<TsigKey> key;
    std::string ldns_algorithm;   // the algorithm name as ldns wants it: "hmac-sha256."
};

struct Address {   // one parsed address
    bool v6 = false;
    unsigned char bytes[16] = {};
    std::string text;   // canonical
    std::size_t size() const { return v6 ? 16 : 4; }
};

std::optional<Address> parse_address(const std::string& text) {
    Address a;
    if (inet_pton(AF_INET, text.c_str(), a.bytes) == 1) {
        a.v6 = false;
    } else if (inet_pton(AF_INET6, text.c_str(), a.bytes) == 1) {
        a.v6 = true;
    } else {
        return std::nullopt;
    }
    char buf[INET6_ADDRSTRLEN] = {};
    if (!inet_ntop(a.v6 ? AF_INET6 : AF_INET, a.bytes, buf, sizeof buf)) return std::nullopt;
    a.text = buf;
    return a;
}

std::string join(const std::set<std::string>& s) {
    std::string out = "{";
    for (const auto& a : s) out += (out.size() > 1 ? ", " : "") + a;
    return out + "}";
}

std::string trim(const std::string& s) {
    auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return {};
    auto e = s.find_last_not_of(" \t\r\n");
    return s.substr(b, e - b + 1);
}

// "ADDRESS[:PORT]", "[IPv6]:PORT", "[IPv6]" or a bare IPv6 address.
bool parse_server(const std::string& text, Settings* s, std::string* error) {
    std::string host, port;
    if (text.empty()) {
        *error = "dns_server is empty";
        return false;
    }
    if (text[0] == '[') {
        auto close = text.find(']');
        if (close == std::string::npos) {
            *error = "dns_server '" + text + "': missing ']'";
            return false;
        }
        host = text.substr(1, close - 1);
        std::string rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest[0] != ':') {
                *error = "dns_server '" + text + "': expected ':PORT' after ']'";
                return false;
            }
            port = rest.substr(1);
            if (port.empty()) {
                *error = "dns_server '" + text + "': empty port";
                return false;
            }
        }
    } else if (std::count(text.begin(), text.end(), ':') == 1) {
        auto colon = text.find(':');
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (port.empty()) {
            *error = "dns_server '" + text + "': empty port";
            return false;
        }
    } else {
        host = text;   // IPv4 without port, or a bare IPv6 address
    }
    auto a = parse_address(host);
    if (!a) {
        *error = "dns_server '" + text + "': '" + host + "' is not an IPv4 or IPv6 address";
        return false;
    }
    if (text[0] == '[' && !a->v6) {
        *error = "dns_server '" + text + "': brackets are for IPv6 addresses";
        return false;
    }
    unsigned long p = 53;
    if (!port.empty()) {
        if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 ||
            (p = std::strtoul(port.c_str(), nullptr, 10)) == 0 || p > 65535) {
            *error = "dns_server '" + text + "': port '" + port + "' is not a number from 1 to 65535";
            return false;
        }
    }
    s->address = a->text;
    s->v6 = a->v6;
    s->port = static_cast<std::uint16_t>(p);
    s->server = (a->v6 ? "[" + a->text + "]" : a->text) + ":" + std::to_string(p);
    return true;
}

// Absolute domain name text as ldns prints it, or nullopt when not a name.
std::optional<std::string> normalize_dname(std::string text) {
    if (text.empty()) return std::nullopt;
    if (text.back() != '.') text += '.';
    RdfPtr d(ldns_dname_new_frm_str(text.c_str()));
    if (!d) return std::nullopt;
    LdnsString s(ldns_rdf2str(d.get()));
    if (!s) return std::nullopt;
    return std::string(s.get());
}

bool names_equal(const std::string& a, const std::string& b) {
    RdfPtr da(ldns_dname_new_frm_str(a.c_str())), db(ldns_dname_new_frm_str(b.c_str()));
    return da && db && ldns_dname_compare(da.get(), db.get()) == 0;
}

bool is_subdomain(const std::string& sub, const std::string& parent) {
    RdfPtr ds(ldns_dname_new_frm_str(sub.c_str())), dp(ldns_dname_new_frm_str(parent.c_str()));
    return ds && dp && ldns_dname_is_subdomain(ds.get(), dp.get());
}

// ------------------------------------------------------------------ results

DnsResult make_result(DnsOutcome outcome, std::string detail) {
    DnsResult r;
    r.ok = outcome == DnsOutcome::Ok;
    r.outcome = outcome;
    r.detail = std::move(detail);
    return r;
}

std::string rcode_name(int rcode) {
    static const char* const names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
                                        "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"};
    if (rcode >= 0 && rcode < static_cast<int>(sizeof names / sizeof names[0])) return names[rcode];
    return "RCODE " + std::to_string(rcode);
}

std::string tsig_error_name(unsigned error) {
    switch (error) {
    case 16: return "BADSIG";
    case 17: return "BADKEY";
    case 18: return "BADTIME";
    case 19: return "BADMODE";
    case 20: return "BADNAME";
    case 21: return "BADALG";
    case 22: return "BADTRUNC";
    case 23: return "BADCOOKIE";
    default: return rcode_name(static_cast<int>(error));
    }
}

// The error field of the answer's TSIG record (0 when none).
unsigned tsig_error(const ldns_pkt* p) {
    const ldns_rr* tsig = ldns_pkt_tsig(p);
    if (!tsig || ldns_rr_rd_count(tsig) < 6 || !ldns_rr_rdf(tsig, 5)) return 0;
    return ldns_rdf2native_int16(ldns_rr_rdf(tsig, 5));
}

// ------------------------------------------------------------------ talking to the server

// After UDP brought no answer: what a TCP connect to the same port says.
std::string probe_tcp(const Settings& s) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (s.v6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(s.port);
        inet_pton(AF_INET6, s.address.c_str(), &a->sin6_addr);
        len = sizeof *a;
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        a->sin_family = AF_INET;
        a->sin_port = htons(s.port);
        inet_pton(AF_INET, s.address.c_str(), &a->sin_addr);
        len = sizeof *a;
    }
    Fd sock(socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (sock.fd < 0) return {};
    int err = 0;
    if (connect(sock.fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        err = errno;
        if (err == EINPROGRESS) {
            pollfd p{sock.fd, POLLOUT, 0};
            if (poll(&p, 1, kProbeMs) <= 0) return {};   // silent: nothing to add to "timeout"
            socklen_t elen = sizeof err;
            if (getsockopt(sock.fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) err = errno;
        }
    }
    std::string port = std::to_string(s.port);
    if (err == 0) return "TCP port " + port + " accepts connections, but nothing answered over UDP";
    if (err == ECONNREFUSED) return "TCP port " + port + ": connection refused (is the DNS server running?)";
    return "TCP port " + port + ": " + g_strerror(err);   // thread-safe, unlike strerror
}

ResolverPtr make_resolver(const Settings& s, bool tcp) {
    ResolverPtr r(ldns_resolver_new());
    if (!r) return r;
    RdfPtr ns(ldns_rdf_new_frm_str(s.v6 ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A, s.address.c_str()));
    if (!ns || ldns_resolver_push_nameserver(r.get(), ns.get()) != LDNS_STATUS_OK) return nullptr;   // copies ns
    ldns_resolver_set_port(r.get(), s.port);
    ldns_resolver_set_timeout(r.get(), timeval{kTryTimeoutSeconds, 0});
    ldns_resolver_set_retry(r.get(), kTries);
    ldns_resolver_set_retrans(r.get(), 0);
    ldns_resolver_set_usevc(r.get(), tcp);
    ldns_resolver_set_fallback(r.get(), false);   // done by exchange()
    ldns_resolver_set_random(r.get(), false);
    ldns_resolver_set_recursive(r.get(), false);
    if (s.key) {   // ldns_send() verifies the answer's TSIG with these
        ldns_resolver_set_tsig_keyname(r.get(), s.key->name.c_str());
        ldns_resolver_set_tsig_algorithm(r.get(), s.ldns_algorithm.c_str());
        ldns_resolver_set_tsig_keydata(r.get(), s.key->secret.c_str());
    }
    return r;
}

// A fresh random id, and the TSIG signature when a key is in use.
std::optional<DnsResult> prepare_request(const Settings& s, ldns_pkt* p) {
    ldns_pkt_set_random_id(p);
    if (!s.key) return std::nullopt;
    ldns_status st = ldns_pkt_tsig_sign(p, s.key->name.c_str(), s.key->secret.c_str(), kTsigFudge,
                                        s.ldns_algorithm.c_str(), nullptr);
    if (st != LDNS_STATUS_OK)
        return make_result(DnsOutcome::Invalid, "cannot sign with TSIG key " + s.key->name + " (" + s.key->algorithm +
                                                    "): " + ldns_get_errorstr_by_id(st));
    return std::nullopt;
}

struct Answer {
    PktPtr pkt;
    bool verified = false;               // TSIG checked (or no key in use)
    std::optional<DnsResult> failure;    // no usable answer
};

// Sends the (signed) request and returns the answer: UDP, then TCP when
// the answer is truncated.
Answer exchange(const Settings& s, const ldns_pkt* query) {
    Answer a;
    for (bool tcp : {false, true}) {
        ResolverPtr r = make_resolver(s, tcp);
        if (!r) {
            a.failure = make_result(DnsOutcome::Invalid, "cannot set up a resolver for " + s.server);
            return a;
        }
        ldns_pkt* raw = nullptr;
        auto t0 = std::chrono::steady_clock::now();
        ldns_status st = ldns_send(&raw, r.get(), query);
        PktPtr reply(raw);
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (!reply) {
            std::string d;
            if (secs >= kBudgetSeconds * 0.9)
                d = "timeout after " + std::to_string(kBudgetSeconds) + " s: no answer from " + s.server;
            else
                d = "cannot reach " + s.server + " (ldns: " + ldns_get_errorstr_by_id(st) + ")";
            if (tcp) {
                d += " over TCP";
            } else {
                std::string probe = probe_tcp(s);
                if (!probe.empty()) d += "; " + probe;
            }
            a.failure = make_result(DnsOutcome::NoAnswer, d);
            return a;
        }
        if (ldns_pkt_id(reply.get()) != ldns_pkt_id(query)) {
            a.failure = make_result(DnsOutcome::BadAnswer, "answer from " + s.server + " with id " +
                                                               std::to_string(ldns_pkt_id(reply.get())) +
                                                               " to a request with id " + std::to_string(ldns_pkt_id(query)));
            return a;
        }
        if (!tcp && ldns_pkt_tc(reply.get())) continue;   // truncated: again over TCP
        if (st != LDNS_STATUS_OK && st != LDNS_STATUS_CRYPTO_TSIG_BOGUS) {
            a.failure = make_result(DnsOutcome::BadAnswer,
                                    "bad answer from " + s.server + ": " + ldns_get_errorstr_by_id(st));
            return a;
        }
        a.verified = !s.key || st == LDNS_STATUS_OK;
        a.pkt = std::move(reply);
        return a;
    }
    a.failure = make_result(DnsOutcome::BadAnswer, "answer from " + s.server + " truncated even over TCP");
    return a;
}

// An error answer (any rcode the caller does not handle) as a result.
DnsResult server_error(const Settings& s, const Answer& a, bool update) {
    int rcode = ldns_pkt_get_rcode(a.pkt.get());
    unsigned terr = tsig_error(a.pkt.get());
    std::string d = "server answered " + rcode_name(rcode);
    if (terr) {
        d += " (TSIG " + tsig_error_name(terr) + ")";
        if (terr == 16) d += ": the server does not accept key " + s.key->name + "'s signature (wrong secret?)";
        if (terr == 17) d += ": the server does not know key " + s.key->name;
        if (terr == 18) d += ": the clocks of this host and the server differ by more than 300 s";
    } else if (rcode == LDNS_RCODE_NOTAUTH) {
        d += ": the server is not authoritative for " + s.zone;
    } else if (rcode == LDNS_RCODE_REFUSED) {
        d += update ? ": the server does not allow this update (check its allow-update/update-policy for " +
                          (s.key ? "key " + s.key->name : std::string("unsigned updates")) + " and " + s.owner + ")"
                    : ": the server refuses the query (does it serve " + s.zone + "?)";
    } else if (rcode == LDNS_RCODE_NOTZONE) {
        d += ": " + s.owner + " is not in zone " + s.zone;
    }
    if (s.key && !a.verified && !terr) d += "; the answer's TSIG did not verify";
    return make_result(DnsOutcome::Rejected, d);
}

// The A and AAAA RRsets of the owner name.
DnsResult do_read(const Settings& s, GCancellable* cancel) {
    RdfPtr owner(ldns_dname_new_frm_str(s.owner.c_str()));
    if (!owner) return make_result(DnsOutcome::Invalid, "bad owner name " + s.owner);
    std::set<std::string> found;
    for (ldns_rr_type type : {LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA}) {
        if (g_cancellable_is_cancelled(cancel)) return make_result(DnsOutcome::Invalid, "cancelled");
        PktPtr query(ldns_pkt_query_new(ldns_rdf_clone(owner.get()), type, LDNS_RR_CLASS_IN, 0));
        if (!query) return make_result(DnsOutcome::Invalid, "cannot build a query for " + s.owner);
        if (auto err = prepare_request(s, query.get())) return *err;
        Answer a = exchange(s, query.get());
        if (a.failure) return *a.failure;
        ldns_pkt* p = a.pkt.get();
        int rcode = ldns_pkt_get_rcode(p);
        if (rcode != LDNS_RCODE_NOERROR && rcode != LDNS_RCODE_NXDOMAIN) return server_error(s, a, false);
        if (!a.verified)
            return make_result(DnsOutcome::BadAnswer, "the answer from " + s.server +
                                                          " failed TSIG verification with key " + s.key->name);
        if (!ldns_pkt_aa(p))
            return make_result(DnsOutcome::BadAnswer, s.server + " is not authoritative for " + s.zone +
                                                          " (answer without the AA flag): dns_server must be the zone's primary");
        const ldns_rr_list* answer = ldns_pkt_answer(p);
        for (std::size_t i = 0; answer && i < ldns_rr_list_rr_count(answer); ++i) {
            const ldns_rr* rr = ldns_rr_list_rr(answer, i);
            if (ldns_dname_compare(ldns_rr_owner(rr), owner.get()) != 0) continue;
            if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME)
                return make_result(DnsOutcome::Rejected, s.owner + " is an alias (CNAME) at " + s.server +
                                                             ": it cannot hold addresses");
            if (ldns_rr_get_type(rr) != type || ldns_rr_rd_count(rr) < 1) continue;
            const ldns_rdf* d = ldns_rr_rdf(rr, 0);
            std::size_t want = type == LDNS_RR_TYPE_A ? 4 : 16;
            if (!d || ldns_rdf_size(d) != want) continue;
            char buf[INET6_ADDRSTRLEN] = {};
            if (inet_ntop(type == LDNS_RR_TYPE_A ? AF_INET : AF_INET6, ldns_rdf_data(d), buf, sizeof buf))
                found.insert(buf);
        }
        if (rcode == LDNS_RCODE_NXDOMAIN) break;   // no such name: no AAAA either
    }
    DnsResult r = make_result(DnsOutcome::Ok, "NOERROR");
    r.published = std::move(found);
    r.published_known = true;
    return r;
}

// A record of the update message: owner, type, class, TTL and, when
// `address` is given, its data (RFC 2136 §2.4, §2.5 use empty data for
// "RRset does not exist" and "delete an RRset").
RrPtr make_rr(const ldns_rdf* owner, ldns_rr_type type, ldns_rr_class cls, std::uint32_t ttl, const Address* address) {
    RrPtr rr(ldns_rr_new());
    if (!rr) return rr;
    ldns_rr_set_owner(rr.get(), ldns_rdf_clone(owner));
    ldns_rr_set_type(rr.get(), type);
    ldns_rr_set_class(rr.get(), cls);
    ldns_rr_set_ttl(rr.get(), ttl);
    if (address) {
        ldns_rdf* d = ldns_rdf_new_frm_data(address->v6 ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A, address->size(),
                                            address->bytes);
        if (!d || !ldns_rr_push_rdf(rr.get(), d)) {   // the record owns d once pushed
            if (d) ldns_rdf_deep_free(d);
            return nullptr;
        }
    }
    return rr;
}

bool push(ldns_rr_list* list, RrPtr rr) {
    if (!rr || !ldns_rr_list_push_rr(list, rr.get())) return false;
    rr.release();   // the list owns it now
    return true;
}

DnsResult do_replace(const Settings& s, const std::set<std::string>& expected_text,
                     const std::set<std::string>& addresses_text, GCancellable* cancel) {
    // Canonical text -> address: "2001:2::1" and "2001:02:0::1" are one record.
    std::map<std::string, Address> expected, addresses;
    for (const auto* in : {&expected_text, &addresses_text}) {
        for (const auto& t : *in) {
            auto a = parse_address(t);
            if (!a) return make_result(DnsOutcome::Invalid, "not an IPv4 or IPv6 address: '" + t + "'");
            (in == &expected_text ? expected : addresses).emplace(a->text, *a);
        }
    }
    RdfPtr owner(ldns_dname_new_frm_str(s.owner.c_str()));
    RdfPtr zone(ldns_dname_new_frm_str(s.zone.c_str()));
    RrListPtr prerequisites(ldns_rr_list_new()), updates(ldns_rr_list_new());
    if (!owner || !zone || !prerequisites || !updates) return make_result(DnsOutcome::Invalid, "out of memory");
    bool built = true;
    for (ldns_rr_type type : {LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA}) {
        bool v6 = type == LDNS_RR_TYPE_AAAA;
        bool any = false;
        for (const auto& [text, e] : expected) {   // RRset exists (value dependent): zone class, TTL 0, the data
            if (e.v6 != v6) continue;
            built &= push(prerequisites.get(), make_rr(owner.get(), type, LDNS_RR_CLASS_IN, 0, &e));
            any = true;
        }
        if (!any)   // RRset does not exist: class NONE, TTL 0, no data
            built &= push(prerequisites.get(), make_rr(owner.get(), type, LDNS_RR_CLASS_NONE, 0, nullptr));
        // Delete the RRset: class ANY, TTL 0, no data.
        built &= push(updates.get(), make_rr(owner.get(), type, LDNS_RR_CLASS_ANY, 0, nullptr));
    }
    for (const auto& [text, a] : addresses)   // Add to an RRset: zone class, the TTL, the data
        built &= push(updates.get(),
                      make_rr(owner.get(), a.v6 ? LDNS_RR_TYPE_AAAA : LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, s.ttl, &a));
    if (!built) return make_result(DnsOutcome::Invalid, "cannot build the update for " + s.owner);
    // The packet takes the zone name (its zone section) and copies the lists.
    PktPtr update(ldns_update_pkt_new(zone.release(), LDNS_RR_CLASS_IN, prerequisites.get(), updates.get(), nullptr));
    if (!update) return make_result(DnsOutcome::Invalid, "cannot build the update for " + s.owner);
    ldns_pkt_set_rd(update.get(), false);   // RFC 2136 §2.2: no flags in an UPDATE
    if (auto err = prepare_request(s, update.get())) return *err;

    if (g_cancellable_is_cancelled(cancel)) return make_result(DnsOutcome::Invalid, "cancelled");
    Answer a = exchange(s, update.get());
    if (a.failure) return *a.failure;
    int rcode = ldns_pkt_get_rcode(a.pkt.get());
    if (rcode == LDNS_RCODE_NOERROR) {
        if (!a.verified)
            return make_result(DnsOutcome::BadAnswer, "the server's NOERROR failed TSIG verification with key " +
                                                          s.key->name + ": the update may have been applied");
        DnsResult r = make_result(DnsOutcome::Ok, "NOERROR");
        for (const auto& [text, a] : addresses) r.published.insert(text);
        r.published_known = true;
        return r;
    }
    if (rcode == LDNS_RCODE_NXRRSET || rcode == LDNS_RCODE_YXRRSET || rcode == LDNS_RCODE_NXDOMAIN ||
        rcode == LDNS_RCODE_YXDOMAIN) {
        std::set<std::string> believed;
        for (const auto& [text, e] : expected) believed.insert(text);
        DnsResult r = make_result(DnsOutcome::Prerequisite, "prerequisite failed (" + rcode_name(rcode) + "): " +
                                                                 s.owner + " did not hold " + join(believed));
        if (g_cancellable_is_cancelled(cancel)) return r;
        DnsResult fresh = do_read(s, cancel);
        if (fresh.ok) {
            r.published = std::move(fresh.published);
            r.published_known = true;
            r.detail += "; the server has " + join(r.published);
        } else {
            r.detail += "; reading it afresh failed: " + fresh.detail;
        }
        return r;
    }
    return server_error(s, a, true);
}

}  // namespace

// ------------------------------------------------------------------ public helpers

std::optional<std::string> canonical_address(const std::string& text) {
    auto a = parse_address(text);
    if (!a) return std::nullopt;
    return a->text;
}

// ------------------------------------------------------------------ DnsUpdater

struct DnsUpdater::Impl {
    std::shared_ptr<const Settings> settings;
    bool busy = false;
    GObjectPtr<GCancellable> cancellable{g_cancellable_new()};
};

namespace {

enum class Op { Read, Replace, Refuse };

// One operation: owned by its GTask (task data). The worker thread reads the
// inputs and writes `result`; `owner` and `done` are touched only on the
// caller's thread, in on_task_done().
struct Job {
    Op op = Op::Read;
    std::shared_ptr<const Settings> settings;
    std::set<std::string> expected, addresses;
    std::string refusal;
    DnsResult result;
    std::weak_ptr<DnsUpdater::Impl> owner;
    DnsUpdater::Done done;
    bool holds_busy = false;
};

void free_job(gpointer p) { std::unique_ptr<Job>{static_cast<Job*>(p)}; }

void run_job(GTask* task, gpointer, gpointer data, GCancellable* cancel) {
    auto* job = static_cast<Job*>(data);
    try {
        switch (job->op) {
        case Op::Read: job->result = do_read(*job->settings, cancel); break;
        case Op::Replace: job->result = do_replace(*job->settings, job->expected, job->addresses, cancel); break;
        case Op::Refuse: job->result = make_result(DnsOutcome::Invalid, job->refusal); break;
        }
    } catch (const std::exception& e) {
        job->result = make_result(DnsOutcome::Invalid, std::string("internal error: ") + e.what());
    }
    g_task_return_boolean(task, TRUE);
}

void on_task_done(GObject*, GAsyncResult* res, gpointer) {
    auto* job = static_cast<Job*>(g_task_get_task_data(G_TASK(res)));
    DnsUpdater::Done done = std::move(job->done);   // destroyed here, on the caller's thread
    auto impl = job->owner.lock();                  // keeps the updater's state alive during `done`
    if (!impl) return;                              // the updater is gone: never call done
    if (job->holds_busy) impl->busy = false;
    DnsResult result = std::move(job->result);
    if (!done) return;
    try {
        done(result);
    } catch (const std::exception& e) {
        g_critical("DnsUpdater: exception from a done callback: %s", e.what());
    } catch (...) {
        g_critical("DnsUpdater: exception from a done callback");
    }
}

void start(const std::shared_ptr<DnsUpdater::Impl>& impl, std::unique_ptr<Job> job) {
    job->settings = impl->settings;
    job->owner = impl;
    if (impl->busy) {
        job->op = Op::Refuse;
        job->refusal = "another DNS operation is running";
    } else {
        impl->busy = true;
        job->holds_busy = true;
    }
    GObjectPtr<GTask> task(g_task_new(nullptr, impl->cancellable.get(), on_task_done, nullptr));
    g_task_set_task_data(task.get(), job.release(), free_job);
    g_task_run_in_thread(task.get(), run_job);   // holds its own reference until done
}

}  // namespace

std::optional<std::string> dns_owner_name(const std::string& zone_text, const std::string& name_text,
                                          std::string* error) {
    std::string scratch;
    if (!error) error = &scratch;
    std::string zt = trim(zone_text);
    if (zt.empty()) {
        *error = "dns_zone is empty";
        return std::nullopt;
    }
    auto zone = normalize_dname(zt);
    if (!zone) {
        *error = "dns_zone '" + zt + "' is not a domain name";
        return std::nullopt;
    }
    std::string name = trim(name_text);
    if (name.empty()) {
        *error = "dns_name is empty";
        return std::nullopt;
    }
    std::optional<std::string> owner;
    if (name == "@") {
        owner = zone;
    } else if (name.back() == '.') {
        owner = normalize_dname(name);
    } else {
        // "web.rais.test" in zone rais.test is almost surely meant as the
        // absolute name, not web.rais.test.rais.test.: refuse the guess.
        auto as_absolute = normalize_dname(name);
        if (*zone != "." && as_absolute && (names_equal(*as_absolute, *zone) || is_subdomain(*as_absolute, *zone))) {
            *error = "dns_name '" + name + "' ends in dns_zone " + *zone + " without a trailing dot: write it relative to "
                     "the zone, or absolute with a trailing dot ('" + name + ".')";
            return std::nullopt;
        }
        owner = normalize_dname(*zone == "." ? name + "." : name + "." + *zone);
    }
    if (!owner) {
        *error = "dns_name '" + name + "' is not a domain name (or too long within " + *zone + ")";
        return std::nullopt;
    }
    if (!names_equal(*owner, *zone) && !is_subdomain(*owner, *zone)) {
        *error = "dns_name '" + name + "' is not within dns_zone " + *zone;
        return std::nullopt;
    }
    return owner;
}

namespace {

// Everything create() and check() verify. On error: the parameter, the
// message (which names it too) and whether the fault is this host's (the key
// file is a local file) rather than the group-wide values'.
bool prepare(const DnsTarget& t, Settings* s, std::string* key, std::string* error, bool* host_local) {
    *host_local = false;
    *key = name(Param::DnsServer);
    if (!parse_server(trim(t.server), s, error)) return false;
    auto zone = normalize_dname(trim(t.zone));
    *key = name(trim(t.zone).empty() || !zone ? Param::DnsZone : Param::DnsName);
    auto owner = dns_owner_name(t.zone, t.name, error);
    if (!owner) return false;
    s->zone = *zone;
    s->owner = *owner;

    *key = name(Param::DnsTtl);
    if (t.ttl > kMaxTtl) {
        *error = "dns_ttl " + std::to_string(t.ttl) + " is larger than " + std::to_string(kMaxTtl);
        return false;
    }
    s->ttl = t.ttl;

    if (!t.key_file.empty()) {
        *key = name(Param::DnsKey);
        *host_local = true;
        gchar* raw = nullptr;
        gsize len = 0;
        GError* gerr = nullptr;
        if (!g_file_get_contents(t.key_file.c_str(), &raw, &len, &gerr)) {
            GErrorPtr e(gerr);
            *error = "dns_key " + t.key_file + ": " + (e ? e->message : "cannot read");
            return false;
        }
        GCharPtr contents(raw);
        std::string why;
        auto tsig = parse_bind_key(std::string(contents.get(), len), &why);
        if (!tsig) {
            *error = "dns_key " + t.key_file + ": " + why;
            return false;
        }
        auto alg = ldns_tsig_algorithm(tsig->algorithm, &why);
        if (!alg) {   // parse_bind_key() checked it already
            *error = "dns_key " + t.key_file + ": " + why;
            return false;
        }
        s->ldns_algorithm = *alg;
        s->key = std::move(tsig);
    }
    *host_local = false;
    key->clear();
    return true;
}

}  // namespace

std::optional<DnsCheck> DnsUpdater::check(const DnsTarget& t) {
    Settings s;
    DnsCheck c;
    if (prepare(t, &s, &c.key, &c.message, &c.host_local)) return std::nullopt;
    return c;
}

std::unique_ptr<DnsUpdater> DnsUpdater::create(const DnsTarget& t, std::string* error) {
    std::string scratch, key;
    if (!error) error = &scratch;
    auto s = std::make_shared<Settings>();
    bool host_local = false;
    if (!prepare(t, s.get(), &key, error, &host_local)) return nullptr;
    auto impl = std::make_shared<Impl>();
    impl->settings = std::move(s);
    return std::make_unique<DnsUpdater>(std::move(impl));
}

DnsUpdater::DnsUpdater(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

DnsUpdater::~DnsUpdater() {
    // The worker stops at its next step; its completion finds no owner and
    // drops `done` (see on_task_done).
    if (impl_) g_cancellable_cancel(impl_->cancellable.get());
}

void DnsUpdater::read(Done done) {
    auto job = std::make_unique<Job>();
    job->op = Op::Read;
    job->done = std::move(done);
    start(impl_, std::move(job));
}

void DnsUpdater::replace(const std::set<std::string>& expected, const std::set<std::string>& addresses, Done done) {
    auto job = std::make_unique<Job>();
    job->op = Op::Replace;
    job->expected = expected;
    job->addresses = addresses;
    job->done = std::move(done);
    start(impl_, std::move(job));
}

bool DnsUpdater::busy() const { return impl_->busy; }
const std::string& DnsUpdater::owner() const { return impl_->settings->owner; }
const std::string& DnsUpdater::server() const { return impl_->settings->server; }

}  // namespace rais
