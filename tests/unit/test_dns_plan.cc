// The DNS plan (the patent's DNS thread, DESIGN §5.4), table-driven: one
// row per branch of the pseudocode, plus who is a candidate at all.

#include <cppunit/TestFixture.h>
#include <cppunit/extensions/HelperMacros.h>

#include <set>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/dns_plan.h"
#include "unit/common.h"

using namespace rais;
using namespace rais::test;

namespace {

// n1..n3 prefer A1..A3, each serving its own; high 80, low 60.
View view3(double u1, double u2, double u3, unsigned min_addresses = 1) {
    View v;
    auto e = parse_config({{"addresses", kAddresses}, {"group", "g"}, {"high_water", "80"}, {"low_water", "60"},
                           {"min_addresses", std::to_string(min_addresses)}},
                          &v.config);
    if (e) CPPUNIT_FAIL(e->message);
    const double u[] = {u1, u2, u3};
    const char* a[] = {A1, A2, A3};
    for (int i = 0; i < 3; i++) {
        HostView h;
        h.node = "n" + std::to_string(i + 1);
        h.id = static_cast<std::uint32_t>(i + 1);
        h.load = u[i];
        h.capacity = 100;
        h.serving.push_back({addr(a[i]), AddressState::Online});
        v.hosts.push_back(h);
    }
    return v;
}

std::set<ServiceAddress> set(std::initializer_list<const char*> as) {
    std::set<ServiceAddress> s;
    for (const char* a : as) s.insert(addr(a));
    return s;
}

std::string show(const std::set<ServiceAddress>& s) { return dns_list(s); }

}  // namespace

class DnsPlanTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(DnsPlanTest);
    CPPUNIT_TEST(testWaterMarkTable);
    CPPUNIT_TEST(testFloorWhenEveryHostIsOverloaded);
    CPPUNIT_TEST(testCandidates);
    CPPUNIT_TEST(testHostServingAnotherAddressLendsItsUtilization);
    CPPUNIT_TEST(testChangesCarryReasons);
    CPPUNIT_TEST_SUITE_END();

public:
    void testWaterMarkTable() {
        struct Row {
            const char* what;
            double u3;
            std::set<ServiceAddress> previous;
            bool in;  // is A3 advertised?
        } rows[] = {
            {"below low water: in", 10, {}, true},
            {"at low water: in (util <= low)", 60, {}, true},
            {"between the marks, advertised before: stays in", 70, set({A1, A2, A3}), true},
            {"between the marks, not advertised before: stays out", 70, set({A1, A2}), false},
            {"at high water, advertised before: stays in", 80, set({A1, A2, A3}), true},
            {"above high water: out", 81, set({A1, A2, A3}), false},
            {"far above: out", 300, {}, false},
        };
        for (const auto& r : rows) {
            View v = view3(10, 20, r.u3);
            DnsPlan p = plan_dns(v, r.previous);
            CPPUNIT_ASSERT_MESSAGE(std::string(r.what) + ": got " + show(p.advertised),
                                   p.advertised.count(addr(A3)) == (r.in ? 1u : 0u));
            CPPUNIT_ASSERT_MESSAGE(r.what, p.advertised.count(addr(A1)) && p.advertised.count(addr(A2)));
            CPPUNIT_ASSERT_EQUAL(p.advertised != r.previous, p.changed);
        }
    }

    void testFloorWhenEveryHostIsOverloaded() {
        // All above high water: the min_addresses least loaded stay.
        DnsPlan p = plan_dns(view3(95, 85, 90, 2), set({A1, A2, A3}));
        CPPUNIT_ASSERT_EQUAL(show(set({A2, A3})), show(p.advertised));
        // min_addresses 1: only the least loaded.
        p = plan_dns(view3(95, 85, 90, 1), {});
        CPPUNIT_ASSERT_EQUAL(show(set({A2})), show(p.advertised));
        // As many candidates as the floor: no one is removed.
        p = plan_dns(view3(95, 85, 90, 3), {});
        CPPUNIT_ASSERT_EQUAL(std::size_t{3}, p.advertised.size());
        // The floor counts in weighted order: n3 between the marks and not
        // advertised before weighs 70 + 20 = 90, n2 above high water
        // 85 + 20 = 105: n3 is the one kept.
        p = plan_dns(view3(95, 85, 70, 1), {});
        CPPUNIT_ASSERT_EQUAL(show(set({A3})), show(p.advertised));
    }

    void testCandidates() {
        // Orphaned (preferred host gone, served by a spare), quiesced,
        // failed, stopping, departed, unserved: never advertised.
        View v = view3(10, 10, 10);
        v.hosts[0].quiesced = true;
        v.hosts[1].ok = false;
        v.hosts.pop_back();  // n3 gone; its address served by spare n4
        HostView spare;
        spare.node = "n4";
        spare.id = 4;
        spare.serving.push_back({addr(A3), AddressState::Online});
        v.hosts.push_back(spare);
        DnsPlan p = plan_dns(v, set({A1, A2, A3}));
        CPPUNIT_ASSERT_EQUAL(std::string("(none)"), show(p.advertised));
        CPPUNIT_ASSERT(p.changed);

        v = view3(10, 10, 10);
        v.hosts[0].stopping = true;
        v.hosts[1].serving[0].state = AddressState::Acquiring;
        v.hosts[2].departed = true;
        p = plan_dns(v, {});
        CPPUNIT_ASSERT_EQUAL(std::string("(none)"), show(p.advertised));
    }

    void testHostServingAnotherAddressLendsItsUtilization() {
        // A2 is away from its (present, OK) preferred host n2 on n1 (a pin,
        // say): it is a candidate with n1's utilization.
        View v = view3(90, 10, 10);
        v.hosts[1].serving.clear();
        v.hosts[0].serving.push_back({addr(A2), AddressState::Online});
        DnsPlan p = plan_dns(v, {});
        CPPUNIT_ASSERT_EQUAL(show(set({A3})), show(p.advertised));
    }

    void testChangesCarryReasons() {
        DnsPlan p = plan_dns(view3(10, 20, 95), set({A1, A2, A3}));
        CPPUNIT_ASSERT_EQUAL(std::size_t{1}, p.changes.size());
        CPPUNIT_ASSERT_MESSAGE(p.changes[0], p.changes[0].rfind("-198.18.0.103 (n3 at 95% is above high water 80%", 0) == 0);
        p = plan_dns(view3(10, 20, 50), set({A1, A2}));
        CPPUNIT_ASSERT_EQUAL(std::size_t{1}, p.changes.size());
        CPPUNIT_ASSERT_MESSAGE(p.changes[0], p.changes[0].find("below low water 60%") != std::string::npos);
        // Unchanged: nothing to publish, nothing said.
        p = plan_dns(view3(10, 20, 50), set({A1, A2, A3}));
        CPPUNIT_ASSERT(!p.changed);
        CPPUNIT_ASSERT(p.changes.empty());
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(DnsPlanTest);
