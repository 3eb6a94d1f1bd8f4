#include "core/config.h"

#include <glib.h>

#include <cmath>
#include <cstdlib>
#include <locale>
#include <map>
#include <set>
#include <sstream>
#include <variant>

#include "core/glib_ptr.h"
#include "core/parameters.h"

namespace rais {

namespace {

// Word `i` of a space-separated list (an enumeration's choices in the table).
std::string word_at(const char* words, std::size_t i) {
    std::istringstream in(words);
    std::string w;
    for (std::size_t k = 0; in >> w; k++)
        if (k == i) return w;
    return "";
}

}  // namespace

const char* to_string(Placement p) {
    static const std::string words[] = {word_at(spec(Param::Placement).choices, 0),
                                        word_at(spec(Param::Placement).choices, 1)};
    return words[p == Placement::Random ? 1 : 0].c_str();
}

const char* to_string(Fencing f) {
    static const std::string words[] = {word_at(spec(Param::Fencing).choices, 0),
                                        word_at(spec(Param::Fencing).choices, 1),
                                        word_at(spec(Param::Fencing).choices, 2)};
    return words[static_cast<int>(f)].c_str();
}

const std::vector<std::string>& config_keys() {
    static const std::vector<std::string> keys = [] {
        std::vector<std::string> k;
        for (const auto& p : parameters()) k.push_back(p.name);
        return k;
    }();
    return keys;
}

ConfigError config_error(const std::string& key, const std::string& value, const std::string& what) {
    return {key, value, "parameter '" + key + "': " + what + " (value '" + value + "')"};
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
    return config_error(key, value, what);
}

bool valid_name(const std::string& s) {
    if (s.empty() || s.size() > 64) return false;
    for (char c : s)
        if (!g_ascii_isalnum(c) && c != '-' && c != '_' && c != '.') return false;
    return true;
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

// An enumeration's value: the index of `v` among the row's choices.
template <typename Enum>
std::optional<ConfigError> parse_choice(const ParamSpec& p, const std::string& v, Enum* out) {
    std::vector<std::string> words = split_words(p.choices);
    for (std::size_t i = 0; i < words.size(); i++)
        if (v == words[i]) {
            *out = static_cast<Enum>(i);
            return std::nullopt;
        }
    std::string list;
    for (std::size_t i = 0; i < words.size(); i++)
        list += (i == 0 ? "" : i + 1 == words.size() ? " or " : ", ") + words[i];
    return error(p.name, v, "expected " + list);
}

// Parses `v` into the row's field of *c: the type and range first, then the
// row's own check (of each word, for word lists).
std::optional<ConfigError> parse_value(const ParamSpec& p, const std::string& v, GroupConfig* c) {
    const std::string key = p.name;
    auto checked = [&](const std::string& text) -> std::optional<ConfigError> {
        return p.check ? p.check(key, text) : std::nullopt;
    };
    return std::visit(
        Overload{
            [&](std::vector<PreferredAddress> GroupConfig::*f) { return parse_addresses(v, &(c->*f)); },
            [&](std::string GroupConfig::*f) {
                c->*f = v;
                return checked(v);
            },
            [&](std::vector<std::string> GroupConfig::*f) -> std::optional<ConfigError> {
                c->*f = split_words(v);
                for (const auto& w : c->*f)
                    if (auto e = checked(w)) return e;
                return std::nullopt;
            },
            [&](unsigned GroupConfig::*f) {
                return parse_uint(key, v, static_cast<unsigned>(p.lo), static_cast<unsigned>(p.hi), &(c->*f));
            },
            [&](double GroupConfig::*f) { return parse_real(key, v, p.lo, p.hi, &(c->*f)); },
            [&](std::optional<double> GroupConfig::*f) -> std::optional<ConfigError> {
                // Empty: unset (the agent passes every parameter, set or not).
                if (v.empty()) return std::nullopt;
                double d = 0;
                if (auto e = parse_real(key, v, p.lo, p.hi, &d)) return e;
                if (auto e = checked(v)) return e;
                c->*f = d;
                return std::nullopt;
            },
            [&](bool GroupConfig::*f) { return parse_bool(key, v, &(c->*f)); },
            [&](Fencing GroupConfig::*f) { return parse_choice(p, v, &(c->*f)); },
            [&](Placement GroupConfig::*f) { return parse_choice(p, v, &(c->*f)); },
        },
        p.field);
}

// The row's value in *c as the digest's text (exact, locale-independent).
void write_value(std::ostream& o, const ParamSpec& p, const GroupConfig& c) {
    std::visit(Overload{
                   [&](std::vector<PreferredAddress> GroupConfig::*f) {
                       for (const auto& a : c.*f) o << a.node << '=' << a.address.str() << ' ';
                   },
                   [&](std::vector<std::string> GroupConfig::*f) {
                       for (std::size_t i = 0; i < (c.*f).size(); i++) o << (i ? " " : "") << (c.*f)[i];
                   },
                   [&](std::optional<double> GroupConfig::*f) {
                       if (c.*f) o << *(c.*f);
                   },
                   [&](Fencing GroupConfig::*f) { o << to_string(c.*f); },
                   [&](Placement GroupConfig::*f) { o << to_string(c.*f); },
                   [&](auto f) { o << c.*f; },
               },
               p.field);
}

bool same_value(const ParamSpec& p, const GroupConfig& a, const GroupConfig& b) {
    return std::visit(Overload{
                          [&](std::vector<PreferredAddress> GroupConfig::*f) {
                              // ServiceAddress's == ignores the prefix; a reload must not.
                              if ((a.*f).size() != (b.*f).size()) return false;
                              for (std::size_t i = 0; i < (a.*f).size(); i++)
                                  if ((a.*f)[i].node != (b.*f)[i].node ||
                                      (a.*f)[i].address.str() != (b.*f)[i].address.str())
                                      return false;
                              return true;
                          },
                          [&](auto f) { return a.*f == b.*f; },
                      },
                      p.field);
}

}  // namespace

GroupConfig::GroupConfig(Blank) : addresses(), failback(), placement(), orphan_timeout(), fencing(), high_water(),
    low_water(), min_addresses(), dns_ttl(), interval_ms(), restart_grace(), test_interval_ms(), test_failures(),
    arp_probe_ms(), announce_interval() {}

// The table's defaults, parsed once (a unit test holds every row's to parse).
GroupConfig::GroupConfig() : GroupConfig([] {
    static const GroupConfig defaults = [] {
        GroupConfig c{Blank{}};
        for (const auto& p : parameters())
            if (p.default_text) parse_value(p, p.default_text, &c);
        return c;
    }();
    return defaults;
}()) {}

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
    const std::string key = name(Param::Addresses);
    out->clear();
    std::set<ServiceAddress> seen;
    for (const auto& word : split_words(value)) {
        auto eq = word.find('=');
        if (eq == std::string::npos || eq == 0)
            return error(key, word, "expected NODE=ADDRESS/PREFIX");
        std::string node = word.substr(0, eq);
        if (!valid_name(node))
            return error(key, word, "node name '" + node + "' is not a valid cluster node name");
        std::string why;
        auto a = ServiceAddress::parse(word.substr(eq + 1), &why);
        if (!a) return error(key, word, why);
        if (std::string special = special_address(*a); !special.empty())
            return error(key, word, "address " + a->ip() + " " + special + ": not usable as a service address");
        if (!seen.insert(*a).second)
            return error(key, word, "address " + a->ip() + " is listed more than once");
        out->push_back({node, *a});
    }
    if (out->empty()) return error(key, value, "at least one NODE=ADDRESS/PREFIX is required");
    return std::nullopt;
}

