#include "core/parameters.h"

#include <glib.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "common/group_name.h"
#include "core/codec.h"

namespace rais {

namespace {

bool valid_port(const std::string& p) {
    if (p.empty() || p.size() > 10 || p.find_first_not_of("0123456789") != std::string::npos) return false;
    unsigned long n = std::strtoul(p.c_str(), nullptr, 10);
    return n >= 1 && n <= 65535;
}

std::optional<ConfigError> check_group(const std::string& key, const std::string& v) {
    if (!valid_group_name(v)) return config_error(key, v, std::string("use ") + kGroupNameRule);
    return std::nullopt;
}

std::optional<ConfigError> check_nic(const std::string& key, const std::string& v) {
    if (!v.empty() && (v.size() > 15 || v.find_first_of("/ :") != std::string::npos))
        return config_error(key, v, "not a valid interface name");
    return std::nullopt;
}

std::optional<ConfigError> check_test(const std::string& key, const std::string& t) {
    if (t.rfind("tcp:", 0) == 0) {
        if (!valid_port(t.substr(4))) return config_error(key, t, "tcp: needs a port between 1 and 65535");
    } else if (t.rfind("http:", 0) == 0) {
        std::string url = t.substr(5);
        if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
            return config_error(key, t, "http: needs a URL starting with http:// or https://");
    } else if (t.rfind("exec:", 0) == 0) {
        if (t.size() < 7 || t[5] != '/') return config_error(key, t, "exec: needs an absolute path");
    } else {
        return config_error(key, t, "a test is tcp:PORT, http:URL or exec:PATH");
    }
    return std::nullopt;
}

std::optional<ConfigError> check_load(const std::string& key, const std::string& l) {
    if (l == "cpu" || l == "net" || l == "conns") return std::nullopt;
    if (l.rfind("net:", 0) == 0 && l.size() > 4) return std::nullopt;
    if (l.rfind("conns:", 0) == 0) {
        if (!valid_port(l.substr(6))) return config_error(key, l, "conns: needs a port between 1 and 65535");
        return std::nullopt;
    }
    if (l.rfind("exec:", 0) == 0) {
        if (l.size() < 7 || l[5] != '/') return config_error(key, l, "exec: needs an absolute path");
        return std::nullopt;
    }
    return config_error(key, l, "load is cpu, net[:IFACE], conns[:PORT] or exec:PATH");
}

std::optional<ConfigError> check_dns_server(const std::string& key, const std::string& v) {
    if (v.empty()) return std::nullopt;
    std::string host = v, port;
    if (host.front() == '[') {
        auto close = host.find(']');
        if (close == std::string::npos) return config_error(key, v, "unbalanced '['");
        if (close + 1 < host.size()) {
            if (host[close + 1] != ':') return config_error(key, v, "expected [ADDRESS]:PORT");
            port = host.substr(close + 2);
        }
        host = host.substr(1, close - 1);
    } else if (std::count(host.begin(), host.end(), ':') == 1) {
        port = host.substr(host.find(':') + 1);
        host = host.substr(0, host.find(':'));
    }
    if (!ServiceAddress::parse(host, nullptr, false))
        return config_error(key, v, "expected ADDRESS[:PORT] with an IP address");
    if (!port.empty() && !valid_port(port)) return config_error(key, v, "port must be between 1 and 65535");
    return std::nullopt;
}

std::optional<ConfigError> check_absolute(const std::string& key, const std::string& v) {
    if (!v.empty() && v[0] != '/') return config_error(key, v, "needs an absolute path");
    return std::nullopt;
}

std::optional<ConfigError> check_capacity(const std::string& key, const std::string& v) {
    // Parsed (0 to kMaxCapacity) before this runs; zero is in that range.
    if (g_ascii_strtod(v.c_str(), nullptr) <= 0) return config_error(key, v, "must be greater than 0");
    return std::nullopt;
}

std::optional<ConfigError> check_trap_host(const std::string& key, const std::string& t) {
    if (t.empty() || t.find_first_of("/ ") != std::string::npos) return config_error(key, t, "expected HOST[:PORT]");
    return std::nullopt;
}

// Below the bound every peer checks in an Info (codec.h), so a capacity we
// accept is one we can announce.
constexpr double kMaxCapacity = 1e11;
static_assert(kMaxCapacity < kMaxLoadValue, "a capacity must fit in an Info");

using G = GroupConfig;
constexpr Scope kGroup = Scope::Group, kNode = Scope::Node;
constexpr bool kReload = true, kRestart = false;

// A function's static, not a global: GroupConfig's constructor reads it,
// maybe during the static initialization of another file.
const std::vector<ParamSpec>& table() {
    static const std::vector<ParamSpec> rows = {
    // id, name, scope, reloadable, required, field, default, lo, hi, choices, unit, check, view_always,
    // agent_default, shortdesc, longdesc
    {Param::Addresses, "addresses", kGroup, kReload, true, &G::addresses, nullptr, 0, 0, nullptr, "", nullptr, true,
     nullptr, "Service addresses and their preferred nodes",
     "Space-separated list of NODE=ADDRESS/PREFIX entries, IPv4 or IPv6. NODE is the\n"
     "name of the cluster node that prefers the address; a node may appear more\n"
     "than once. A node running the clone with no entry is a hot spare.\n"
     "Example: \"n1=198.18.0.101/24 n2=198.18.0.102/24 n2=2001:2::102/64\"."},
    {Param::Group, "group", kNode, kRestart, false, &G::group, nullptr, 0, 0, nullptr, "", check_group, false,
     nullptr, "Service group name",
     "Name of the service group (letters, digits, '-', '_' and '.', at most 64,\n"
     "not starting with '.'). Default: the resource's name without a \"-clone\"\n"
     "suffix. Changing it restarts the resource."},
    {Param::Nic, "nic", kNode, kRestart, false, &G::nic, nullptr, 0, 0, nullptr, "", check_nic, false, nullptr,
     "Network interface",
     "Network interface that carries every address of the group. Default: for each\n"
     "address, the interface whose subnet holds it. Changing it restarts the\n"
     "resource."},
    {Param::Interval, "interval", kNode, kReload, false, &G::interval_ms, "1000", 50, 60000, nullptr, "ms", nullptr,
     false, nullptr, "Info interval", "Milliseconds between the Info messages each host sends to the group."},
    {Param::Failback, "failback", kGroup, kReload, false, &G::failback, "true", 0, 0, nullptr, "", nullptr, true,
     nullptr, "Fail back to the preferred node",
     "Return a preferred address to its node when that node comes back."},
    {Param::Placement, "placement", kGroup, kReload, false, &G::placement, "least-loaded", 0, 0,
     "least-loaded random", "", nullptr, true, nullptr, "Placement: least-loaded or random",
     "How the leader chooses among eligible hosts for an address: least-loaded\n"
     "(hot spares first, then the lowest utilization) or random."},
    {Param::OrphanTimeout, "orphan_timeout", kGroup, kReload, false, &G::orphan_timeout, "0", 0, 1e9, nullptr, "s",
     nullptr, true, nullptr, "Orphan timeout",
     "Seconds after which an address whose preferred node is gone (an orphan) is no\n"
     "longer served; 0 means never. Decimals are allowed."},
    {Param::RestartGrace, "restart_grace", kNode, kReload, false, &G::restart_grace, "10", 2, 3600, nullptr, "s",
     nullptr, false, nullptr, "Restart grace",
     "Seconds the group's leader waits before reassigning the addresses of a host\n"
     "whose raisd went down or silent while the node stayed in the cluster, so that\n"
     "a restarted raisd keeps its addresses. At least 3 x interval. Decimals are\n"
     "allowed."},
    {Param::Fencing, "fencing", kGroup, kReload, false, &G::fencing, "auto", 0, 0, "auto require off", "", nullptr,
     false, nullptr, "Wait for fencing: auto, require or off",
     "auto: when the cluster fences (stonith-enabled), reassign the addresses of a\n"
     "node that left only once fencing confirmed it is down; require: always wait\n"
     "for fencing; off: reassign at once. With auto, a Pacemaker that does not\n"
     "answer counts as fencing (the last answer is kept); only a host without\n"
     "Pacemaker installed counts as not fencing. In a corosync two_node cluster\n"
     "both halves of a split stay quorate: off is refused there, and without\n"
     "fencing the addresses of a node that left are not taken."},
    {Param::Tests, "tests", kNode, kReload, false, &G::tests, "", 0, 0, nullptr, "", check_test, false, nullptr,
     "Health tests",
     "Space-separated health tests run on each host: tcp:PORT (a connection to the\n"
     "port is accepted), http:URL (the URL answers with success), exec:PATH (the\n"
     "executable exits 0). A host whose tests fail is not given addresses and gives\n"
     "away those it serves. Empty: no tests."},
    {Param::TestInterval, "test_interval", kNode, kReload, false, &G::test_interval_ms, "1000", 50, 3600000, nullptr,
     "ms", nullptr, false, nullptr, "Test interval", "Milliseconds between two runs of the health tests."},
    {Param::TestFailures, "test_failures", kNode, kReload, false, &G::test_failures, "3", 1, 1000, nullptr, "",
     nullptr, false, nullptr, "Failures before a host is not OK",
     "Consecutive test failures that make a host not OK."},
    {Param::Load, "load", kNode, kReload, false, &G::load, "cpu", 0, 0, nullptr, "", check_load, false, nullptr,
     "Load measure",
     "Load measure of a host: cpu, net[:IFACE] (traffic), conns[:PORT] (established\n"
     "connections; needs capacity), or exec:PATH (an executable that prints\n"
     "\"LOAD CAPACITY\": one line, two plain non-negative decimal numbers). A sample\n"
     "that is not a finite number in [0, 1e12) (nan, inf, garbage) is ignored and\n"
     "logged once; the last good one stays in use."},
    {Param::Capacity, "capacity", kNode, kReload, false, &G::capacity, nullptr, 0, kMaxCapacity, nullptr, "",
     check_capacity, false, nullptr, "Capacity",
     "Fixed capacity of this host for the load measure (needed by load=conns).\n"
     "Default: measured. Decimals are allowed; greater than 0, at most 1e11."},
    {Param::HighWater, "high_water", kGroup, kReload, false, &G::high_water, "80", 0, 1e6, nullptr, "%", nullptr,
     false, nullptr, "High-water mark",
     "Utilization (%) above which a host's addresses are withdrawn from DNS.\n"
     "Decimals are allowed."},
    {Param::LowWater, "low_water", kGroup, kReload, false, &G::low_water, "60", 0, 1e6, nullptr, "%", nullptr, false,
     nullptr, "Low-water mark",
     "Utilization (%) below which a host's addresses return to DNS; not above\n"
     "high_water. Decimals are allowed."},
    {Param::MinAddresses, "min_addresses", kGroup, kReload, false, &G::min_addresses, "1", 0, 1000000, nullptr, "",
     nullptr, false, nullptr, "Minimum addresses in DNS", "Fewest addresses the DNS entry keeps, whatever the load."},
    {Param::DnsServer, "dns_server", kGroup, kReload, false, &G::dns_server, "", 0, 0, nullptr, "",
     check_dns_server, false, nullptr, "DNS server for updates",
     "ADDRESS[:PORT] of a DNS server that accepts RFC 2136 dynamic updates for\n"
     "dns_zone; the group keeps the A/AAAA records of dns_name there. Empty: no DNS."},
    {Param::DnsZone, "dns_zone", kGroup, kReload, false, &G::dns_zone, nullptr, 0, 0, nullptr, "", nullptr, false,
     nullptr, "DNS zone", "DNS zone to update; required when dns_server is set."},
    {Param::DnsName, "dns_name", kGroup, kReload, false, &G::dns_name, nullptr, 0, 0, nullptr, "", nullptr, false,
     nullptr, "DNS name", "Owner name of the records within dns_zone. Default: the group's name."},
    {Param::DnsTtl, "dns_ttl", kGroup, kReload, false, &G::dns_ttl, "30", 0, 2147483647.0, nullptr, "s", nullptr,
     false, nullptr, "DNS TTL", "TTL in seconds of the DNS records."},
    {Param::DnsKey, "dns_key", kNode, kReload, false, &G::dns_key, "", 0, 0, nullptr, "", nullptr, false, nullptr,
     "TSIG key file",
     "File with the TSIG key, in BIND's key format, that signs the DNS updates.\n"
     "Empty: unsigned updates."},
    {Param::Hook, "hook", kNode, kReload, false, &G::hook, "", 0, 0, nullptr, "", check_absolute, false, nullptr,
     "Acquire/release hook",
     "Executable run as \"HOOK acquire|release ADDRESS/PREFIX NIC\" when this host\n"
     "takes or gives up an address; a failing acquire hook fails the acquire.\n"
     "Empty: no hook. Like every program raisd runs (load=exec:, exec: tests), it\n"
     "gets only PATH=/usr/sbin:/usr/bin:/sbin:/bin and LANG=C in its environment\n"
     "(no OCF_RESKEY_*), stdin /dev/null and its own process group, which is\n"
     "killed at the timeout; processes it leaves behind still holding its output\n"
     "are killed 200 ms after it exits. The first 4 KiB of its output are kept."},
    {Param::ArpProbeMs, "arp_probe_ms", kNode, kReload, false, &G::arp_probe_ms, "50", 0, 10000, nullptr, "ms",
     nullptr, false, nullptr, "ARP probe wait",
     "Milliseconds to wait for an answer to the ARP probe sent before this host\n"
     "first takes an IPv4 address that no member reports holding; if a machine\n"
     "answers, the address is not taken. 0: no probe. IPv6 addresses go through\n"
     "duplicate address detection instead (1-2 s), which handovers and\n"
     "takeovers after a confirmed fence skip (0 keeps it)."},
    {Param::AnnounceInterval, "announce_interval", kNode, kReload, false, &G::announce_interval, "10", 0, 86400,
     nullptr, "s", nullptr, false, nullptr, "Announce interval",
     "Seconds between repeated announcements (gratuitous ARP, unsolicited neighbour\n"
     "advertisement) of the addresses this host serves; 0: only when taking an\n"
     "address. Decimals are allowed."},
    // The stop action's timeout is what this should follow, but Pacemaker
    // tells an action only its own timeout, so start cannot know it: the
    // agent writes agent_default, well below the default stop timeout (60 s),
    // when the user leaves it unset; stop sends SIGKILL anyway once its own
    // timeout (minus 3 s) is near.
    {Param::StopTimeout, "stop_timeout", kNode, kReload, false, &G::stop_timeout, nullptr, 0, 86400, nullptr, "s",
     nullptr, false, "15", "Handover wait at stop",
     "Seconds a graceful stop waits for the other hosts to take over this host's\n"
     "addresses. The default is below the stop action's default timeout (the agent\n"
     "cannot learn the stop timeout at start). Keep it a few seconds below the stop\n"
     "action's timeout. Decimals are allowed."},
    {Param::SnmpTraps, "snmp_traps", kNode, kReload, false, &G::snmp_traps, "", 0, 0, nullptr, "", check_trap_host,
     false, nullptr, "SNMP trap receivers",
     "Space-separated HOST[:PORT] list that receives the group's events as SNMP\n"
     "traps. Empty: no traps."},
    {Param::SnmpCommunity, "snmp_community", kNode, kReload, false, &G::snmp_community, "public", 0, 0, nullptr, "",
     nullptr, false, nullptr, "SNMP community", "SNMP community of the traps."},
    };
    return rows;
}

// Attribute values escape double quotes too; text content keeps them as
// they are (more readable in the XML).
std::string xml_text(const std::string& s, bool attribute = false) {
    std::string out;
    for (char c : s) {
        if (c == '&') out += "&amp;";
        else if (c == '<') out += "&lt;";
        else if (c == '>') out += "&gt;";
        else if (c == '"' && attribute) out += "&quot;";
        else out += c;
    }
    return out;
}

const char* content_type(const ParamSpec& p) {
    if (std::holds_alternative<unsigned G::*>(p.field)) return "integer";
    if (std::holds_alternative<bool G::*>(p.field)) return "boolean";
    return "string";
}

const char* kAgentHead = R"(<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd" [
<!-- OCF 1.1 additions to ra-api-1.dtd, so that ocf-tester (xmllint valid)
     accepts them: reloadable parameters and the reload-agent action.  The
     internal subset is read first, so these declarations take precedence. -->
<!ATTLIST parameter reloadable (1|0) "0">
<!ATTLIST action name CDATA #REQUIRED>
]>
)";

const char* kAgentDesc = R"(<version>1.1</version>

<longdesc lang="en">
Runs raisd, the rais daemon, for one service group on this host. Clone this
resource (one instance per host that may serve the group): the raisd
instances of a group agree over corosync which host serves which of the
group's service IP addresses, give a failed host's addresses to the others
(many-to-many failover), return them when it comes back, balance load and
optionally keep DNS entries. Start returns once this host has joined the
group and settled; stop hands this host's addresses over to the others first.
The agent writes its parameters to /run/rais/GROUP.conf and raisd logs to
/var/log/pacemaker/rais-GROUP.log.
</longdesc>
<shortdesc lang="en">rais service group: many-to-many failover of IP addresses</shortdesc>

)";

