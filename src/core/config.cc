#include "core/config.h"

#include "common/group_name.h"
#include "core/codec.h"
#include "core/glib_ptr.h"

#include <glib.h>

#include <algorithm>

#include <cmath>
#include <cstdlib>
#include <locale>
#include <map>
#include <set>
#include <sstream>

namespace rais {

const char* to_string(Placement p) { return p == Placement::Random ? "random" : "least-loaded"; }

const char* to_string(Fencing f) {
    switch (f) {
    case Fencing::Require: return "require";
    case Fencing::Off: return "off";
    case Fencing::Auto: break;
    }
    return "auto";
}

const std::vector<std::string>& config_keys() {
    static const std::vector<std::string> keys = {
        "addresses", "group", "nic", "interval", "failback", "orphan_timeout", "restart_grace",
        "fencing", "placement", "tests", "test_interval", "test_failures", "load",
        "dns_server", "dns_zone", "dns_name", "dns_ttl", "dns_key", "high_water", "low_water",
        "min_addresses", "hook", "capacity", "arp_probe_ms", "announce_interval", "stop_timeout",
        "snmp_traps", "snmp_community"};
    return keys;
}

namespace {

std::vector<std::string> split_words(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    std::string w;
    while (in >> w) out.push_back(w);
    return out;
}

ConfigError error(const std::string& key, const std::string& value, const std::string& what) {
    return {key, value, "parameter '" + key + "': " + what + " (value '" + value + "')"};
}

std::optional<ConfigError> parse_uint(const std::string& key, const std::string& v, unsigned lo,
                                      unsigned hi, unsigned* out) {
    if (v.empty() || v.size() > 10 || v.find_first_not_of("0123456789") != std::string::npos)
        return error(key, v, "expected a whole number");
    unsigned long n = std::strtoul(v.c_str(), nullptr, 10);
    if (n < lo || n > hi)
        return error(key, v, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    *out = static_cast<unsigned>(n);
    return std::nullopt;
}

std::optional<ConfigError> parse_real(const std::string& key, const std::string& v, double lo,
                                      double hi, double* out) {
    char* end = nullptr;
    double d = v.empty() ? NAN : g_ascii_strtod(v.c_str(), &end);
    if (v.empty() || (end && *end) || !std::isfinite(d)) return error(key, v, "expected a number");
    if (d < lo || d > hi) {
        std::ostringstream m;
        m << "must be between " << lo << " and " << hi;
        return error(key, v, m.str());
    }
    *out = d;
    return std::nullopt;
}

std::optional<ConfigError> parse_bool(const std::string& key, const std::string& v, bool* out) {
    static const std::set<std::string> yes = {"true", "yes", "on", "1"}, no = {"false", "no", "off", "0"};
    std::string l = v;
    for (auto& c : l) c = static_cast<char>(g_ascii_tolower(c));
    if (yes.count(l)) *out = true;
    else if (no.count(l)) *out = false;
    else return error(key, v, "expected true or false");
    return std::nullopt;
}

bool valid_port(const std::string& p) {
    unsigned n = 0;
    return !parse_uint("", p, 1, 65535, &n);
}

bool valid_name(const std::string& s) {
    if (s.empty() || s.size() > 64) return false;
    for (char c : s)
        if (!g_ascii_isalnum(c) && c != '-' && c != '_' && c != '.') return false;
    return true;
}

std::optional<ConfigError> check_test(const std::string& key, const std::string& t) {
    if (t.rfind("tcp:", 0) == 0) {
        if (!valid_port(t.substr(4))) return error(key, t, "tcp: needs a port between 1 and 65535");
    } else if (t.rfind("http:", 0) == 0) {
        std::string url = t.substr(5);
        if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
            return error(key, t, "http: needs a URL starting with http:// or https://");
    } else if (t.rfind("exec:", 0) == 0) {
        if (t.size() < 7 || t[5] != '/') return error(key, t, "exec: needs an absolute path");
    } else {
        return error(key, t, "a test is tcp:PORT, http:URL or exec:PATH");
    }
    return std::nullopt;
}

std::optional<ConfigError> check_load(const std::string& key, const std::string& l) {
    if (l == "cpu" || l == "net" || l == "conns") return std::nullopt;
    if (l.rfind("net:", 0) == 0 && l.size() > 4) return std::nullopt;
    if (l.rfind("conns:", 0) == 0) {
        if (!valid_port(l.substr(6))) return error(key, l, "conns: needs a port between 1 and 65535");
        return std::nullopt;
    }
    if (l.rfind("exec:", 0) == 0) {
        if (l.size() < 7 || l[5] != '/') return error(key, l, "exec: needs an absolute path");
        return std::nullopt;
    }
    return error(key, l, "load is cpu, net[:IFACE], conns[:PORT] or exec:PATH");
}

}  // namespace

namespace {
// Rule 4.10: addresses that can never be a service address. Empty when fine.
std::string special_address(const ServiceAddress& a) {
    const std::uint8_t* b = a.bytes();
    if (a.family() == Family::V4) {
        if (b[0] == 0) return "is in 0.0.0.0/8 (unspecified, \"this network\")";
        if (b[0] == 127) return "is a loopback address";
        if (b[0] >= 224 && b[0] <= 239) return "is a multicast address";
        if (b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255) return "is the broadcast address";
        if (b[0] == 169 && b[1] == 254) return "is a link-local address";
        return "";
    }
    bool zero10 = true;
    for (int i = 0; i < 10; i++) zero10 = zero10 && b[i] == 0;
    bool zero15 = zero10;
    for (int i = 10; i < 15; i++) zero15 = zero15 && b[i] == 0;
    if (zero15 && b[15] == 0) return "is the unspecified address";
    if (zero15 && b[15] == 1) return "is the loopback address";
    if (zero10 && b[10] == 0xff && b[11] == 0xff) return "is an IPv4-mapped address";
    if (b[0] == 0xff) return "is a multicast address";
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return "is a link-local address";
    return "";
}
}  // namespace

std::optional<ConfigError> parse_addresses(const std::string& value, std::vector<PreferredAddress>* out) {
    out->clear();
    std::set<ServiceAddress> seen;
    for (const auto& word : split_words(value)) {
        auto eq = word.find('=');
        if (eq == std::string::npos || eq == 0)
            return error("addresses", word, "expected NODE=ADDRESS/PREFIX");
        std::string node = word.substr(0, eq);
        if (!valid_name(node))
            return error("addresses", word, "node name '" + node + "' is not a valid cluster node name");
        std::string why;
        auto a = ServiceAddress::parse(word.substr(eq + 1), &why);
        if (!a) return error("addresses", word, why);
        if (std::string special = special_address(*a); !special.empty())
            return error("addresses", word, "address " + a->ip() + " " + special + ": not usable as a service address");
        if (!seen.insert(*a).second)
            return error("addresses", word, "address " + a->ip() + " is listed more than once");
        out->push_back({node, *a});
    }
    if (out->empty()) return error("addresses", value, "at least one NODE=ADDRESS/PREFIX is required");
    return std::nullopt;
}

std::optional<ConfigError> parse_config(const std::vector<std::pair<std::string, std::string>>& pairs,
                                        GroupConfig* out) {
    std::map<std::string, std::string> kv;
    const auto& keys = config_keys();
    for (const auto& [k, v] : pairs) {
        bool known = false;
        for (const auto& key : keys) known = known || key == k;
        if (!known) return ConfigError{k, v, "unknown parameter '" + k + "'"};
        kv[k] = v;
    }
    GroupConfig c;
    auto has = [&](const char* k) { return kv.count(k) > 0; };
    std::optional<ConfigError> e;
    if (!has("addresses")) return ConfigError{"addresses", "", "parameter 'addresses' is required"};
    if ((e = parse_addresses(kv["addresses"], &c.addresses))) return e;
    if (has("group")) {
        c.group = kv["group"];
        if (!valid_group_name(c.group)) return error("group", c.group, std::string("use ") + kGroupNameRule);
    }
    if (has("nic")) {
        c.nic = kv["nic"];
        if (!c.nic.empty() && (c.nic.size() > 15 || c.nic.find_first_of("/ :") != std::string::npos))
            return error("nic", c.nic, "not a valid interface name");
    }
    if (has("interval") && (e = parse_uint("interval", kv["interval"], 50, 60000, &c.interval_ms))) return e;
    if (has("failback") && (e = parse_bool("failback", kv["failback"], &c.failback))) return e;
    if (has("orphan_timeout") &&
        (e = parse_real("orphan_timeout", kv["orphan_timeout"], 0, 1e9, &c.orphan_timeout)))
        return e;
    if (has("restart_grace") &&
        (e = parse_real("restart_grace", kv["restart_grace"], 2, 3600, &c.restart_grace)))
        return e;
    if (has("fencing")) {
        const auto& v = kv["fencing"];
        if (v == "auto") c.fencing = Fencing::Auto;
        else if (v == "require") c.fencing = Fencing::Require;
        else if (v == "off") c.fencing = Fencing::Off;
        else return error("fencing", v, "expected auto, require or off");
    }
    if (has("placement")) {
        const auto& v = kv["placement"];
        if (v == "least-loaded") c.placement = Placement::LeastLoaded;
        else if (v == "random") c.placement = Placement::Random;
        else return error("placement", v, "expected least-loaded or random");
    }
    if (has("tests")) {
        c.tests = split_words(kv["tests"]);
        for (const auto& t : c.tests)
            if ((e = check_test("tests", t))) return e;
    }
    if (has("test_interval") &&
        (e = parse_uint("test_interval", kv["test_interval"], 50, 3600000, &c.test_interval_ms)))
        return e;
    if (has("test_failures") && (e = parse_uint("test_failures", kv["test_failures"], 1, 1000, &c.test_failures)))
        return e;
    if (has("load")) {
        c.load = kv["load"];
        if ((e = check_load("load", c.load))) return e;
    }
    if (has("dns_server")) {
        c.dns_server = kv["dns_server"];
        if (!c.dns_server.empty()) {
            std::string host = c.dns_server, port;
            if (host.front() == '[') {
                auto close = host.find(']');
                if (close == std::string::npos) return error("dns_server", c.dns_server, "unbalanced '['");
                if (close + 1 < host.size()) {
                    if (host[close + 1] != ':') return error("dns_server", c.dns_server, "expected [ADDRESS]:PORT");
                    port = host.substr(close + 2);
                }
                host = host.substr(1, close - 1);
            } else if (std::count(host.begin(), host.end(), ':') == 1) {
                port = host.substr(host.find(':') + 1);
                host = host.substr(0, host.find(':'));
            }
            if (!ServiceAddress::parse(host, nullptr, false))
                return error("dns_server", c.dns_server, "expected ADDRESS[:PORT] with an IP address");
            if (!port.empty() && !valid_port(port))
                return error("dns_server", c.dns_server, "port must be between 1 and 65535");
        }
    }
    if (has("dns_zone")) c.dns_zone = kv["dns_zone"];
    if (has("dns_name")) c.dns_name = kv["dns_name"];
    if (has("dns_ttl") && (e = parse_uint("dns_ttl", kv["dns_ttl"], 0, 2147483647u, &c.dns_ttl))) return e;
    if (!c.dns_server.empty() && c.dns_zone.empty())
        return error("dns_zone", "", "required when dns_server is set");
    if (has("dns_key")) c.dns_key = kv["dns_key"];
    if (has("high_water") && (e = parse_real("high_water", kv["high_water"], 0, 1e6, &c.high_water))) return e;
    if (has("low_water") && (e = parse_real("low_water", kv["low_water"], 0, 1e6, &c.low_water))) return e;
    if (c.low_water > c.high_water) {
        std::ostringstream m;
        m << "parameter 'low_water' (" << c.low_water << ") must not exceed 'high_water' (" << c.high_water << ")";
        return ConfigError{"low_water", kv.count("low_water") ? kv["low_water"] : "60", m.str()};
    }
    if (has("min_addresses") &&
        (e = parse_uint("min_addresses", kv["min_addresses"], 0, 1000000, &c.min_addresses)))
        return e;
    if (has("hook")) {
        c.hook = kv["hook"];
        if (!c.hook.empty() && c.hook[0] != '/') return error("hook", c.hook, "needs an absolute path");
    }
    if (has("capacity") && !kv["capacity"].empty()) {
        double cap = 0;
        // Below the bound every peer checks in an Info (codec.h), so a capacity
        // we accept is one we can announce.
        constexpr double kMaxCapacity = 1e11;
        static_assert(kMaxCapacity < kMaxLoadValue, "a capacity must fit in an Info");
        if ((e = parse_real("capacity", kv["capacity"], 0, kMaxCapacity, &cap))) return e;
        if (cap <= 0) return error("capacity", kv["capacity"], "must be greater than 0");
        c.capacity = cap;
    }
    if (has("arp_probe_ms") && (e = parse_uint("arp_probe_ms", kv["arp_probe_ms"], 0, 10000, &c.arp_probe_ms)))
        return e;
    if (has("announce_interval") &&
        (e = parse_real("announce_interval", kv["announce_interval"], 0, 86400, &c.announce_interval)))
        return e;
    if (has("stop_timeout") && !kv["stop_timeout"].empty()) {
        double st = 0;
        if ((e = parse_real("stop_timeout", kv["stop_timeout"], 0, 86400, &st))) return e;
        c.stop_timeout = st;
    }
    if (has("snmp_traps")) {
        c.snmp_traps = split_words(kv["snmp_traps"]);
        for (const auto& t : c.snmp_traps)
            if (t.empty() || t.find_first_of("/ ") != std::string::npos)
                return error("snmp_traps", t, "expected HOST[:PORT]");
    }
    if (has("snmp_community")) c.snmp_community = kv["snmp_community"];
    if (c.restart_grace * 1000 < 3.0 * c.interval_ms) {
        std::ostringstream m;
        m << "parameter 'restart_grace' (" << c.restart_grace << " s) must be at least 3 x interval ("
          << 3 * c.interval_ms / 1000.0 << " s)";
        return ConfigError{"restart_grace", kv.count("restart_grace") ? kv["restart_grace"] : "10", m.str()};
    }
    *out = std::move(c);
    return std::nullopt;
}

std::vector<ServiceAddress> GroupConfig::preferred_by(const std::string& node) const {
    std::vector<ServiceAddress> out;
    for (const auto& p : addresses)
        if (p.node == node) out.push_back(p.address);
    return out;
}

const std::string* GroupConfig::preferred_node(const ServiceAddress& a) const {
    for (const auto& p : addresses)
        if (p.address == a) return &p.node;
    return nullptr;
}

bool GroupConfig::is_spare(const std::string& node) const {
    for (const auto& p : addresses)
        if (p.node == node) return false;
    return true;
}

std::string GroupConfig::canonical() const {
    std::ostringstream o;
    // Exact and locale-independent: distinct settings must give distinct digests.
    o.imbue(std::locale::classic());
    o.precision(17);
    o << "addresses=";
    for (const auto& p : addresses) o << p.node << '=' << p.address.str() << ' ';
    o << "\nfailback=" << failback << "\nplacement=" << to_string(placement)
      << "\norphan_timeout=" << orphan_timeout << "\nfencing=" << to_string(fencing)
      << "\nhigh_water=" << high_water << "\nlow_water=" << low_water << "\nmin_addresses=" << min_addresses
      << "\ndns_server=" << dns_server << "\ndns_zone=" << dns_zone << "\ndns_name=" << dns_name
      << "\ndns_ttl=" << dns_ttl << "\n";
    return o.str();
}

std::string GroupConfig::digest() const {
    std::string c = canonical();
    GCharPtr hex(g_compute_checksum_for_string(G_CHECKSUM_SHA256, c.c_str(), static_cast<gssize>(c.size())));
    return hex.get();
}

}  // namespace rais
