// view_json: the JSON view of `raisctl plan --view` (DESIGN §5.2) and the
// one-line decisions it prints. Bad inputs are a table: each names the field
// a user must fix and quotes what they wrote.
#include <cppunit/TestFixture.h>
#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <vector>

#include "core/planner.h"
#include "core/random.h"
#include "core/view_json.h"

namespace {

using namespace rais;

// The view of DESIGN §5.2, verbatim.
const char* const kDesignExample = R"({"config": {"addresses": {"n1": "198.18.0.101/24", "n2": "198.18.0.102/24"},
            "failback": true, "placement": "least-loaded", "orphan_timeout": 0},
 "now": 1000.0,
 "hosts": [{"node": "n1", "id": 1, "ok": true, "quiesced": false,
            "load": 10, "capacity": 100,
            "serving": [{"address": "198.18.0.101/24", "state": "online"}]},
           {"node": "n4", "id": 4, "ok": true, "quiesced": false,
            "load": 0, "capacity": 100,
            "serving": [{"address": "198.18.0.102/24", "state": "online"}]}],
 "orphans": [{"address": "198.18.0.102/24", "since": 950.0}]})";

const char* const kConfig = R"({"addresses": {"n1": "198.18.0.101/24", "n2": "198.18.0.102/24"}})";
const char* const kHost = R"({"node": "n1", "id": 1})";

// A document with the given config and hosts, and optional further members.
std::string doc(const std::string& config, const std::string& hosts, const std::string& rest = "") {
    return "{\"config\": " + config + ", \"hosts\": " + hosts + rest + "}";
}

ServiceAddress addr(const char* text) { return *ServiceAddress::parse(text); }

View must_parse(const std::string& json) {
    View v;
    auto err = parse_view(json, &v);
    CPPUNIT_ASSERT_MESSAGE(err ? err->message : "", !err);
    return v;
}

void assert_same_view(const View& a, const View& b) {
    CPPUNIT_ASSERT_EQUAL(a.config.canonical(), b.config.canonical());
    CPPUNIT_ASSERT_EQUAL(a.config.group, b.config.group);
    CPPUNIT_ASSERT_EQUAL(a.config.interval_ms, b.config.interval_ms);
    CPPUNIT_ASSERT_EQUAL(a.config.restart_grace, b.config.restart_grace);
    CPPUNIT_ASSERT(a.config.tests == b.config.tests);
    CPPUNIT_ASSERT(a.config.capacity == b.config.capacity);
    CPPUNIT_ASSERT_EQUAL(a.config.hook, b.config.hook);
    CPPUNIT_ASSERT_EQUAL(a.now, b.now);
    CPPUNIT_ASSERT_EQUAL(a.hosts.size(), b.hosts.size());
    for (std::size_t i = 0; i < a.hosts.size(); i++) {
        const HostView& x = a.hosts[i];
        const HostView& y = b.hosts[i];
        CPPUNIT_ASSERT_EQUAL(x.node, y.node);
        CPPUNIT_ASSERT_EQUAL(x.id, y.id);
        CPPUNIT_ASSERT_EQUAL(x.ok, y.ok);
        CPPUNIT_ASSERT_EQUAL(x.quiesced, y.quiesced);
        CPPUNIT_ASSERT_EQUAL(x.stopping, y.stopping);
        CPPUNIT_ASSERT_EQUAL(x.config_match, y.config_match);
        CPPUNIT_ASSERT_EQUAL(x.departed, y.departed);
        CPPUNIT_ASSERT_EQUAL(x.departed_why, y.departed_why);
        CPPUNIT_ASSERT_EQUAL(x.load, y.load);
        CPPUNIT_ASSERT_EQUAL(x.capacity, y.capacity);
        CPPUNIT_ASSERT_EQUAL(x.serving.size(), y.serving.size());
        for (std::size_t j = 0; j < x.serving.size(); j++) {
            CPPUNIT_ASSERT_EQUAL(x.serving[j].address.str(), y.serving[j].address.str());
            CPPUNIT_ASSERT(x.serving[j].state == y.serving[j].state);
        }
    }
    CPPUNIT_ASSERT(a.orphans == b.orphans);
    CPPUNIT_ASSERT(a.pins == b.pins);
}

class ViewJsonTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ViewJsonTest);
    CPPUNIT_TEST(designExampleParses);
    CPPUNIT_TEST(designExamplePlansNoDecision);
    CPPUNIT_TEST(omittedHostFieldsTakeTheirDefaults);
    CPPUNIT_TEST(nodeMayPreferSeveralAddressesInDocumentOrder);
    CPPUNIT_TEST(extensionsAndOptionalConfigKeysAreRead);
    CPPUNIT_TEST(badInputNamesFieldAndQuotesValue);
    CPPUNIT_TEST(wrongTypeMessageQuotesTheJsonValue);
    CPPUNIT_TEST(notJsonReportsParserMessageWithEmptyField);
    CPPUNIT_TEST(errorLeavesOutputUntouched);
    CPPUNIT_TEST(viewToJsonRoundTripsDesignExample);
    CPPUNIT_TEST(viewToJsonRoundTripsEveryField);
    CPPUNIT_TEST(viewToJsonWritesOneAddressAsStringSeveralAsArray);
    CPPUNIT_TEST(viewToJsonOmitsDefaultExtensions);
    CPPUNIT_TEST(decisionToJsonAcquire);
    CPPUNIT_TEST(decisionToJsonCannotAssignHasNullNode);
    CPPUNIT_TEST(decisionToJsonHandover);
    CPPUNIT_TEST(decisionToJsonEscapesReasonOnOneLine);
    CPPUNIT_TEST_SUITE_END();

