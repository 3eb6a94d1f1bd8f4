// The pure parts of raisd's health tests and alert delivery: test specs,
// HTTP URLs and status lines, the CIB's <alerts> section as pcs writes it,
// and Pacemaker's timestamp-format with %N.

#include <cppunit/TestFixture.h>
#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "daemon/service/health_tests.h"
#include "daemon/outside/notifier.h"

using namespace rais;

namespace {

// What `cibadmin --query --scope alerts` printed after
//   pcs alert create id=a1 path=/usr/local/bin/agent.sh meta timeout=5s timestamp-format=%s.%3N
//   pcs alert recipient add a1 id=a1-r value=/tmp/alerts.log
//   pcs alert create id=a2 path=/bin/nodes-only  (with a <select> of nodes)
const char* kAlerts = R"(<alerts>
  <alert id="a1" path="/usr/local/bin/agent.sh">
    <meta_attributes id="a1-meta_attributes">
      <nvpair id="a1-meta_attributes-timeout" name="timeout" value="5s"/>
      <nvpair id="a1-meta_attributes-timestamp-format" name="timestamp-format" value="%s.%3N"/>
    </meta_attributes>
    <instance_attributes id="a1-instance_attributes">
      <nvpair id="a1-instance_attributes-mode" name="mode" value="verbose"/>
    </instance_attributes>
    <recipient id="a1-r" value="/tmp/alerts.log">
      <meta_attributes id="a1-r-meta"><nvpair id="a1-r-t" name="timeout" value="99s"/></meta_attributes>
    </recipient>
    <recipient id="a1-r2" value="/tmp/second.log"/>
  </alert>
  <alert id="a2" path="/bin/nodes-only">
    <select><select_nodes/></select>
  </alert>
  <alert id="a3" path="/bin/resources">
    <select><select_nodes/><select_resources/></select>
  </alert>
</alerts>)";

}  // namespace

class HealthAlertsTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(HealthAlertsTest);
    CPPUNIT_TEST(testTestSpecs);
    CPPUNIT_TEST(testHttpUrls);
    CPPUNIT_TEST(testHttpStatusLines);
    CPPUNIT_TEST(testAlertsSection);
    CPPUNIT_TEST(testAlertsMalformed);
    CPPUNIT_TEST(testAlertTimestamps);
    CPPUNIT_TEST_SUITE_END();

public:
    void testTestSpecs() {
        CPPUNIT_ASSERT(!HealthTests::check({"tcp:80", "tcp:198.18.0.1:80", "tcp:[::1]:8080",
                                            "http:http://127.0.0.1:8080/health", "exec:/bin/true"}));
        for (const char* bad : {"tcp:", "tcp:0", "tcp:65536", "tcp:http", "udp:53", "http:https://x/", "exec:",
                                "http:127.0.0.1/"}) {
            auto e = HealthTests::check({bad});
            CPPUNIT_ASSERT_MESSAGE(std::string("accepted ") + bad, e);
            CPPUNIT_ASSERT_MESSAGE(*e, e->find("parameter 'tests'") != std::string::npos &&
                                           e->find(bad) != std::string::npos);
        }
    }

    void testHttpUrls() {
        auto t = parse_http_url("http://127.0.0.1:8080/health?x=1");
        CPPUNIT_ASSERT(t);
        CPPUNIT_ASSERT_EQUAL(std::string("127.0.0.1"), t->host);
        CPPUNIT_ASSERT_EQUAL(8080u, t->port);
        CPPUNIT_ASSERT_EQUAL(std::string("/health?x=1"), t->path);
        t = parse_http_url("http://web.example");
        CPPUNIT_ASSERT(t && t->host == "web.example" && t->port == 80 && t->path == "/");
        t = parse_http_url("http://[2001:2::1]:81/");
        CPPUNIT_ASSERT(t && t->host == "2001:2::1" && t->port == 81);
        t = parse_http_url("http://[2001:2::1]/x");
        CPPUNIT_ASSERT(t && t->host == "2001:2::1" && t->port == 80 && t->path == "/x");
        for (const char* bad : {"https://x/", "http://", "http://2001:2::1/", "http://h:99999/", "http://h/a b"})
            CPPUNIT_ASSERT_MESSAGE(bad, !parse_http_url(bad));
    }

    void testHttpStatusLines() {
        CPPUNIT_ASSERT_EQUAL(200, *parse_http_status("HTTP/1.0 200 OK"));
        CPPUNIT_ASSERT_EQUAL(302, *parse_http_status("HTTP/1.1 302 Found"));
        CPPUNIT_ASSERT_EQUAL(503, *parse_http_status("HTTP/1.1 503"));
        CPPUNIT_ASSERT(!parse_http_status("SSH-2.0-OpenSSH"));
        CPPUNIT_ASSERT(!parse_http_status("HTTP/1.1 20 OK"));
        CPPUNIT_ASSERT(!parse_http_status("HTTP/1.1 2000 OK"));
    }

    void testAlertsSection() {
        std::string err;
        auto a = parse_alerts(kAlerts, &err);
        CPPUNIT_ASSERT_MESSAGE(err, a);
        CPPUNIT_ASSERT_EQUAL(std::size_t{3}, a->size());
        const AlertAgent& a1 = (*a)[0];
        CPPUNIT_ASSERT_EQUAL(std::string("a1"), a1.id);
        CPPUNIT_ASSERT_EQUAL(std::string("/usr/local/bin/agent.sh"), a1.path);
        CPPUNIT_ASSERT_EQUAL(5000u, a1.timeout_ms);  // the recipient's own meta does not override
        CPPUNIT_ASSERT_EQUAL(std::string("%s.%3N"), a1.timestamp_format);
        CPPUNIT_ASSERT(a1.selects_resources);
        CPPUNIT_ASSERT_EQUAL(std::size_t{2}, a1.recipients.size());
        CPPUNIT_ASSERT_EQUAL(std::string("/tmp/alerts.log"), a1.recipients[0]);
        CPPUNIT_ASSERT_EQUAL(std::size_t{1}, a1.attributes.size());
        CPPUNIT_ASSERT_EQUAL(std::string("mode"), a1.attributes[0].first);
        CPPUNIT_ASSERT_MESSAGE("a <select> without resources", !(*a)[1].selects_resources);
        CPPUNIT_ASSERT_EQUAL(30000u, (*a)[1].timeout_ms);
        CPPUNIT_ASSERT((*a)[2].selects_resources);
        auto none = parse_alerts("<alerts/>", &err);
        CPPUNIT_ASSERT(none && none->empty());
    }

    void testAlertsMalformed() {
        std::string err;
        CPPUNIT_ASSERT(!parse_alerts("<alerts><alert id='x' path='/p'>", &err));
        CPPUNIT_ASSERT(!err.empty());
    }

    void testAlertTimestamps() {
        // 2026-01-02 03:04:05.678901 UTC, printed in the local zone: compare
        // only what does not depend on it.
        std::int64_t us = 1767323045678901;
        CPPUNIT_ASSERT_EQUAL(std::string("1767323045.678"), format_alert_time("%s.%3N", us));
        CPPUNIT_ASSERT_EQUAL(std::string("05.678901"), format_alert_time("%S.%06N", us));
        CPPUNIT_ASSERT_EQUAL(std::string("05.678901000"), format_alert_time("%S.%N", us));
        CPPUNIT_ASSERT_EQUAL(std::string("100%"), format_alert_time("100%%", us));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(HealthAlertsTest);