const char* kAgentActions = R"(<actions>
<action name="start" timeout="60s"/>
<action name="stop" timeout="60s"/>
<action name="monitor" timeout="20s" interval="10s" depth="0"/>
<action name="reload-agent" timeout="20s"/>
<action name="validate-all" timeout="20s"/>
<action name="meta-data" timeout="5s"/>
</actions>
</resource-agent>
)";

}  // namespace

const std::vector<ParamSpec>& parameters() { return table(); }

const ParamSpec& spec(Param p) { return table().at(static_cast<std::size_t>(p)); }

const ParamSpec* find_param(const std::string& key) {
    for (const auto& p : table())
        if (key == p.name) return &p;
    return nullptr;
}

std::vector<Param> ParamSet::list() const {
    std::vector<Param> out;
    for (const auto& p : table())
        if (has(p.id)) out.push_back(p.id);
    return out;
}

std::string quoted_names(const std::vector<Param>& ps) {
    std::string s;
    for (std::size_t i = 0; i < ps.size(); i++) {
        if (i > 0) s += i + 1 == ps.size() ? " and " : ", ";
        s += std::string("'") + name(ps[i]) + "'";
    }
    return s;
}

std::vector<Param> restart_only_params() {
    std::vector<Param> out;
    for (const auto& p : table())
        if (!p.reloadable) out.push_back(p.id);
    return out;
}

std::string agent_metadata(const std::string& version) {
    std::ostringstream o;
    o << kAgentHead << "<resource-agent name=\"servicegroup\" version=\"" << xml_text(version, true) << "\">\n"
      << kAgentDesc << "<parameters>\n";
    for (const auto& p : table()) {
        o << "<parameter name=\"" << p.name << "\"" << (p.required ? " required=\"1\"" : "") << " reloadable=\""
          << (p.reloadable ? 1 : 0) << "\">\n";
        o << "<longdesc lang=\"en\">\n" << xml_text(p.longdesc) << "\n</longdesc>\n";
        o << "<shortdesc lang=\"en\">" << xml_text(p.shortdesc);
        if (*p.unit) o << " (" << p.unit << ")";
        o << "</shortdesc>\n";
        o << "<content type=\"" << content_type(p) << "\"";
        const char* def = p.agent_default ? p.agent_default : p.default_text;
        if (def) o << " default=\"" << xml_text(def, true) << "\"";
        o << "/>\n</parameter>\n";
        if (&p != &table().back()) o << "\n";
    }
    o << "</parameters>\n\n" << kAgentActions;
    return o.str();
}

}  // namespace rais
