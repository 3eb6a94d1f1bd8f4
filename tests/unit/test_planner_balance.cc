// Planner tests, placement and output invariants: least-loaded order
// (utilization, then addresses held counting this pass, then node id), hot
// spares before non-spares, the seeded random pick, capacity weighting
// (DESIGN §5.2); then every decision's reason and the invariants of
// planner.h checked over many random views. The patent's rules:
// test_planner.cc; the host table and expectDecisions(): test_planner.h.

#include <cppunit/TestFixture.h>
#include <cppunit/extensions/HelperMacros.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "unit/test_planner.h"

using namespace rais;
using namespace rais::test;

class PlannerBalanceTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(PlannerBalanceTest);
    // Placement precisions.
    CPPUNIT_TEST(testLeastLoadedOrderUtilizationThenCountThenId);
    CPPUNIT_TEST(testSparesBeforeNonSpares);
    CPPUNIT_TEST(testRandomPlacementUsesSeededSourceWithinTier);
    CPPUNIT_TEST(testCapacityZeroCountsAsHundred);
    // Output invariants.
    CPPUNIT_TEST(testEveryDecisionHasReason);
    CPPUNIT_TEST(testOneAddressNeverBothReleasedAndAcquiredInOnePass);
    CPPUNIT_TEST_SUITE_END();