std::optional<ConfigError> parse_config(const std::vector<std::pair<std::string, std::string>>& pairs,
                                        GroupConfig* out) {
    std::map<std::string, std::string> kv;
    for (const auto& [k, v] : pairs) {
        if (!find_param(k)) return ConfigError{k, v, "unknown parameter '" + k + "'"};
        kv[k] = v;
    }
    for (const auto& p : parameters())
        if (p.required && !kv.count(p.name))
            return ConfigError{p.name, "", std::string("parameter '") + p.name + "' is required"};
    GroupConfig c;
    for (const auto& p : parameters())
        if (auto it = kv.find(p.name); it != kv.end())
            if (auto e = parse_value(p, it->second, &c)) return e;

    // Checks of more than one parameter. A value quoted but not given is
    // the default's.
    auto given = [&](Param p) {
        auto it = kv.find(name(p));
        return it != kv.end() ? it->second : std::string(spec(p).default_text ? spec(p).default_text : "");
    };
    if (!c.dns_server.empty() && c.dns_zone.empty())
        return error(name(Param::DnsZone), "", std::string("required when ") + name(Param::DnsServer) + " is set");
    if (c.low_water > c.high_water) {
        std::ostringstream m;
        m << "parameter '" << name(Param::LowWater) << "' (" << c.low_water << ") must not exceed '"
          << name(Param::HighWater) << "' (" << c.high_water << ")";
        return ConfigError{name(Param::LowWater), given(Param::LowWater), m.str()};
    }
    if (c.restart_grace * 1000 < 3.0 * c.interval_ms) {
        std::ostringstream m;
        m << "parameter '" << name(Param::RestartGrace) << "' (" << c.restart_grace << " s) must be at least 3 x "
          << name(Param::Interval) << " (" << 3 * c.interval_ms / 1000.0 << " s)";
        return ConfigError{name(Param::RestartGrace), given(Param::RestartGrace), m.str()};
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
    for (const auto& p : parameters()) {
        if (p.scope != Scope::Group) continue;
        o << p.name << '=';
        write_value(o, p, *this);
        o << '\n';
    }
    return o.str();
}

ParamSet GroupConfig::diff(const GroupConfig& other) const {
    ParamSet changed;
    for (const auto& p : parameters())
        if (!same_value(p, *this, other)) changed.add(p.id);
    return changed;
}

std::string GroupConfig::digest() const {
    std::string c = canonical();
    GCharPtr hex(g_compute_checksum_for_string(G_CHECKSUM_SHA256, c.c_str(), static_cast<gssize>(c.size())));
    return hex.get();
}

}  // namespace rais
