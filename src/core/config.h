// GroupConfig: the parameters of one service group (DESIGN §5.1), parsed and
// validated from key/value text, with the digest of its group-wide part.
// Which parameters exist, their types, ranges, defaults and scopes is the
// table's (core/parameters.h); this holds the values and the checks that
// involve more than one parameter.
//
// Pure: no file access (raisd reads its key file, raisctl plan a view, and
// both hand the pairs to parse_config()). Every error names the key and
// quotes the value. Node-local keys (Scope::Node in the table) stay out of
// the digest, so hosts may differ in them; everything the leader's decisions
// depend on is in it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/address.h"

namespace rais {

enum class Placement { LeastLoaded, Random };
enum class Fencing { Auto, Require, Off };

const char* to_string(Placement p);
const char* to_string(Fencing f);

struct PreferredAddress {
    std::string node;         // cluster node name
    ServiceAddress address;
};

struct ConfigError {
    std::string key;
    std::string value;
    std::string message;      // complete sentence naming key and value
};

class ParamSet;

// The error of a parameter's value: "parameter 'KEY': WHAT (value 'VALUE')".
ConfigError config_error(const std::string& key, const std::string& value, const std::string& what);

// One field per parameter of the table; the defaults are the table's, set by
// the constructor (units are the table's too: _ms fields in ms, others in s).
struct GroupConfig {
    GroupConfig();
    struct Blank {};
    explicit GroupConfig(Blank);      // every field zero or empty: the table's defaults not applied

    // group-wide (in the digest)
    std::vector<PreferredAddress> addresses;
    bool failback;
    Placement placement;
    double orphan_timeout;            // 0 = never
    Fencing fencing;
    double high_water, low_water;
    unsigned min_addresses;
    std::string dns_server, dns_zone, dns_name;
    unsigned dns_ttl;

    // node-local
    std::string group;
    std::string nic;
    unsigned interval_ms;
    double restart_grace;
    std::vector<std::string> tests;
    unsigned test_interval_ms, test_failures;
    std::string load;
    std::optional<double> capacity;
    std::string dns_key;
    std::string hook;
    unsigned arp_probe_ms;
    double announce_interval;
    std::optional<double> stop_timeout;
    std::vector<std::string> snmp_traps;
    std::string snmp_community;

    // The addresses preferred by `node`, in configured order.
    std::vector<ServiceAddress> preferred_by(const std::string& node) const;
    // The configured preferred node of `a`, or nullptr.
    const std::string* preferred_node(const ServiceAddress& a) const;
    // The owner name of the DNS records: dns_name, by default the group's name
    // (resolved here, not at parse, so the digest does not depend on `group`).
    std::string dns_owner() const { return dns_name.empty() ? group : dns_name; }
    // A node with no configured address is a hot spare.
    bool is_spare(const std::string& node) const;

    // Hex SHA-256 of the canonical form of the group-wide keys.
    std::string digest() const;
    // The canonical "key=value" lines the digest is taken over.
    std::string canonical() const;
    // The parameters whose values differ between this and `other`.
    ParamSet diff(const GroupConfig& other) const;
};

// Every key parse_config() accepts, in the table's order.
const std::vector<std::string>& config_keys();

// Parses and validates; later pairs override earlier ones for the same key.
// Returns the first error found (in key order), if any.
std::optional<ConfigError> parse_config(const std::vector<std::pair<std::string, std::string>>& pairs,
                                        GroupConfig* out);

// Parses the value of `addresses` ("NODE=ADDR/PREFIX ...").
std::optional<ConfigError> parse_addresses(const std::string& value, std::vector<PreferredAddress>* out);

}  // namespace rais