public:
    // DESIGN §5.2: least-loaded orders by (utilization, addresses held
    // counting those given in this pass, node id), lowest first.
    void testLeastLoadedOrderUtilizationThenCountThenId() {
        // Utilization is load x 100 / capacity, not raw load; it ranks before
        // the count, so the least utilized spare takes all three.
        View util = view({
            host("n4", 4).load(50, 200),  // 25 %
            host("n5", 5).load(30, 100),  // 30 %
        });
        expectDecisions(util, run(util),
                        {acquire(A1, "n4", {"n4"}), acquire(A2, "n4", {"n4"}), acquire(A3, "n4", {"n4"})});

        // Equal utilization: fewest addresses, counting what this pass gave.
        // n4 already holds A3: A1 goes to n5; then both hold one and the
        // lower id, n4, takes A2.
        View count = view({
            host("n4", 4).serves(A3),
            host("n5", 5),
        });
        expectDecisions(count, run(count), {acquire(A1, "n5", {"n5"}), acquire(A2, "n4", {"n4"})});

        // All equal: lowest node id, whatever the order of the table.
        View id = view({
            host("n6", 6),
            host("n5", 5),
            host("n4", 4),
        });
        expectDecisions(id, run(id),
                        {acquire(A1, "n4", {"n4"}), acquire(A2, "n5", {"n5"}), acquire(A3, "n6", {"n6"})});
    }

    // DESIGN §5.2: hot spares first, then non-spare eligible hosts; a hot
    // spare is a host with no configured address, whatever it serves now.
    void testSparesBeforeNonSpares() {
        View v = view({
            host("n2", 2).serves(A2).load(0),
            host("n4", 4).serves(A3).load(95),
        });
        expectDecisions(v, run(v), {acquire(A1, "n4", {"hot spare", "n4"})});
    }

    // DESIGN §5.2: random picks uniformly within the tier from the seeded
    // source; the same seed gives the same plan.
    void testRandomPlacementUsesSeededSourceWithinTier() {
        View v = view({
            host("n2", 2).serves(A2),
            host("n3", 3).serves(A3),
            host("n4", 4).load(90),
            host("n5", 5),
            host("n6", 6).load(40),
        });
        v.config.placement = Placement::Random;
        std::map<std::string, int> picks;
        const int kSeeds = 300;
        for (std::uint64_t seed = 1; seed <= kSeeds; seed++) {
            Plan p = run(v, seed);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(describe(p), std::size_t{1}, p.decisions.size());
            const Decision& d = p.decisions[0];
            CPPUNIT_ASSERT(d.action == Action::Acquire && d.address == addr(A1));
            CPPUNIT_ASSERT_MESSAGE("picked a non-spare while spares exist: " + describe(d),
                                   d.node == "n4" || d.node == "n5" || d.node == "n6");
            CPPUNIT_ASSERT_MESSAGE(describe(d), d.reason.find(d.node) != std::string::npos);
            Plan again = run(v, seed);
            CPPUNIT_ASSERT_EQUAL_MESSAGE("same seed, same plan", d.node, again.decisions.at(0).node);
            picks[d.node]++;
        }
        CPPUNIT_ASSERT_EQUAL(std::size_t{3}, picks.size());
        for (const auto& [node, n] : picks)
            CPPUNIT_ASSERT_MESSAGE(node + " picked " + std::to_string(n) + " times of 300: not uniform", n >= 60);

        // No spare: the non-spare tier, uniformly too.
        View noSpare = view({host("n2", 2).serves(A2).load(90), host("n3", 3).serves(A3)});
        noSpare.config.placement = Placement::Random;
        std::set<std::string> seen;
        for (std::uint64_t seed = 1; seed <= 64; seed++) seen.insert(run(noSpare, seed).decisions.at(0).node);
        CPPUNIT_ASSERT_EQUAL(std::size_t{2}, seen.size());
    }

    // DESIGN §5.2: capacity 0 counts as 100.
    void testCapacityZeroCountsAsHundred() {
        HostView h = host("n4", 4).load(30, 0);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(30.0, h.utilization(), 1e-9);

        // 30 % beats 40 %: capacity 0 is not "infinitely loaded" ...
        View lower = view({host("n4", 4).load(30, 0), host("n5", 5).load(40, 100)},
                          "n1=198.18.0.101/24");
        expectDecisions(lower, run(lower), {acquire(A1, "n4", {"n4"})});
        // ... nor "unloaded": 50 % loses to 40 %.
        View higher = view({host("n4", 4).load(50, 0), host("n5", 5).load(40, 100)},
                           "n1=198.18.0.101/24");
        expectDecisions(higher, run(higher), {acquire(A1, "n5", {"n5"})});
    }

    // DESIGN §2: every decision carries a reason naming the host behind it.
    void testEveryDecisionHasReason() {
        std::vector<View> views = {
            view({host("n1", 1), host("n2", 2).serves(A2), host("n4", 4).serves(A3)}),
            view({host("n1", 1).quiesced(), host("n2", 2).stopping().serves(A2), host("n4", 4)}),
            view({host("n1", 1).serves(A1), host("n2", 2).serves(A1), host("n4", 4).serves(A2)}),
            view({host("n1", 1), host("n4", 4).serves(A1).serves("198.18.0.9/24")}),
            view({host("n2", 2).quiesced()}),
        };
        View expired = view({host("n4", 4).serves(A1)});
        expired.config.orphan_timeout = 5;
        expired.orphans[addr(A1)] = 0;
        views.push_back(expired);

        std::set<Action> kinds;
        for (const View& v : views) {
            Plan p = run(v);
            for (const auto& d : p.decisions) {
                kinds.insert(d.action);
                CPPUNIT_ASSERT_MESSAGE("empty reason: " + describe(d), !d.reason.empty());
                const std::string* pref = v.config.preferred_node(d.address);
                bool names = false;
                if (d.action == Action::Acquire) names = d.reason.find(d.node) != std::string::npos;
                else if (d.action == Action::CannotAssign || d.action == Action::Expire)
                    names = pref && d.reason.find(*pref) != std::string::npos;
                else if (!pref)
                    names = d.reason.find(d.address.ip()) != std::string::npos;
                else
                    for (const auto& h : v.hosts) names = names || d.reason.find(h.node) != std::string::npos;
                CPPUNIT_ASSERT_MESSAGE("reason names no relevant host: " + describe(d), names);
            }
        }
        CPPUNIT_ASSERT_EQUAL_MESSAGE("every kind of decision exercised", std::size_t{4}, kinds.size());
    }

    // Invariants over many random views (DESIGN §5.2, planner.h).
    void testOneAddressNeverBothReleasedAndAcquiredInOnePass() {
        RandomSource r(20240601);
        const char* pool[] = {A1, A2, A3, "198.18.0.104/24", "2001:2::102/64", "198.18.0.200/24",
                              "2001:2::200/64"};
        const std::string addresses =
            "n1=198.18.0.101/24 n2=198.18.0.102/24 n3=198.18.0.103/24 n3=198.18.0.104/24 n2=2001:2::102/64";
        const AddressState states[] = {AddressState::Online, AddressState::Online, AddressState::Acquiring,
                                       AddressState::Releasing};
        for (int round = 0; round < 3000; round++) {
            std::vector<HostView> hosts;
            for (std::uint32_t id = 1; id <= 6; id++) {
                if (r.below(5) == 0) continue;  // not a member
                Host h = host("n" + std::to_string(id), id);
                if (r.below(6) == 0) h.notOk();
                if (r.below(5) == 0) h.quiesced();
                if (r.below(8) == 0) h.stopping();
                if (r.below(8) == 0) h.otherConfig();
                if (r.below(8) == 0) h.departed();
                h.load(static_cast<double>(r.below(100)), r.below(4) == 0 ? 0 : 100);
                HostView hv = h;
                for (const char* a : pool)
                    if (r.below(4) == 0) hv.serving.push_back({addr(a), states[r.below(4)]});
                hosts.push_back(hv);
            }
            View v = view(hosts, addresses);
            v.config.failback = r.below(2) == 0;
            v.config.placement = r.below(2) == 0 ? Placement::Random : Placement::LeastLoaded;
            v.config.orphan_timeout = r.below(3) == 0 ? 0 : 30;
            for (const auto& p : v.config.addresses) {
                if (r.below(2) == 0) v.orphans[p.address] = 1000.0 - static_cast<double>(r.below(60));
                if (r.below(5) == 0) v.pins[p.address] = "n" + std::to_string(1 + r.below(7));
            }
            std::uint64_t seed = r.next();
            Plan p = run(v, seed);
            checkInvariants(v, p, "round " + std::to_string(round));
            CPPUNIT_ASSERT_EQUAL_MESSAGE("same seed, same plan", describe(p), describe(run(v, seed)));
        }
    }