public:
    void designExampleParses() {
        View v = must_parse(kDesignExample);
        CPPUNIT_ASSERT_EQUAL(std::size_t{2}, v.config.addresses.size());
        CPPUNIT_ASSERT_EQUAL(std::string("n1"), v.config.addresses[0].node);
        CPPUNIT_ASSERT_EQUAL(std::string("198.18.0.101/24"), v.config.addresses[0].address.str());
        CPPUNIT_ASSERT_EQUAL(std::string("n2"), v.config.addresses[1].node);
        CPPUNIT_ASSERT(v.config.failback);
        CPPUNIT_ASSERT(v.config.placement == Placement::LeastLoaded);
        CPPUNIT_ASSERT_EQUAL(0.0, v.config.orphan_timeout);
        CPPUNIT_ASSERT_EQUAL(1000.0, v.now);
        CPPUNIT_ASSERT_EQUAL(std::size_t{2}, v.hosts.size());
        CPPUNIT_ASSERT_EQUAL(std::string("n4"), v.hosts[1].node);
        CPPUNIT_ASSERT_EQUAL(std::uint32_t{4}, v.hosts[1].id);
        CPPUNIT_ASSERT_EQUAL(10.0, v.hosts[0].load);
        CPPUNIT_ASSERT_EQUAL(100.0, v.hosts[0].capacity);
        CPPUNIT_ASSERT_EQUAL(std::size_t{1}, v.hosts[1].serving.size());
        CPPUNIT_ASSERT(v.hosts[1].serving[0].address == addr("198.18.0.102/24"));
        CPPUNIT_ASSERT(v.hosts[1].serving[0].state == AddressState::Online);
        CPPUNIT_ASSERT_EQUAL(std::size_t{1}, v.orphans.size());
        CPPUNIT_ASSERT_EQUAL(950.0, v.orphans.at(addr("198.18.0.102/24")));
        CPPUNIT_ASSERT(v.pins.empty());
    }

    // n2 is not a member, so its address is orphaned; n4 serves it and no
    // orphan_timeout applies: the leader has nothing to do.
    void designExamplePlansNoDecision() {
        View v = must_parse(kDesignExample);
        RandomSource random(1);
        Plan p = plan(v, random);
        CPPUNIT_ASSERT_EQUAL(std::size_t{0}, p.decisions.size());
        CPPUNIT_ASSERT_EQUAL(950.0, p.orphans.at(addr("198.18.0.102/24")));
    }

    void omittedHostFieldsTakeTheirDefaults() {
        View v = must_parse(doc(kConfig, std::string("[") + kHost + "]"));
        const HostView& h = v.hosts.at(0);
        CPPUNIT_ASSERT(h.ok);
        CPPUNIT_ASSERT(!h.quiesced);
        CPPUNIT_ASSERT(!h.stopping);
        CPPUNIT_ASSERT(h.config_match);
        CPPUNIT_ASSERT(!h.departed);
        CPPUNIT_ASSERT_EQUAL(0.0, h.load);
        CPPUNIT_ASSERT_EQUAL(100.0, h.capacity);
        CPPUNIT_ASSERT(h.serving.empty());
        CPPUNIT_ASSERT_EQUAL(0.0, v.now);
        CPPUNIT_ASSERT(v.orphans.empty());

        View s = must_parse(doc(kConfig, R"([{"node": "n1", "id": 1, "serving": [{"address": "198.18.0.101/24"}]}])"));
        CPPUNIT_ASSERT(s.hosts.at(0).serving.at(0).state == AddressState::Online);
    }

    void nodeMayPreferSeveralAddressesInDocumentOrder() {
        View v = must_parse(doc(R"({"addresses": {"n2": ["198.18.0.102/24", "2001:2::2/64"], "n1": "198.18.0.101/24"}})",
                                "[]"));
        const auto& a = v.config.addresses;
        CPPUNIT_ASSERT_EQUAL(std::size_t{3}, a.size());
        CPPUNIT_ASSERT_EQUAL(std::string("n2"), a[0].node);
        CPPUNIT_ASSERT_EQUAL(std::string("198.18.0.102/24"), a[0].address.str());
        CPPUNIT_ASSERT_EQUAL(std::string("n2"), a[1].node);
        CPPUNIT_ASSERT_EQUAL(std::string("2001:2::2/64"), a[1].address.str());
        CPPUNIT_ASSERT_EQUAL(std::string("n1"), a[2].node);
    }

    void extensionsAndOptionalConfigKeysAreRead() {
        View v = must_parse(doc(
            R"({"addresses": {"n1": "198.18.0.101/24"}, "failback": false, "placement": "random",
                "orphan_timeout": 30.5, "fencing": "off", "high_water": 90, "low_water": 50, "min_addresses": 2})",
            R"([{"node": "n1", "id": 1, "stopping": true, "config_match": false, "departed": true,
                 "departed_why": "process down", "serving": [{"address": "198.18.0.101/24", "state": "releasing"}]}])",
            R"(, "pins": [{"address": "198.18.0.101/24", "node": "n1"}])"));
        CPPUNIT_ASSERT(!v.config.failback);
        CPPUNIT_ASSERT(v.config.placement == Placement::Random);
        CPPUNIT_ASSERT_EQUAL(30.5, v.config.orphan_timeout);
        CPPUNIT_ASSERT(v.config.fencing == Fencing::Off);
        CPPUNIT_ASSERT_EQUAL(90.0, v.config.high_water);
        CPPUNIT_ASSERT_EQUAL(50.0, v.config.low_water);
        CPPUNIT_ASSERT_EQUAL(2u, v.config.min_addresses);
        const HostView& h = v.hosts.at(0);
        CPPUNIT_ASSERT(h.stopping);
        CPPUNIT_ASSERT(!h.config_match);
        CPPUNIT_ASSERT(h.departed);
        CPPUNIT_ASSERT_EQUAL(std::string("process down"), h.departed_why);
        CPPUNIT_ASSERT(h.serving.at(0).state == AddressState::Releasing);
        CPPUNIT_ASSERT_EQUAL(std::string("n1"), v.pins.at(addr("198.18.0.101/24")));
    }

    void badInputNamesFieldAndQuotesValue() {
        struct Case {
            const char* what;
            std::string json;
            const char* field;
            const char* value;  // as JSON text; empty when missing
        };
        const std::string one_host = std::string("[") + kHost + "]";
        auto serving = [](const std::string& s) {
            return R"([{"node": "n1", "id": 1, "serving": [)" + s + "]}]";
        };
        const std::vector<Case> cases = {
            {"document not an object", "[1, 2]", "", "[1,2]"},
            {"config missing", R"({"hosts": []})", "config", ""},
            {"hosts missing", std::string("{\"config\": ") + kConfig + "}", "hosts", ""},
            {"unknown top-level key", doc(kConfig, "[]", R"(, "host": [])"), "host", "[]"},
            {"now not a number", doc(kConfig, "[]", R"(, "now": "soon")"), "now", "\"soon\""},
            {"now infinite", doc(kConfig, "[]", R"(, "now": 1e999)"), "now", "inf.0"},
            {"hosts not an array", doc(kConfig, "{}"), "hosts", "{}"},
            {"host without id", doc(kConfig, R"([{"node": "n1", "id": 1}, {"node": "n2"}])"), "hosts[1].id", ""},
            {"id a string", doc(kConfig, R"([{"node": "n1", "id": "one"}])"), "hosts[0].id", "\"one\""},
            {"id zero", doc(kConfig, R"([{"node": "n1", "id": 0}])"), "hosts[0].id", "0"},
            {"id fractional", doc(kConfig, R"([{"node": "n1", "id": 1.5}])"), "hosts[0].id", "1.5"},
            {"id beyond 32 bits", doc(kConfig, R"([{"node": "n1", "id": 4294967296}])"), "hosts[0].id", "4294967296"},
            {"host without node", doc(kConfig, R"([{"id": 1}])"), "hosts[0].node", ""},
            {"node empty", doc(kConfig, R"([{"node": "", "id": 1}])"), "hosts[0].node", "\"\""},
            {"ok not a boolean", doc(kConfig, R"([{"node": "n1", "id": 1, "ok": "yes"}])"), "hosts[0].ok", "\"yes\""},
            {"load negative", doc(kConfig, R"([{"node": "n1", "id": 1, "load": -1}])"), "hosts[0].load", "-1"},
            {"capacity null", doc(kConfig, R"([{"node": "n1", "id": 1, "capacity": null}])"), "hosts[0].capacity",
             "null"},
            {"unknown host key", doc(kConfig, R"([{"node": "n1", "id": 1, "oK": true}])"), "hosts[0].oK", "true"},
            {"duplicate node", doc(kConfig, R"([{"node": "n1", "id": 1}, {"node": "n1", "id": 2}])"),
             "hosts[1].node", "\"n1\""},
            {"duplicate id", doc(kConfig, R"([{"node": "n1", "id": 1}, {"node": "n2", "id": 1}])"), "hosts[1].id",
             "1"},
            {"serving not an array", doc(kConfig, R"([{"node": "n1", "id": 1, "serving": "198.18.0.101/24"}])"),
             "hosts[0].serving", "\"198.18.0.101/24\""},
            {"invalid address in serving", doc(kConfig, serving(R"({"address": "198.18.0.300/24"})")),
             "hosts[0].serving[0].address", "\"198.18.0.300/24\""},
            {"serving address without prefix", doc(kConfig, serving(R"({"address": "198.18.0.101"})")),
             "hosts[0].serving[0].address", "\"198.18.0.101\""},
            {"serving address missing", doc(kConfig, serving(R"({"state": "online"})")),
             "hosts[0].serving[0].address", ""},
            {"bad state", doc(kConfig, serving(R"({"address": "198.18.0.101/24", "state": "up"})")),
             "hosts[0].serving[0].state", "\"up\""},
            {"unknown serving key",
             doc(kConfig, serving(R"({"address": "198.18.0.101/24", "since": 3})")),
             "hosts[0].serving[0].since", "3"},
            {"address served twice by one host",
             doc(kConfig, serving(R"({"address": "198.18.0.101/24"}, {"address": "198.18.0.101/32"})")),
             "hosts[0].serving[1].address", "\"198.18.0.101/32\""},
            {"config not an object", doc("\"n1=198.18.0.101/24\"", "[]"), "config", "\"n1=198.18.0.101/24\""},
            {"addresses missing", doc(R"({"failback": true})", "[]"), "config.addresses", ""},
            {"addresses empty", doc(R"({"addresses": {}})", "[]"), "config.addresses", "{}"},
            {"addresses value a number", doc(R"({"addresses": {"n1": 5}})", "[]"), "config.addresses.n1", "5"},
            {"addresses value an object", doc(R"({"addresses": {"n1": {"a": "198.18.0.101/24"}}})", "[]"),
             "config.addresses.n1", "{\"a\":\"198.18.0.101/24\"}"},
            {"addresses list holds a number", doc(R"({"addresses": {"n1": ["198.18.0.101/24", 7]}})", "[]"),
             "config.addresses.n1[1]", "7"},
            {"invalid address in config", doc(R"({"addresses": {"n1": "198.18.0.300/24"}})", "[]"),
             "config.addresses.n1", "\"198.18.0.300/24\""},
            {"address in config without prefix", doc(R"({"addresses": {"n1": "198.18.0.101"}})", "[]"),
             "config.addresses.n1", "\"198.18.0.101\""},
            {"two addresses in one string", doc(R"({"addresses": {"n1": "198.18.0.101/24 198.18.0.102/24"}})", "[]"),
             "config.addresses.n1", "\"198.18.0.101/24 198.18.0.102/24\""},
            {"address preferred by two nodes",
             doc(R"({"addresses": {"n1": "198.18.0.101/24", "n2": ["198.18.0.102/24", "198.18.0.101/24"]}})", "[]"),
             "config.addresses.n2[1]", "\"198.18.0.101/24\""},
            {"node name with a blank", doc(R"({"addresses": {"n 1": "198.18.0.101/24"}})", "[]"),
             "config.addresses.n 1", "\"198.18.0.101/24\""},
            {"node name not a cluster name", doc(R"({"addresses": {"n!": "198.18.0.101/24"}})", "[]"),
             "config.addresses.n!", "\"198.18.0.101/24\""},
            {"unknown config key",
             doc(R"({"addresses": {"n1": "198.18.0.101/24"}, "failbak": true})", "[]"), "config.failbak", "true"},
            {"failback not a boolean",
             doc(R"({"addresses": {"n1": "198.18.0.101/24"}, "failback": "maybe"})", "[]"), "config.failback",
             "\"maybe\""},
            {"placement unknown",
             doc(R"({"addresses": {"n1": "198.18.0.101/24"}, "placement": "sideways"})", "[]"), "config.placement",
             "\"sideways\""},
            {"orphan_timeout negative",
             doc(R"({"addresses": {"n1": "198.18.0.101/24"}, "orphan_timeout": -5})", "[]"),
             "config.orphan_timeout", "-5"},
            {"min_addresses fractional",
             doc(R"({"addresses": {"n1": "198.18.0.101/24"}, "min_addresses": 1.5})", "[]"),
             "config.min_addresses", "1.5"},
            {"config value an array",
             doc(R"({"addresses": {"n1": "198.18.0.101/24"}, "fencing": ["off"]})", "[]"), "config.fencing",
             "[\"off\"]"},
            {"orphans entry without since", doc(kConfig, one_host, R"(, "orphans": [{"address": "198.18.0.102/24"}])"),
             "orphans[0].since", ""},
            {"orphan listed twice",
             doc(kConfig, one_host,
                 R"(, "orphans": [{"address": "198.18.0.102/24", "since": 1}, {"address": "198.18.0.102/24", "since": 2}])"),
             "orphans[1].address", "\"198.18.0.102/24\""},
            {"pin with empty node", doc(kConfig, one_host, R"(, "pins": [{"address": "198.18.0.102/24", "node": ""}])"),
             "pins[0].node", "\"\""},
            {"unknown pin key",
             doc(kConfig, one_host, R"(, "pins": [{"address": "198.18.0.102/24", "node": "n1", "sticky": true}])"),
             "pins[0].sticky", "true"},
        };
        for (const auto& c : cases) {
            View v;
            auto err = parse_view(c.json, &v);
            CPPUNIT_ASSERT_MESSAGE(std::string(c.what) + ": accepted", err.has_value());
            CPPUNIT_ASSERT_EQUAL_MESSAGE(std::string(c.what) + ": field (" + err->message + ")", std::string(c.field),
                                         err->field);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(std::string(c.what) + ": value (" + err->message + ")", std::string(c.value),
                                         err->value);
            // The message names the field for the user, whatever else it says.
            CPPUNIT_ASSERT_MESSAGE(std::string(c.what) + ": message " + err->message,
                                   err->message.compare(0, err->field.size(), err->field) == 0);
        }
    }

    void wrongTypeMessageQuotesTheJsonValue() {
        View v;
        auto err = parse_view(doc(kConfig, R"([{"node": "n1", "id": 1}, {"node": "n2", "id": "one"}])"), &v);
        CPPUNIT_ASSERT(err);
        CPPUNIT_ASSERT_EQUAL(std::string("hosts[1].id: expected a positive integer, got \"one\""), err->message);

        err = parse_view(doc(R"({"addresses": {"n1": "198.18.0.101/24"}, "placement": "sideways"})", "[]"), &v);
        CPPUNIT_ASSERT(err);
        CPPUNIT_ASSERT_EQUAL(std::string("config.placement: expected least-loaded or random, got \"sideways\""),
                             err->message);
    }

    void notJsonReportsParserMessageWithEmptyField() {
        for (const char* text : {"nope", "{\"config\": ", "", "{\"a\": 1,}"}) {
            View v;
            auto err = parse_view(text, &v);
            CPPUNIT_ASSERT_MESSAGE(text, err.has_value());
            CPPUNIT_ASSERT_EQUAL_MESSAGE(text, std::string(), err->field);
            CPPUNIT_ASSERT_MESSAGE(err->message, err->message.find("not valid JSON") != std::string::npos);
        }
    }

    void errorLeavesOutputUntouched() {
        View v;
        v.now = 42;
        v.hosts.resize(3);
        CPPUNIT_ASSERT(parse_view(doc(kConfig, R"([{"node": "n1"}])"), &v));
        CPPUNIT_ASSERT_EQUAL(42.0, v.now);
        CPPUNIT_ASSERT_EQUAL(std::size_t{3}, v.hosts.size());
    }

    void viewToJsonRoundTripsDesignExample() {
        View v = must_parse(kDesignExample);
        std::string text = view_to_json(v);
        View back = must_parse(text);
        assert_same_view(v, back);
        CPPUNIT_ASSERT_EQUAL(text, view_to_json(back));
    }

    void viewToJsonRoundTripsEveryField() {
        View v;
        std::vector<std::pair<std::string, std::string>> kv = {
            {"addresses", "n1=198.18.0.101/24 n1=2001:2::1/64 n2=198.18.0.102/24"},
            {"failback", "false"}, {"placement", "random"}, {"orphan_timeout", "0.1"}, {"fencing", "require"},
            {"high_water", "85.5"}, {"low_water", "40"}, {"min_addresses", "3"}, {"dns_server", "198.18.0.53:5353"},
            {"dns_zone", "example.test"}, {"dns_name", "www"}, {"dns_ttl", "60"}, {"group", "web"}, {"nic", "eth1"},
            {"interval", "500"}, {"restart_grace", "4"}, {"tests", "tcp:80 exec:/bin/true"}, {"capacity", "250"},
            {"hook", "/usr/local/bin/hook"}, {"stop_timeout", "20"}, {"snmp_traps", "198.18.0.9:162"}};
        CPPUNIT_ASSERT(!parse_config(kv, &v.config));
        v.now = 1234.25;
        HostView a;
        a.node = "n1";
        a.id = 1;
        a.ok = false;
        a.quiesced = true;
        a.load = 0.1;
        a.capacity = 0;
        a.serving = {{addr("198.18.0.101/24"), AddressState::Acquiring}, {addr("2001:2::1/64"), AddressState::Releasing}};
        HostView b;
        b.node = "n3";
        b.id = 3;
        b.stopping = true;
        b.config_match = false;
        b.departed = true;
        b.departed_why = "node down, \"unfenced\"\n";
        b.load = 1e-3;
        b.serving = {{addr("198.18.0.102/24"), AddressState::Online}};
        v.hosts = {a, b};
        v.orphans[addr("198.18.0.102/24")] = 1000.5;
        v.pins[addr("2001:2::1/64")] = "n3";

        std::string text = view_to_json(v);
        View back = must_parse(text);
        assert_same_view(v, back);
        CPPUNIT_ASSERT_EQUAL(v.config.digest(), back.config.digest());
        CPPUNIT_ASSERT_EQUAL(text, view_to_json(back));
    }

    void viewToJsonWritesOneAddressAsStringSeveralAsArray() {
        View v = must_parse(doc(R"({"addresses": {"n1": "198.18.0.101/24", "n2": ["198.18.0.102/24", "198.18.0.103/24"]}})",
                                "[]"));
        std::string text = view_to_json(v);
        CPPUNIT_ASSERT_MESSAGE(text, text.find("\"n1\" : \"198.18.0.101/24\"") != std::string::npos);
        CPPUNIT_ASSERT_MESSAGE(text, text.find("\"n2\" : [") != std::string::npos);
    }

    void viewToJsonOmitsDefaultExtensions() {
        std::string text = view_to_json(must_parse(kDesignExample));
        for (const char* key : {"stopping", "config_match", "departed", "pins", "fencing", "dns_"})
            CPPUNIT_ASSERT_MESSAGE(std::string(key) + " in " + text, text.find(key) == std::string::npos);
        for (const char* key : {"failback", "placement", "orphan_timeout", "orphans", "serving"})
            CPPUNIT_ASSERT_MESSAGE(std::string(key) + " not in " + text, text.find(key) != std::string::npos);
    }

    void decisionToJsonAcquire() {
        Decision d{Action::Acquire, addr("198.18.0.102/24"), "n4", 4, false,
                   "n2 is not a member; hot spare n4 is least loaded (0.0%, 0 addresses)"};
        CPPUNIT_ASSERT_EQUAL(std::string("{\"action\": \"acquire\", \"address\": \"198.18.0.102/24\", \"node\": \"n4\", "
                                         "\"reason\": \"n2 is not a member; hot spare n4 is least loaded (0.0%, 0 "
                                         "addresses)\"}"),
                             decision_to_json(d));
    }

    void decisionToJsonCannotAssignHasNullNode() {
        Decision d{Action::CannotAssign, addr("2001:2::2/64"), "", 0, false, "no eligible host"};
        CPPUNIT_ASSERT_EQUAL(std::string("{\"action\": \"cannot_assign\", \"address\": \"2001:2::2/64\", \"node\": null, "
                                         "\"reason\": \"no eligible host\"}"),
                             decision_to_json(d));
    }

    void decisionToJsonHandover() {
        Decision d{Action::Acquire, addr("198.18.0.101/24"), "n3", 3, true, "moved to n3 by the operator (handover)"};
        CPPUNIT_ASSERT_EQUAL(std::string("{\"action\": \"acquire\", \"address\": \"198.18.0.101/24\", \"node\": \"n3\", "
                                         "\"reason\": \"moved to n3 by the operator (handover)\", \"handover\": true}"),
                             decision_to_json(d));
    }

    void decisionToJsonEscapesReasonOnOneLine() {
        Decision d{Action::Release, addr("198.18.0.101/24"), "n1", 1, false, "say \"why\"\nback\\slash"};
        std::string line = decision_to_json(d);
        CPPUNIT_ASSERT_EQUAL(std::string("{\"action\": \"release\", \"address\": \"198.18.0.101/24\", \"node\": \"n1\", "
                                         "\"reason\": \"say \\\"why\\\"\\nback\\\\slash\"}"),
                             line);
        CPPUNIT_ASSERT(line.find('\n') == std::string::npos);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ViewJsonTest);

}  // namespace
