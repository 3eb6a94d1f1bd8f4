// GroupConfig: the parameters of one service group (DESIGN §5.1), parsed and
// validated from key/value text, with the digest of its group-wide part.
//
// Pure: no file access (the daemon reads its key file, the agent its
// environment, and both hand the pairs to parse()). Every error names the key
// and quotes the value. Keys that are node-local (nic, tests, load, capacity,
// hook, ...) stay out of the digest, so hosts may differ in them; everything
// the leader's decisions depend on is in it.
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

struct GroupConfig {
    // group-wide (in the digest)
    std::vector<PreferredAddress> addresses;
    bool failback = true;
    Placement placement = Placement::LeastLoaded;
    double orphan_timeout = 0;        // s, 0 = never
    Fencing fencing = Fencing::Auto;
    double high_water = 80, low_water = 60;
    unsigned min_addresses = 1;
    std::string dns_server, dns_zone, dns_name;
    unsigned dns_ttl = 30;

    // node-local
    std::string group;
    std::string nic;
    unsigned interval_ms = 1000;
    double restart_grace = 10;        // s
    std::vector<std::string> tests;
    unsigned test_interval_ms = 1000, test_failures = 3;
    std::string load = "cpu";
    std::optional<double> capacity;
    std::string dns_key;
    std::string hook;
    unsigned arp_probe_ms = 50;
    double announce_interval = 10;    // s
    std::optional<double> stop_timeout;
    std::vector<std::string> snmp_traps;
    std::string snmp_community = "public";

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
};

// Every key parse() accepts, in the order of DESIGN §5.1.
const std::vector<std::string>& config_keys();

// Parses and validates; later pairs override earlier ones for the same key.
// Returns the first error found (in key order), if any.
std::optional<ConfigError> parse_config(const std::vector<std::pair<std::string, std::string>>& pairs,
                                        GroupConfig* out);

// Parses the value of `addresses` ("NODE=ADDR/PREFIX ...").
std::optional<ConfigError> parse_addresses(const std::string& value, std::vector<PreferredAddress>* out);

}  // namespace rais