private:
    static void checkInvariants(const View& v, const Plan& p, const std::string& where) {
        auto hostOf = [&](const std::string& node) -> const HostView* {
            for (const auto& h : v.hosts)
                if (h.node == node) return &h;
            return nullptr;
        };
        std::map<ServiceAddress, std::set<Action>> actions;
        std::set<std::pair<std::string, std::string>> pairs;
        for (const auto& d : p.decisions) {
            std::string ctx = where + ": " + describe(d) + "; all:" + describe(p);
            CPPUNIT_ASSERT_MESSAGE("empty reason " + ctx, !d.reason.empty());
            actions[d.address].insert(d.action);
            bool configured = v.config.preferred_node(d.address) != nullptr;
            int holders = 0;
            for (const auto& h : v.hosts) holders += h.holding(d.address) ? 1 : 0;
            if (d.action == Action::CannotAssign) {
                CPPUNIT_ASSERT_MESSAGE("cannot_assign names a node " + ctx, d.node.empty() && d.node_id == 0);
                CPPUNIT_ASSERT_MESSAGE("cannot_assign of a held address " + ctx, configured && holders == 0);
                continue;
            }
            const HostView* h = hostOf(d.node);
            CPPUNIT_ASSERT_MESSAGE("decision for a host not in the view " + ctx, h != nullptr);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(ctx, h->id, d.node_id);
            CPPUNIT_ASSERT_MESSAGE("told a departed host " + ctx, !h->departed);
            CPPUNIT_ASSERT_MESSAGE("told a host with another configuration " + ctx, h->config_match);
            CPPUNIT_ASSERT_MESSAGE("two decisions for one host and address " + ctx,
                                   pairs.insert({d.node, d.address.str()}).second);
            if (d.action == Action::Acquire) {
                CPPUNIT_ASSERT_MESSAGE("acquire of an unknown address " + ctx, configured);
                CPPUNIT_ASSERT_MESSAGE("acquire by an ineligible host " + ctx,
                                       h->ok && !h->quiesced && !h->stopping);
                CPPUNIT_ASSERT_MESSAGE("acquire by a holder " + ctx, h->holding(d.address) == nullptr);
                if (d.handover) {
                    CPPUNIT_ASSERT_MESSAGE("handover with no holder " + ctx, holders > 0);
                } else {
                    CPPUNIT_ASSERT_MESSAGE("plain acquire of a held address " + ctx, holders == 0);
                }
                for (const auto& o : v.hosts)
                    if (const Holding* hh = o.holding(d.address))
                        CPPUNIT_ASSERT_MESSAGE("acquire while in transition " + ctx,
                                               hh->state == AddressState::Online);
            } else {
                const Holding* hh = h->holding(d.address);
                CPPUNIT_ASSERT_MESSAGE("release of an address it does not hold " + ctx, hh != nullptr);
                CPPUNIT_ASSERT_MESSAGE("release of an address already releasing " + ctx,
                                       hh->state != AddressState::Releasing);
                if (d.action == Action::Expire)
                    CPPUNIT_ASSERT_MESSAGE("expire without orphan_timeout " + ctx, v.config.orphan_timeout > 0);
            }
        }
        for (const auto& [a, acts] : actions) {
            bool acq = acts.count(Action::Acquire) > 0;
            bool rel = acts.count(Action::Release) > 0 || acts.count(Action::Expire) > 0;
            CPPUNIT_ASSERT_MESSAGE(where + ": " + a.str() + " both acquired and released:" + describe(p),
                                   !(acq && rel));
            std::size_t acquires = 0;
            for (const auto& d : p.decisions) acquires += d.address == a && d.action == Action::Acquire;
            CPPUNIT_ASSERT_MESSAGE(where + ": two acquires of " + a.str() + describe(p), acquires <= 1);
        }
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(PlannerBalanceTest);
