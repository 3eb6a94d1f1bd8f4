// ServiceAddress and GroupConfig tests: parsing and formatting of service
// addresses, the defaults and validation of every parameter of DESIGN §5.1
// (each error names the parameter and quotes the offending value), and the
// configuration digest that hosts compare (DESIGN §3): equal for equal
// group-wide settings, blind to node-local ones, sensitive to everything the
// leader's decisions depend on.

#include <cppunit/TestFixture.h>
#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <utility>
#include <vector>

#include "core/address.h"
#include "core/config.h"
#include "core/parameters.h"

using namespace rais;

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

const char* const kGood = "n1=198.18.0.101/24 n2=198.18.0.102/24";

GroupConfig parseOk(const Pairs& pairs) {
    GroupConfig c;
    auto e = parse_config(pairs, &c);
    if (e) CPPUNIT_FAIL("unexpected error: " + e->message);
    return c;
}

std::string digestOf(Pairs pairs) {
    bool hasAddresses = false;
    for (const auto& p : pairs) hasAddresses = hasAddresses || p.first == "addresses";
    if (!hasAddresses) pairs.insert(pairs.begin(), {"addresses", kGood});
    return parseOk(pairs).digest();
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

class AddressTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(AddressTest);
    CPPUNIT_TEST(testParseFormatIPv4);
    CPPUNIT_TEST(testParseFormatIPv6);
    CPPUNIT_TEST(testMissingPrefix);
    CPPUNIT_TEST(testSpecialAddressesRefused);
    CPPUNIT_TEST(testBadPrefix);
    CPPUNIT_TEST(testGarbage);
    CPPUNIT_TEST(testEqualityIgnoresPrefix);
    CPPUNIT_TEST(testFromBytes);
    CPPUNIT_TEST_SUITE_END();

public:
    void testParseFormatIPv4() {
        auto a = ServiceAddress::parse("198.18.0.101/24");
        CPPUNIT_ASSERT(a.has_value());
        CPPUNIT_ASSERT(a->family() == Family::V4);
        CPPUNIT_ASSERT_EQUAL(24u, a->prefix());
        CPPUNIT_ASSERT_EQUAL(std::size_t{4}, a->size());
        CPPUNIT_ASSERT_EQUAL(std::string("198.18.0.101"), a->ip());
        CPPUNIT_ASSERT_EQUAL(std::string("198.18.0.101/24"), a->str());
        const std::uint8_t want[] = {198, 18, 0, 101};
        CPPUNIT_ASSERT(std::equal(want, want + 4, a->bytes()));
        CPPUNIT_ASSERT_EQUAL(std::string("198.18.0.1/32"), ServiceAddress::parse("198.18.0.1/32")->str());
        CPPUNIT_ASSERT_EQUAL(std::string("198.18.0.1/1"), ServiceAddress::parse("198.18.0.1/1")->str());
    }

    void testParseFormatIPv6() {
        auto a = ServiceAddress::parse("2001:0002:0000:0000::0101/64");
        CPPUNIT_ASSERT(a.has_value());
        CPPUNIT_ASSERT(a->family() == Family::V6);
        CPPUNIT_ASSERT_EQUAL(64u, a->prefix());
        CPPUNIT_ASSERT_EQUAL(std::size_t{16}, a->size());
        // Formatted in the canonical (RFC 5952) form.
        CPPUNIT_ASSERT_EQUAL(std::string("2001:2::101"), a->ip());
        CPPUNIT_ASSERT_EQUAL(std::string("2001:2::101/64"), a->str());
        CPPUNIT_ASSERT_EQUAL(std::string("2001:2::1/128"), ServiceAddress::parse("2001:2::1/128")->str());
        CPPUNIT_ASSERT_EQUAL(std::string("::ffff:198.18.0.1/128"),
                             ServiceAddress::parse("::ffff:198.18.0.1/128")->str());
    }

    // A service address needs its prefix (it is what gets plumbed), unless
    // the caller asks for a host address (e.g. a DNS server).
    // Rule 4.10: loopback, multicast, unspecified, broadcast, link-local and
    // IPv4-mapped addresses are never service addresses; the error names
    // `addresses` and quotes the value.
    void testSpecialAddressesRefused() {
        for (const char* bad : {"127.0.0.1/8", "224.0.0.1/32", "0.0.0.0/8", "255.255.255.255/32", "169.254.1.1/16",
                                "::1/128", "ff02::1/128", "fe80::1/64", "::ffff:192.0.2.1/128", "::/128"}) {
            std::vector<PreferredAddress> out;
            auto e = parse_addresses(std::string("n1=") + bad, &out);
            CPPUNIT_ASSERT_MESSAGE(std::string(bad) + " accepted", e.has_value());
            CPPUNIT_ASSERT_EQUAL(std::string("addresses"), e->key);
            CPPUNIT_ASSERT_MESSAGE(e->message, e->message.find(std::string(bad).substr(0, std::string(bad).find('/'))) != std::string::npos);
        }
        for (const char* good : {"198.18.0.1/24", "2001:2::1/64", "192.0.2.7/32"}) {
            std::vector<PreferredAddress> out;
            CPPUNIT_ASSERT_MESSAGE(good, !parse_addresses(std::string("n1=") + good, &out).has_value());
        }
    }

    void testMissingPrefix() {
        std::string why;
        CPPUNIT_ASSERT(!ServiceAddress::parse("198.18.0.101", &why));
        CPPUNIT_ASSERT_MESSAGE(why, contains(why, "PREFIX"));
        CPPUNIT_ASSERT(!ServiceAddress::parse("2001:2::1", &why));

        auto v4 = ServiceAddress::parse("198.18.0.101", nullptr, false);
        CPPUNIT_ASSERT(v4.has_value());
        CPPUNIT_ASSERT_EQUAL(std::string("198.18.0.101/32"), v4->str());
        auto v6 = ServiceAddress::parse("2001:2::1", nullptr, false);
        CPPUNIT_ASSERT(v6.has_value());
        CPPUNIT_ASSERT_EQUAL(std::string("2001:2::1/128"), v6->str());
    }

    void testBadPrefix() {
        const char* const bad[] = {"198.18.0.1/33", "198.18.0.1/0",   "198.18.0.1/",    "198.18.0.1/abc",
                                   "198.18.0.1/-1", "198.18.0.1/1234", "198.18.0.1/24/1", "198.18.0.1/ 24",
                                   "198.18.0.1/+24", "2001:2::1/129",  "2001:2::1/0",    "2001:2::1/",
                                   "198.18.0.1/99999999999999999999"};
        for (const char* text : bad) {
            std::string why;
            CPPUNIT_ASSERT_MESSAGE(std::string(text) + " accepted", !ServiceAddress::parse(text, &why));
            CPPUNIT_ASSERT_MESSAGE(std::string(text) + ": no explanation", !why.empty());
            CPPUNIT_ASSERT_MESSAGE(std::string(text) + " accepted without prefix requirement",
                                   !ServiceAddress::parse(text, nullptr, false));
        }
    }

    void testGarbage() {
        const char* const bad[] = {"",           "/24",          "hello/24",         "198.18.0/24",
                                   "198.18.0.1.2/24", "256.18.0.1/24", "198.18.0.-1/24", " 198.18.0.1/24",
                                   "198.18.0.1 /24",  "2001:::1/64",   "2001:2::1::2/64", "2001:2::g/64",
                                   "fe80::1%eth0/64", "n1=198.18.0.1/24"};
        for (const char* text : bad) {
            std::string why;
            CPPUNIT_ASSERT_MESSAGE(std::string("'") + text + "' accepted", !ServiceAddress::parse(text, &why));
            CPPUNIT_ASSERT_MESSAGE(std::string("'") + text + "': no explanation", !why.empty());
        }
    }

    // Two entries differing only in prefix name the same address.
    void testEqualityIgnoresPrefix() {
        auto a24 = *ServiceAddress::parse("198.18.0.101/24");
        auto a32 = *ServiceAddress::parse("198.18.0.101/32");
        auto b24 = *ServiceAddress::parse("198.18.0.102/24");
        CPPUNIT_ASSERT(a24 == a32);
        CPPUNIT_ASSERT(!(a24 != a32));
        CPPUNIT_ASSERT(!(a24 < a32) && !(a32 < a24));
        CPPUNIT_ASSERT(a24 != b24);
        CPPUNIT_ASSERT(a24 < b24);
        CPPUNIT_ASSERT(*ServiceAddress::parse("2001:2::1/64") == *ServiceAddress::parse("2001:2:0::1/128"));
        // Families never compare equal, even when the leading bytes agree.
        auto v4 = *ServiceAddress::parse("32.1.0.2/24");
        auto v6 = *ServiceAddress::parse("2001:2::/64");
        CPPUNIT_ASSERT(v4 != v6);
        CPPUNIT_ASSERT(v4 < v6);
    }

    void testFromBytes() {
        const std::uint8_t v4[] = {198, 18, 0, 1};
        const std::uint8_t v6[16] = {0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        CPPUNIT_ASSERT_EQUAL(std::string("198.18.0.1/24"), ServiceAddress::from_bytes(v4, 4, 24)->str());
        CPPUNIT_ASSERT_EQUAL(std::string("2001:2::1/64"), ServiceAddress::from_bytes(v6, 16, 64)->str());
        CPPUNIT_ASSERT(ServiceAddress::from_bytes(v4, 4, 32));
        CPPUNIT_ASSERT(ServiceAddress::from_bytes(v6, 16, 128));
        CPPUNIT_ASSERT(!ServiceAddress::from_bytes(v4, 4, 0));
        CPPUNIT_ASSERT(!ServiceAddress::from_bytes(v4, 4, 33));
        CPPUNIT_ASSERT(!ServiceAddress::from_bytes(v6, 16, 0));
        CPPUNIT_ASSERT(!ServiceAddress::from_bytes(v6, 16, 129));
        CPPUNIT_ASSERT(!ServiceAddress::from_bytes(v6, 5, 24));
        CPPUNIT_ASSERT(!ServiceAddress::from_bytes(v6, 0, 24));
    }
};

class ConfigTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ConfigTest);
    CPPUNIT_TEST(testDefaults);
    CPPUNIT_TEST(testEveryKeyAccepted);
    CPPUNIT_TEST(testAddressesForms);
    CPPUNIT_TEST(testBadValueNamesKeyAndQuotesValue);
    CPPUNIT_TEST(testAddressesRequired);
    CPPUNIT_TEST(testUnknownKeyRefused);
    CPPUNIT_TEST(testLowWaterAboveHighWaterRefused);
    CPPUNIT_TEST(testDuplicateAddressRefused);
    CPPUNIT_TEST(testRestartGraceAtLeastThreeIntervals);
    CPPUNIT_TEST(testLaterPairOverrides);
    CPPUNIT_TEST(testDigestEqualForEqualConfig);
    CPPUNIT_TEST(testDigestIgnoresNodeLocalKeys);
    CPPUNIT_TEST(testDigestChangesWithGroupWideKeys);
    CPPUNIT_TEST(testCanonicalTextUnchanged);
    CPPUNIT_TEST(testTableRowsInOrderAndDefaultsParse);
    CPPUNIT_TEST(testDiffNamesChangedParameters);
    CPPUNIT_TEST(testAgentMetadataFromTable);
    CPPUNIT_TEST_SUITE_END();

