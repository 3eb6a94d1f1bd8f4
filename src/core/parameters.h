// The parameter table: the one place that names the parameters of a service
// group (DESIGN §5.1) and says, per parameter, its scope, whether a reload
// may change it, its type, default, range, unit and descriptions. Parsing
// and validation (config.cc), the digest, the status JSON's config
// (view_json.cc), change detection on reload (GroupConfig::diff), the OCF
// agent's meta-data and through it the man page, and the key file the agent
// writes (raisd --write-config) are all driven by it.
//
// Adding a parameter: one row in parameters.cc (with an enumerator below and
// a field in GroupConfig) plus the code that uses the new field.
//
// Invariants: rows are in Param order; every row's default parses. The
// rows' order is also that of the digest's lines and of a view's JSON config
// (group-wide rows first, then node-local ones), so reordering rows changes
// digests (hosts of different versions would disagree) and JSON text. A new
// group-wide row adds a line to every digest for the same reason. Pure: no
// I/O.
#pragma once

#include <bitset>
#include <initializer_list>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/config.h"

namespace rais {

// In table order (DESIGN §5.1's, but for the digest order of group-wide rows).
enum class Param : unsigned {
    Addresses, Group, Nic, Interval, Failback, Placement, OrphanTimeout, RestartGrace, Fencing, Tests,
    TestInterval, TestFailures, Load, Capacity, HighWater, LowWater, MinAddresses, DnsServer, DnsZone, DnsName,
    DnsTtl, DnsKey, Hook, ArpProbeMs, AnnounceInterval, StopTimeout, SnmpTraps, SnmpCommunity,
};
constexpr std::size_t kParamCount = static_cast<std::size_t>(Param::SnmpCommunity) + 1;

// Group: the leader's decisions depend on it, so it is in the digest and
// must be equal on every host. Node: may differ between hosts.
enum class Scope { Group, Node };

// The GroupConfig field a parameter is parsed into; its type decides how a
// value is parsed, printed and compared.
using Field = std::variant<std::vector<PreferredAddress> GroupConfig::*, std::string GroupConfig::*,
                           std::vector<std::string> GroupConfig::*, unsigned GroupConfig::*, double GroupConfig::*,
                           std::optional<double> GroupConfig::*, bool GroupConfig::*, Fencing GroupConfig::*,
                           Placement GroupConfig::*>;

// For std::visit over a Field: one lambda per field type.
template <typename... F>
struct Overload : F... {
    using F::operator()...;
};
template <typename... F>
Overload(F...) -> Overload<F...>;

// A check of one value (of one word, for word lists) beyond its type and
// range; returns the error naming `key` and quoting the offending text.
using ValueCheck = std::optional<ConfigError> (*)(const std::string& key, const std::string& value);

struct ParamSpec {
    Param id;
    const char* name;            // the key, and OCF_RESKEY_<name>
    Scope scope;
    bool reloadable;             // a reload (SIGHUP) may change it; else only a restart
    bool required;
    Field field;
    const char* default_text;    // parsed into a default-constructed GroupConfig; nullptr: none (unset)
    double lo, hi;               // range of numbers (integers and reals)
    const char* choices;         // enumerations: the words, in enumerator order
    const char* unit;            // "ms", "s", "%" or ""
    ValueCheck check;            // nullptr: the type and range say everything
    bool view_always;            // always in a view's JSON config (DESIGN §5.2's example), else when not default
    const char* agent_default;   // what the agent writes when the parameter is unset; nullptr: nothing
    const char* shortdesc;
    const char* longdesc;        // plain text, paragraphs separated by blank lines
};

// Every row, in Param order.
const std::vector<ParamSpec>& parameters();
const ParamSpec& spec(Param p);
inline const char* name(Param p) { return spec(p).name; }
// nullptr when `key` is no parameter (keys are case-sensitive).
const ParamSpec* find_param(const std::string& key);

// A set of parameters, e.g. those that differ between two configurations.
class ParamSet {
public:
    void add(Param p) { bits_.set(static_cast<std::size_t>(p)); }
    bool has(Param p) const { return bits_.test(static_cast<std::size_t>(p)); }
    bool any(std::initializer_list<Param> ps) const {
        for (Param p : ps)
            if (has(p)) return true;
        return false;
    }
    bool empty() const { return bits_.none(); }
    std::vector<Param> list() const;

private:
    std::bitset<kParamCount> bits_;
};

// "'a', 'b' and 'c'": the names of `ps` quoted, for messages.
std::string quoted_names(const std::vector<Param>& ps);

// The parameters a reload cannot change, in table order.
std::vector<Param> restart_only_params();

// The OCF 1.1 meta-data of the agent ocf:rais:servicegroup, parameters from
// the table; `version` is the agent's (the package's) version.
std::string agent_metadata(const std::string& version);

}  // namespace rais