public:
    // DESIGN §5.1 defaults.
    void testDefaults() {
        GroupConfig c = parseOk({{"addresses", kGood}});
        CPPUNIT_ASSERT_EQUAL(std::size_t{2}, c.addresses.size());
        CPPUNIT_ASSERT_EQUAL(std::string("n1"), c.addresses[0].node);
        CPPUNIT_ASSERT_EQUAL(std::string("198.18.0.101/24"), c.addresses[0].address.str());
        CPPUNIT_ASSERT_EQUAL(std::string(""), c.nic);
        CPPUNIT_ASSERT_EQUAL(1000u, c.interval_ms);
        CPPUNIT_ASSERT_EQUAL(true, c.failback);
        CPPUNIT_ASSERT_EQUAL(0.0, c.orphan_timeout);
        CPPUNIT_ASSERT_EQUAL(10.0, c.restart_grace);
        CPPUNIT_ASSERT(c.fencing == Fencing::Auto);
        CPPUNIT_ASSERT(c.placement == Placement::LeastLoaded);
        CPPUNIT_ASSERT(c.tests.empty());
        CPPUNIT_ASSERT_EQUAL(1000u, c.test_interval_ms);
        CPPUNIT_ASSERT_EQUAL(3u, c.test_failures);
        CPPUNIT_ASSERT_EQUAL(std::string("cpu"), c.load);
        CPPUNIT_ASSERT_EQUAL(std::string(""), c.dns_server);
        CPPUNIT_ASSERT_EQUAL(30u, c.dns_ttl);
        CPPUNIT_ASSERT_EQUAL(std::string(""), c.dns_key);
        CPPUNIT_ASSERT_EQUAL(80.0, c.high_water);
        CPPUNIT_ASSERT_EQUAL(60.0, c.low_water);
        CPPUNIT_ASSERT_EQUAL(1u, c.min_addresses);
        CPPUNIT_ASSERT_EQUAL(std::string(""), c.hook);
        CPPUNIT_ASSERT(!c.capacity.has_value());
        CPPUNIT_ASSERT_EQUAL(50u, c.arp_probe_ms);
        CPPUNIT_ASSERT_EQUAL(10.0, c.announce_interval);
        CPPUNIT_ASSERT(!c.stop_timeout.has_value());
        CPPUNIT_ASSERT(c.snmp_traps.empty());
        CPPUNIT_ASSERT_EQUAL(std::string("public"), c.snmp_community);
        CPPUNIT_ASSERT_EQUAL(std::string("least-loaded"), std::string(to_string(c.placement)));
        CPPUNIT_ASSERT_EQUAL(std::string("auto"), std::string(to_string(c.fencing)));
    }

    // A valid value for every key of config_keys() parses into its field.
    void testEveryKeyAccepted() {
        Pairs all = {{"addresses", kGood},
                     {"group", "web"},
                     {"nic", "eth1"},
                     {"interval", "500"},
                     {"failback", "false"},
                     {"orphan_timeout", "300"},
                     {"restart_grace", "15"},
                     {"fencing", "require"},
                     {"placement", "random"},
                     {"tests", "tcp:80 http:http://127.0.0.1/health exec:/usr/bin/true"},
                     {"test_interval", "2000"},
                     {"test_failures", "5"},
                     {"load", "exec:/usr/local/bin/load"},
                     {"dns_server", "[2001:2::53]:5353"},
                     {"dns_zone", "example.test"},
                     {"dns_name", "www"},
                     {"dns_ttl", "60"},
                     {"dns_key", "/etc/rais/key"},
                     {"high_water", "90"},
                     {"low_water", "70"},
                     {"min_addresses", "2"},
                     {"hook", "/usr/local/bin/hook"},
                     {"capacity", "400"},
                     {"arp_probe_ms", "0"},
                     {"announce_interval", "0"},
                     {"stop_timeout", "20"},
                     {"snmp_traps", "198.18.0.200:162 traps.example.test"},
                     {"snmp_community", "private"}};
        CPPUNIT_ASSERT_EQUAL_MESSAGE("the table covers every key", config_keys().size(), all.size());
        GroupConfig c = parseOk(all);
        CPPUNIT_ASSERT_EQUAL(std::string("web"), c.group);
        CPPUNIT_ASSERT_EQUAL(std::string("eth1"), c.nic);
        CPPUNIT_ASSERT_EQUAL(500u, c.interval_ms);
        CPPUNIT_ASSERT_EQUAL(false, c.failback);
        CPPUNIT_ASSERT_EQUAL(300.0, c.orphan_timeout);
        CPPUNIT_ASSERT_EQUAL(15.0, c.restart_grace);
        CPPUNIT_ASSERT(c.fencing == Fencing::Require);
        CPPUNIT_ASSERT(c.placement == Placement::Random);
        CPPUNIT_ASSERT_EQUAL(std::size_t{3}, c.tests.size());
        CPPUNIT_ASSERT_EQUAL(2000u, c.test_interval_ms);
        CPPUNIT_ASSERT_EQUAL(5u, c.test_failures);
        CPPUNIT_ASSERT_EQUAL(std::string("exec:/usr/local/bin/load"), c.load);
        CPPUNIT_ASSERT_EQUAL(std::string("[2001:2::53]:5353"), c.dns_server);
        CPPUNIT_ASSERT_EQUAL(std::string("example.test"), c.dns_zone);
        CPPUNIT_ASSERT_EQUAL(std::string("www"), c.dns_name);
        CPPUNIT_ASSERT_EQUAL(60u, c.dns_ttl);
        CPPUNIT_ASSERT_EQUAL(std::string("/etc/rais/key"), c.dns_key);
        CPPUNIT_ASSERT_EQUAL(90.0, c.high_water);
        CPPUNIT_ASSERT_EQUAL(70.0, c.low_water);
        CPPUNIT_ASSERT_EQUAL(2u, c.min_addresses);
        CPPUNIT_ASSERT_EQUAL(std::string("/usr/local/bin/hook"), c.hook);
        CPPUNIT_ASSERT_EQUAL(400.0, c.capacity.value_or(-1));
        CPPUNIT_ASSERT_EQUAL(0u, c.arp_probe_ms);
        CPPUNIT_ASSERT_EQUAL(0.0, c.announce_interval);
        CPPUNIT_ASSERT_EQUAL(20.0, c.stop_timeout.value_or(-1));
        CPPUNIT_ASSERT_EQUAL(std::size_t{2}, c.snmp_traps.size());
        CPPUNIT_ASSERT_EQUAL(std::string("private"), c.snmp_community);
    }

    // DESIGN §5.1: NODE may appear more than once; a node with no entry is
    // a hot spare; IPv4 and IPv6 mix.
    void testAddressesForms() {
        GroupConfig c = parseOk({{"addresses", "  n1=198.18.0.101/24\tn1=2001:2::101/64  n2=198.18.0.102/24 "}});
        CPPUNIT_ASSERT_EQUAL(std::size_t{3}, c.addresses.size());
        CPPUNIT_ASSERT_EQUAL(std::size_t{2}, c.preferred_by("n1").size());
        CPPUNIT_ASSERT_EQUAL(std::string("2001:2::101/64"), c.preferred_by("n1")[1].str());
        CPPUNIT_ASSERT(c.preferred_by("n4").empty());
        CPPUNIT_ASSERT(!c.is_spare("n1"));
        CPPUNIT_ASSERT(c.is_spare("n4"));
        const std::string* n = c.preferred_node(*ServiceAddress::parse("198.18.0.102/32"));
        CPPUNIT_ASSERT(n && *n == "n2");
        CPPUNIT_ASSERT(!c.preferred_node(*ServiceAddress::parse("198.18.0.103/24")));
    }

    // DESIGN §5.1: "invalid parameters give OCF_ERR_CONFIGURED with a message
    // naming the parameter" - and quoting what was wrong.
    void testBadValueNamesKeyAndQuotesValue() {
        struct Bad {
            const char* key;
            const char* value;
            const char* offending;  // the part of the value the message must quote
        };
        const Bad table[] = {
            {"addresses", "n1=198.18.0.101", "n1=198.18.0.101"},
            {"addresses", "n1=198.18.0.101/33", "n1=198.18.0.101/33"},
            {"addresses", "n1=nonsense/24", "n1=nonsense/24"},
            {"addresses", "198.18.0.101/24", "198.18.0.101/24"},
            {"addresses", "=198.18.0.101/24", "=198.18.0.101/24"},
            {"addresses", "n1=198.18.0.101/24 n!2=198.18.0.102/24", "n!2=198.18.0.102/24"},
            {"addresses", "", ""},
            {"group", "web group", "web group"},
            {"group", "web/1", "web/1"},
            {"nic", "eth0:1", "eth0:1"},
            {"nic", "averyveryverylongname", "averyveryverylongname"},
            {"interval", "fast", "fast"},
            {"interval", "10", "10"},
            {"interval", "60001", "60001"},
            {"interval", "-5", "-5"},
            {"failback", "maybe", "maybe"},
            {"failback", "", ""},
            {"orphan_timeout", "-1", "-1"},
            {"orphan_timeout", "soon", "soon"},
            {"orphan_timeout", "inf", "inf"},
            {"orphan_timeout", "nan", "nan"},
            {"orphan_timeout", "10s", "10s"},
            {"restart_grace", "1", "1"},
            {"restart_grace", "3601", "3601"},
            {"fencing", "sometimes", "sometimes"},
            {"placement", "round-robin", "round-robin"},
            {"tests", "tcp:0", "tcp:0"},
            {"tests", "tcp:80 ping:host", "ping:host"},
            {"tests", "http:ftp://host/", "http:ftp://host/"},
            {"tests", "exec:relative/path", "exec:relative/path"},
            {"test_interval", "0", "0"},
            {"test_failures", "0", "0"},
            {"test_failures", "many", "many"},
            {"load", "disk", "disk"},
            {"load", "conns:99999", "conns:99999"},
            {"load", "exec:relative", "exec:relative"},
            {"dns_server", "not-an-ip", "not-an-ip"},
            {"dns_server", "198.18.0.53:0", "198.18.0.53:0"},
            {"dns_server", "[2001:2::53", "[2001:2::53"},
            {"dns_server", "[2001:2::53]53", "[2001:2::53]53"},
            {"dns_ttl", "-5", "-5"},
            {"dns_ttl", "3000000000", "3000000000"},
            {"high_water", "hot", "hot"},
            {"low_water", "cold", "cold"},
            {"low_water", "-1", "-1"},
            {"min_addresses", "one", "one"},
            {"hook", "relative/hook", "relative/hook"},
            {"capacity", "0", "0"},
            {"capacity", "-3", "-3"},
            {"capacity", "lots", "lots"},
            {"capacity", "1e12", "1e12"},  // peers would drop an Info carrying it
            {"arp_probe_ms", "10001", "10001"},
            {"announce_interval", "86401", "86401"},
            {"announce_interval", "often", "often"},
            {"stop_timeout", "never", "never"},
            {"snmp_traps", "198.18.0.200 host/24", "host/24"},
        };
        for (const auto& b : table) {
            Pairs pairs;
            if (std::string(b.key) != "addresses") pairs.emplace_back("addresses", kGood);
            pairs.emplace_back(b.key, b.value);
            GroupConfig c;
            auto e = parse_config(pairs, &c);
            std::string what = std::string(b.key) + "='" + b.value + "'";
            CPPUNIT_ASSERT_MESSAGE(what + " accepted", e.has_value());
            CPPUNIT_ASSERT_EQUAL_MESSAGE(what + ": " + e->message, std::string(b.key), e->key);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(what + ": " + e->message, std::string(b.offending), e->value);
            CPPUNIT_ASSERT_MESSAGE(what + ": message does not name the key: " + e->message,
                                   contains(e->message, "'" + std::string(b.key) + "'"));
            CPPUNIT_ASSERT_MESSAGE(what + ": message does not quote the value: " + e->message,
                                   contains(e->message, "'" + std::string(b.offending) + "'"));
        }

        // dns_zone is required once dns_server is set.
        GroupConfig c;
        auto e = parse_config({{"addresses", kGood}, {"dns_server", "198.18.0.53"}}, &c);
        CPPUNIT_ASSERT(e.has_value());
        CPPUNIT_ASSERT_EQUAL(std::string("dns_zone"), e->key);
        CPPUNIT_ASSERT_MESSAGE(e->message, contains(e->message, "'dns_zone'"));
    }

    void testAddressesRequired() {
        GroupConfig c;
        auto e = parse_config({{"nic", "eth0"}}, &c);
        CPPUNIT_ASSERT(e.has_value());
        CPPUNIT_ASSERT_EQUAL(std::string("addresses"), e->key);
        CPPUNIT_ASSERT_MESSAGE(e->message, contains(e->message, "'addresses'"));
    }

    void testUnknownKeyRefused() {
        GroupConfig c;
        c.nic = "untouched";
        auto e = parse_config({{"addresses", kGood}, {"adresses", kGood}}, &c);
        CPPUNIT_ASSERT(e.has_value());
        CPPUNIT_ASSERT_EQUAL(std::string("adresses"), e->key);
        CPPUNIT_ASSERT_MESSAGE(e->message, contains(e->message, "'adresses'"));
        CPPUNIT_ASSERT_EQUAL_MESSAGE("output untouched on error", std::string("untouched"), c.nic);
        CPPUNIT_ASSERT(parse_config({{"addresses", kGood}, {"Addresses", kGood}}, &c).has_value());
    }

    void testLowWaterAboveHighWaterRefused() {
        GroupConfig c;
        auto e = parse_config({{"addresses", kGood}, {"high_water", "50"}, {"low_water", "70"}}, &c);
        CPPUNIT_ASSERT(e.has_value());
        CPPUNIT_ASSERT_EQUAL(std::string("low_water"), e->key);
        CPPUNIT_ASSERT_MESSAGE(e->message, contains(e->message, "low_water") && contains(e->message, "high_water"));
        CPPUNIT_ASSERT_MESSAGE(e->message, contains(e->message, "70") && contains(e->message, "50"));
        // Against the default low water (60).
        e = parse_config({{"addresses", kGood}, {"high_water", "50"}}, &c);
        CPPUNIT_ASSERT(e.has_value());
        CPPUNIT_ASSERT_MESSAGE(e->message, contains(e->message, "high_water"));
        // Equal is fine.
        parseOk({{"addresses", kGood}, {"high_water", "60"}, {"low_water", "60"}});
    }

    // An address listed twice, even with another prefix or spelling, would
    // have two preferred hosts.
    void testDuplicateAddressRefused() {
        const char* const dups[] = {"n1=198.18.0.101/24 n2=198.18.0.101/24", "n1=198.18.0.101/24 n1=198.18.0.101/24",
                                    "n1=198.18.0.101/24 n2=198.18.0.101/32",
                                    "n1=2001:2::101/64 n2=2001:2:0:0::101/64"};
        for (const char* value : dups) {
            GroupConfig c;
            auto e = parse_config({{"addresses", value}}, &c);
            CPPUNIT_ASSERT_MESSAGE(std::string(value) + " accepted", e.has_value());
            CPPUNIT_ASSERT_EQUAL(std::string("addresses"), e->key);
            CPPUNIT_ASSERT_MESSAGE(e->message, contains(e->message, "more than once"));
        }
    }

    // The leader waits up to 3 x interval for Infos (DESIGN §3); a grace
    // shorter than that would reassign before a silent member was noticed.
    void testRestartGraceAtLeastThreeIntervals() {
        GroupConfig c;
        auto e = parse_config({{"addresses", kGood}, {"interval", "4000"}}, &c);
        CPPUNIT_ASSERT(e.has_value());
        CPPUNIT_ASSERT_EQUAL(std::string("restart_grace"), e->key);
        CPPUNIT_ASSERT_MESSAGE(e->message, contains(e->message, "'restart_grace'") && contains(e->message, "interval"));
        parseOk({{"addresses", kGood}, {"interval", "4000"}, {"restart_grace", "12"}});
    }

    void testLaterPairOverrides() {
        GroupConfig c = parseOk({{"addresses", "n9=198.18.0.9/24"}, {"interval", "500"}, {"addresses", kGood},
                                 {"interval", "2000"}});
        CPPUNIT_ASSERT_EQUAL(2000u, c.interval_ms);
        CPPUNIT_ASSERT_EQUAL(std::size_t{2}, c.addresses.size());
    }

    void testDigestEqualForEqualConfig() {
        std::string d = digestOf({});
        CPPUNIT_ASSERT_EQUAL(std::size_t{64}, d.size());
        CPPUNIT_ASSERT_MESSAGE(d, d.find_first_not_of("0123456789abcdef") == std::string::npos);
        CPPUNIT_ASSERT_EQUAL(d, digestOf({}));
        // The same settings written differently.
        CPPUNIT_ASSERT_EQUAL(d, digestOf({{"addresses", "  n1=198.18.0.101/24   n2=198.18.0.102/24 "}}));
        CPPUNIT_ASSERT_EQUAL(d, digestOf({{"failback", "yes"}, {"orphan_timeout", "0.0"}, {"high_water", "80"},
                                          {"placement", "least-loaded"}, {"fencing", "auto"}}));
        CPPUNIT_ASSERT_EQUAL(digestOf({{"addresses", "n1=2001:2::101/64"}}),
                             digestOf({{"addresses", "n1=2001:0002:0000::0101/64"}}));
    }

    // DESIGN §3: node-local keys stay out of the digest, so hosts may
    // differ in them.
    void testDigestIgnoresNodeLocalKeys() {
        const std::string base = digestOf({});
        const Pairs local = {{"group", "other"},
                             {"nic", "eth7"},
                             {"interval", "200"},
                             {"restart_grace", "30"},
                             {"tests", "tcp:443"},
                             {"test_interval", "5000"},
                             {"test_failures", "9"},
                             {"load", "conns:80"},
                             {"hook", "/usr/local/bin/hook"},
                             {"capacity", "12"},
                             {"arp_probe_ms", "0"},
                             {"announce_interval", "3"},
                             {"stop_timeout", "7"},
                             {"snmp_traps", "198.18.0.200"},
                             {"snmp_community", "secret"}};
        for (const auto& kv : local)
            CPPUNIT_ASSERT_EQUAL_MESSAGE(kv.first + " changed the digest", base, digestOf({kv}));
        CPPUNIT_ASSERT_EQUAL_MESSAGE("all node-local keys at once", base, digestOf(local));
    }

    // Everything the leader's decisions (and the DNS plan) depend on.
    void testDigestChangesWithGroupWideKeys() {
        const std::string base = digestOf({});
        const Pairs wide = {
            {"addresses", "n1=198.18.0.101/24 n2=198.18.0.102/24 n3=198.18.0.103/24"},  // one more
            {"addresses", "n1=198.18.0.101/24 n3=198.18.0.102/24"},                      // another node
            {"addresses", "n1=198.18.0.101/24 n2=198.18.0.102/25"},                      // another prefix
            {"failback", "false"},
            {"placement", "random"},
            {"orphan_timeout", "60"},
            {"fencing", "off"},
            {"high_water", "90"},
            {"low_water", "50"},
            {"min_addresses", "2"},
            {"dns_name", "www"},
            {"dns_ttl", "60"},
        };
        for (const auto& kv : wide)
            CPPUNIT_ASSERT_MESSAGE(kv.first + "=" + kv.second + " left the digest unchanged", base != digestOf({kv}));
        CPPUNIT_ASSERT(digestOf({{"dns_server", "198.18.0.53"}, {"dns_zone", "a.test"}}) !=
                       digestOf({{"dns_server", "198.18.0.54"}, {"dns_zone", "a.test"}}));
        CPPUNIT_ASSERT(digestOf({{"dns_server", "198.18.0.53"}, {"dns_zone", "a.test"}}) !=
                       digestOf({{"dns_server", "198.18.0.53"}, {"dns_zone", "b.test"}}));

        // Values that differ only beyond six significant digits are still
        // different settings (about 11.6 days of orphan_timeout apart by 1 s).
        CPPUNIT_ASSERT_MESSAGE("orphan_timeout 1000000 and 1000001 share a digest",
                               digestOf({{"orphan_timeout", "1000000"}}) != digestOf({{"orphan_timeout", "1000001"}}));
        CPPUNIT_ASSERT_MESSAGE("high_water 80 and 80.0000001 share a digest",
                               digestOf({{"high_water", "80"}}) != digestOf({{"high_water", "80.0000001"}}));
    }

    // Hosts compare digests across versions (a rolling upgrade): the text
    // the digest is taken over stays what earlier versions wrote.
    void testCanonicalTextUnchanged() {
        CPPUNIT_ASSERT_EQUAL(std::string("addresses=n1=198.18.0.101/24 n2=198.18.0.102/24 \nfailback=1\n"
                                         "placement=least-loaded\norphan_timeout=0\nfencing=auto\nhigh_water=80\n"
                                         "low_water=60\nmin_addresses=1\ndns_server=\ndns_zone=\ndns_name=\n"
                                         "dns_ttl=30\n"),
                             parseOk({{"addresses", kGood}}).canonical());
        CPPUNIT_ASSERT_EQUAL(std::string("c08dabdd"), parseOk({{"addresses", kGood}}).digest().substr(0, 8));
    }

    // The table's invariants (parameters.h): rows in Param order, names
    // unique, every default parses and is what a default GroupConfig holds.
    void testTableRowsInOrderAndDefaultsParse() {
        const auto& rows = parameters();
        CPPUNIT_ASSERT_EQUAL(kParamCount, rows.size());
        for (std::size_t i = 0; i < rows.size(); i++) {
            const ParamSpec& p = rows[i];
            CPPUNIT_ASSERT_EQUAL_MESSAGE(p.name, i, static_cast<std::size_t>(p.id));
            CPPUNIT_ASSERT_EQUAL_MESSAGE(p.name, &p, find_param(p.name));
            CPPUNIT_ASSERT_MESSAGE(p.name, *p.shortdesc && *p.longdesc);
            if (!p.default_text) continue;
            Pairs pairs = {{p.name, p.default_text}};
            if (!p.required) pairs.insert(pairs.begin(), {"addresses", kGood});
            GroupConfig c;
            auto e = parse_config(pairs, &c);
            CPPUNIT_ASSERT_MESSAGE(std::string(p.name) + ": default does not parse", !e);
            CPPUNIT_ASSERT_MESSAGE(std::string(p.name) + ": default is not GroupConfig's",
                                   !c.diff(parseOk({{"addresses", kGood}})).has(p.id));
        }
        CPPUNIT_ASSERT(!find_param("Addresses"));
        CPPUNIT_ASSERT_EQUAL(std::string("'group' and 'nic'"), quoted_names(restart_only_params()));
    }

    void testDiffNamesChangedParameters() {
        GroupConfig a = parseOk({{"addresses", kGood}});
        CPPUNIT_ASSERT(a.diff(a).empty());
        GroupConfig b = parseOk({{"addresses", "n1=198.18.0.101/24 n2=198.18.0.102/25"}, {"interval", "500"},
                                 {"snmp_community", "x"}, {"stop_timeout", "5"}});
        ParamSet d = a.diff(b);
        std::vector<Param> want = {Param::Addresses, Param::Interval, Param::StopTimeout, Param::SnmpCommunity};
        CPPUNIT_ASSERT(want == d.list());
        CPPUNIT_ASSERT(d.any({Param::Nic, Param::Interval}));
        CPPUNIT_ASSERT(!d.any({Param::Nic, Param::Group}));
    }

    void testAgentMetadataFromTable() {
        std::string xml = agent_metadata("9.9");
        CPPUNIT_ASSERT(contains(xml, "<resource-agent name=\"servicegroup\" version=\"9.9\">"));
        for (const auto& p : parameters()) {
            std::string head = std::string("<parameter name=\"") + p.name + "\"" + (p.required ? " required=\"1\"" : "") +
                               " reloadable=\"" + (p.reloadable ? "1" : "0") + "\">";
            CPPUNIT_ASSERT_MESSAGE(head, contains(xml, head));
        }
        CPPUNIT_ASSERT(contains(xml, "<content type=\"integer\" default=\"1000\"/>"));
        CPPUNIT_ASSERT(contains(xml, "<shortdesc lang=\"en\">Info interval (ms)</shortdesc>"));
        CPPUNIT_ASSERT(contains(xml, "<action name=\"reload-agent\" timeout=\"20s\"/>"));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(AddressTest);
CPPUNIT_TEST_SUITE_REGISTRATION(ConfigTest);
