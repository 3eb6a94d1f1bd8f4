// Planner tests: one method per branch of the patent's Control-thread
// pseudocode (WO 98/26553: outer/inner loops, unserved, duplicate) and per
// "Planner precision" of DESIGN §5.2 and rule §4.7.
//
// Each test describes a View as a small table of hosts and states the exact
// decisions the leader must take. Decisions are compared as a set (their
// order is not a contract); each expected decision also names words its
// reason must contain, so a reason always points at the host that motivates
// it.

#include <cppunit/TestFixture.h>
#include <cppunit/extensions/HelperMacros.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/config.h"
#include "unit/common.h"
#include "core/model.h"
#include "core/planner.h"
#include "core/random.h"

using namespace rais;
using namespace rais::test;

namespace {


// One row of a host table.
class Host {
public:
    Host(const std::string& node, std::uint32_t id) {
        v_.node = node;
        v_.id = id;
    }
    Host& serves(const char* a) { return holds(a, AddressState::Online); }
    Host& acquiring(const char* a) { return holds(a, AddressState::Acquiring); }
    Host& releasing(const char* a) { return holds(a, AddressState::Releasing); }
    Host& load(double l, double capacity = 100) {
        v_.load = l;
        v_.capacity = capacity;
        return *this;
    }
    Host& quiesced() { v_.quiesced = true; return *this; }
    Host& notOk() { v_.ok = false; return *this; }
    Host& stopping() { v_.stopping = true; return *this; }
    Host& otherConfig() { v_.config_match = false; return *this; }
    Host& departed() {
        v_.departed = true;
        v_.departed_why = "process down";
        return *this;
    }
    operator HostView() const { return v_; }

private:
    Host& holds(const char* a, AddressState s) {
        v_.serving.push_back({addr(a), s});
        return *this;
    }
    HostView v_;
};

Host host(const std::string& node, std::uint32_t id) { return Host(node, id); }

View view(std::vector<HostView> hosts, const std::string& addresses = kAddresses) {
    View v;
    auto err = parse_addresses(addresses, &v.config.addresses);
    CPPUNIT_ASSERT_MESSAGE("test bug: bad addresses", !err);
    v.now = 1000;
    v.hosts = std::move(hosts);
    return v;
}

Plan run(const View& v, std::uint64_t seed = 1) {
    RandomSource random(seed);
    return plan(v, random);
}

std::string describe(const Decision& d) {
    std::string s = std::string(to_string(d.action)) + " " + d.address.str();
    if (!d.node.empty()) s += " -> " + d.node;
    if (d.handover) s += " (handover)";
    return s + " [" + d.reason + "]";
}

std::string describe(const Plan& p) {
    std::string s;
    for (const auto& d : p.decisions) s += "\n    " + describe(d);
    return p.decisions.empty() ? "\n    (no decisions)" : s;
}

// An expected decision.
struct Want {
    Action action;
    std::string address;
    std::string node;                   // empty for cannot_assign
    bool handover;
    std::vector<std::string> mentions;  // words the reason must contain
};

Want acquire(const char* a, const char* node, std::vector<std::string> mentions) {
    return {Action::Acquire, a, node, false, std::move(mentions)};
}
Want handover(const char* a, const char* node, std::vector<std::string> mentions) {
    return {Action::Acquire, a, node, true, std::move(mentions)};
}
Want release(const char* a, const char* node, std::vector<std::string> mentions) {
    return {Action::Release, a, node, false, std::move(mentions)};
}
Want expire(const char* a, const char* node, std::vector<std::string> mentions) {
    return {Action::Expire, a, node, false, std::move(mentions)};
}
Want cannotAssign(const char* a, std::vector<std::string> mentions) {
    return {Action::CannotAssign, a, "", false, std::move(mentions)};
}

std::uint32_t idOf(const View& v, const std::string& node) {
    for (const auto& h : v.hosts)
        if (h.node == node) return h.id;
    return 0;
}

// Asserts that the plan holds exactly the wanted decisions, in any order.
void expectDecisions(const View& v, const Plan& p, const std::vector<Want>& wants) {
    std::string got = describe(p);
    CPPUNIT_ASSERT_EQUAL_MESSAGE("decisions:" + got, wants.size(), p.decisions.size());
    std::vector<bool> used(p.decisions.size(), false);
    for (const auto& w : wants) {
        ServiceAddress a = addr(w.address);
        bool found = false;
        for (std::size_t i = 0; i < p.decisions.size() && !found; i++) {
            const Decision& d = p.decisions[i];
            if (used[i] || d.action != w.action || d.address != a || d.address.prefix() != a.prefix() ||
                d.node != w.node || d.handover != w.handover)
                continue;
            used[i] = true;
            found = true;
            CPPUNIT_ASSERT_EQUAL_MESSAGE("node id of " + describe(d), idOf(v, w.node), d.node_id);
            CPPUNIT_ASSERT_MESSAGE("empty reason: " + describe(d), !d.reason.empty());
            for (const auto& m : w.mentions)
                CPPUNIT_ASSERT_MESSAGE("reason should mention '" + m + "': " + describe(d),
                                       d.reason.find(m) != std::string::npos);
        }
        std::string want = std::string(to_string(w.action)) + " " + w.address +
                           (w.node.empty() ? "" : " -> " + w.node) + (w.handover ? " (handover)" : "");
        CPPUNIT_ASSERT_MESSAGE("missing " + want + "; decisions:" + got, found);
    }
}

void expectNothing(const View& v, const Plan& p) { expectDecisions(v, p, {}); }

bool anyNoteMentions(const Plan& p, const std::string& word) {
    for (const auto& n : p.notes)
        if (n.find(word) != std::string::npos) return true;
    return false;
}

}  // namespace

class PlannerTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(PlannerTest);
    // The patent's unserved rule.
    CPPUNIT_TEST(testUnservedGoesToPreferredHost);
    CPPUNIT_TEST(testUnservedPreferredQuiescedGoesToSpare);
    CPPUNIT_TEST(testUnservedPreferredNotOkGoesToSpare);
    CPPUNIT_TEST(testUnservedNoSpareGoesToNonSpareEligible);
    CPPUNIT_TEST(testUnservedNothingEligibleCannotAssign);
    // The state loop and the injected preferred host.
    CPPUNIT_TEST(testTransitionalAddressLeftAlone);
    CPPUNIT_TEST(testFailbackReleasesHolderFirstNoAcquireSamePass);
    CPPUNIT_TEST(testFailbackOffKeepsHolder);
    CPPUNIT_TEST(testFailbackWaitsWhilePreferredNotEligible);
    // The patent's duplicate rule.
    CPPUNIT_TEST(testDuplicateKeepsPreferred);
    CPPUNIT_TEST(testDuplicatePreferredQuiescedKeepsSpareHolder);
    CPPUNIT_TEST(testDuplicateNoSpareKeepsOneHolder);
    // Placement precisions.
    CPPUNIT_TEST(testLeastLoadedOrderUtilizationThenCountThenId);
    CPPUNIT_TEST(testSparesBeforeNonSpares);
    CPPUNIT_TEST(testRandomPlacementUsesSeededSourceWithinTier);
    CPPUNIT_TEST(testCapacityZeroCountsAsHundred);
    // Orphans.
    CPPUNIT_TEST(testOrphanCountdownStartsAndExpires);
    CPPUNIT_TEST(testOrphanTimeoutZeroNeverExpires);
    // Hosts and addresses outside the normal cases.
    CPPUNIT_TEST(testUnknownAddressReleased);
    CPPUNIT_TEST(testConfigMismatchHostGetsNothingAndIsNotTold);
    CPPUNIT_TEST(testDepartedHostHoldingBlocksReassignment);
    CPPUNIT_TEST(testNotOkHostGetsNothing);
    // Handover (rule 4.7).
    CPPUNIT_TEST(testStoppingHostHandsOver);
    CPPUNIT_TEST(testStoppingNoEligibleReleases);
    CPPUNIT_TEST(testPinHandoverThenReleaseOld);
    CPPUNIT_TEST(testPinSurvivesFailback);
    CPPUNIT_TEST(testPinDroppedWhenHostGone);
    // Output invariants.
    CPPUNIT_TEST(testEveryDecisionHasReason);
    CPPUNIT_TEST(testOneAddressNeverBothReleasedAndAcquiredInOnePass);
    CPPUNIT_TEST(testIPv6Addresses);
    CPPUNIT_TEST_SUITE_END();

public:
    // Patent: "if preferred_id_address != 0 and preferred host is not
    // quiesced then choice = preferred_id_address" - even when a spare is
    // less loaded.
    void testUnservedGoesToPreferredHost() {
        View v = view({
            host("n1", 1).load(90),
            host("n2", 2).serves(A2),
            host("n3", 3).serves(A3),
            host("n4", 4),
            host("n5", 5),
        });
        expectDecisions(v, run(v), {acquire(A1, "n1", {"preferred", "n1"})});

        // A host preferring several addresses gets all of them back.
        View multi = view({host("n1", 1), host("n4", 4)},
                          "n1=198.18.0.101/24 n1=198.18.0.102/24 n3=198.18.0.103/24");
        multi.hosts[1].serving.push_back({addr(A3), AddressState::Online});
        expectDecisions(multi, run(multi), {acquire(A1, "n1", {"n1"}), acquire(A2, "n1", {"n1"})});
    }

    // Patent: "else if (spare_host count > 0) choice = pick from
    // Spare_Host_List". A quiesced preferred host is present, so its address
    // is not orphaned.
    void testUnservedPreferredQuiescedGoesToSpare() {
        View v = view({
            host("n1", 1).quiesced(),
            host("n2", 2).serves(A2),
            host("n3", 3).serves(A3),
            host("n4", 4).load(20),
            host("n5", 5).load(10),
        });
        Plan p = run(v);
        expectDecisions(v, p, {acquire(A1, "n5", {"hot spare", "n5"})});
        CPPUNIT_ASSERT_MESSAGE("a quiesced preferred host is present: not an orphan", p.orphans.empty());
    }

    // Patent outer loop: the preferred id_address is set only "if host is OK".
    void testUnservedPreferredNotOkGoesToSpare() {
        View v = view({
            host("n1", 1).notOk(),
            host("n2", 2).serves(A2),
            host("n3", 3).serves(A3),
            host("n4", 4),
        });
        Plan p = run(v);
        expectDecisions(v, p, {acquire(A1, "n4", {"n4"})});
        CPPUNIT_ASSERT(p.orphans.empty());
    }

    // Patent: "else if (Non_Spare_Eligible count > 0) choice = pick from
    // Non_Spare_Eligible_List". Quiesced or failing spares are not on the
    // Spare_Host_List.
    void testUnservedNoSpareGoesToNonSpareEligible() {
        View v = view({
            host("n2", 2).serves(A2).load(50),
            host("n3", 3).serves(A3).load(10),
            host("n4", 4).quiesced(),
            host("n5", 5).notOk(),
        });
        expectDecisions(v, run(v), {acquire(A1, "n3", {"n3", "n1"})});
    }

    // Patent: "else schedule cannot assign action".
    void testUnservedNothingEligibleCannotAssign() {
        View v = view({
            host("n2", 2).serves(A2).quiesced(),
            host("n4", 4).notOk(),
            host("n5", 5).stopping(),
        });
        expectDecisions(v, run(v), {cannotAssign(A1, {"n1"}), cannotAssign(A3, {"n3"})});
    }

    // Patent: "if state including acquiring or releasing, continue".
    void testTransitionalAddressLeftAlone() {
        // n1 is back and would otherwise pull A1 back (failback).
        View acquiring = view({
            host("n1", 1),
            host("n2", 2).serves(A2),
            host("n3", 3).serves(A3),
            host("n4", 4).acquiring(A1),
        });
        expectNothing(acquiring, run(acquiring));

        // Releasing: A1 is about to be unserved; n1 acquires only once it is.
        View releasing = acquiring;
        releasing.hosts[3].serving[0].state = AddressState::Releasing;
        expectNothing(releasing, run(releasing));

        // Two holders, one of them acquiring: not (yet) a duplicate.
        View dup = view({
            host("n1", 1).serves(A1),
            host("n2", 2).serves(A2),
            host("n3", 3).serves(A3),
            host("n4", 4).acquiring(A1),
        });
        expectNothing(dup, run(dup));

        // A handover under way (stopping n1 online, n4 acquiring).
        View hand = dup;
        hand.hosts[0].stopping = true;
        expectNothing(hand, run(hand));
    }

    // DESIGN §5.2: on failback one pass sends only the release; the
    // preferred host (injected, and not told to release) acquires later.
    void testFailbackReleasesHolderFirstNoAcquireSamePass() {
        View back = view({
            host("n1", 1),
            host("n2", 2).serves(A2),
            host("n3", 3).serves(A3),
            host("n4", 4).serves(A1),
        });
        expectDecisions(back, run(back), {release(A1, "n4", {"n1", "n4"})});

        View releasing = back;
        releasing.hosts[3].serving[0].state = AddressState::Releasing;
        expectNothing(releasing, run(releasing));

        View released = back;
        released.hosts[3].serving.clear();
        expectDecisions(released, run(released), {acquire(A1, "n1", {"n1"})});
    }

    // failback=false: a present preferred host does not take its address
    // back, and the address is not orphaned. A real duplicate is still
    // settled in favour of the preferred host.
    void testFailbackOffKeepsHolder() {
        View v = view({
            host("n1", 1),
            host("n2", 2).serves(A2),
            host("n3", 3).serves(A3),
            host("n4", 4).serves(A1),
        });
        v.config.failback = false;
        Plan p = run(v);
        expectNothing(v, p);
        CPPUNIT_ASSERT(p.orphans.empty());

        View dup = v;
        dup.hosts[0].serving.push_back({addr(A1), AddressState::Online});
        expectDecisions(dup, run(dup), {release(A1, "n4", {"n1"})});
    }

    // Patent: the preferred host is injected only if "preferred id_address
    // has not quiesced".
    void testFailbackWaitsWhilePreferredNotEligible() {
        View v = view({
            host("n1", 1).quiesced(),
            host("n2", 2).serves(A2),
            host("n3", 3).serves(A3),
            host("n4", 4).serves(A1),
        });
        Plan p = run(v);
        expectNothing(v, p);
        CPPUNIT_ASSERT(p.orphans.empty());

        // Nor is a preferred host that fails its tests, is stopping or has
        // another configuration (the patent sets a preferred id_address only
        // for an OK host).
        for (auto change : {&Host::notOk, &Host::stopping, &Host::otherConfig}) {
            Host n1 = host("n1", 1);
            (n1.*change)();
            View w = v;
            w.hosts[0] = n1;
            expectNothing(w, run(w));
        }
    }

    // Patent duplicate rule: "if preferred_id_address != 0 and preferred
    // host not quiesced, choice = preferred_id_address"; all others release.
    void testDuplicateKeepsPreferred() {
        View v = view({
            host("n1", 1).serves(A1).load(90),
            host("n2", 2).serves(A2).serves(A1),
            host("n3", 3).serves(A3),
            host("n4", 4).serves(A1),
        });
        expectDecisions(v, run(v), {release(A1, "n2", {"duplicate", "n1"}), release(A1, "n4", {"duplicate", "n1"})});
    }

    // Patent: "else if service address served by one or more from
    // Spare_Host_List, choice = pick from Spare_Host_List serving".
    void testDuplicatePreferredQuiescedKeepsSpareHolder() {
        View v = view({
            host("n1", 1).serves(A1).quiesced(),
            host("n2", 2).serves(A2).serves(A1),
            host("n3", 3).serves(A3),
            host("n4", 4).serves(A1).load(90),
        });
        expectDecisions(v, run(v), {release(A1, "n1", {"n4"}), release(A1, "n2", {"n4"})});

        // The same when the preferred holder fails its tests.
        View failing = v;
        failing.hosts[0].quiesced = false;
        failing.hosts[0].ok = false;
        expectDecisions(failing, run(failing), {release(A1, "n1", {"n4"}), release(A1, "n2", {"n4"})});
    }

    // Patent: "else choice = pick from id_addresses"; exactly one holder
    // stays. A quiesced spare is not on the Spare_Host_List, so it does not
    // win as a spare.
    void testDuplicateNoSpareKeepsOneHolder() {
        View v = view({
            host("n2", 2).serves(A2).serves(A1).load(50),
            host("n3", 3).serves(A3).serves(A1).load(10),
        });
        expectDecisions(v, run(v), {release(A1, "n2", {"n3"})});

        View quiescedSpare = view({
            host("n2", 2).serves(A2).serves(A1).load(0),
            host("n3", 3).serves(A3).load(50),
            host("n4", 4).serves(A1).quiesced().load(50),
        });
        expectDecisions(quiescedSpare, run(quiescedSpare), {release(A1, "n4", {"n2"})});

        // Random placement: one of the two, either one over many seeds.
        v.config.placement = Placement::Random;
        std::set<std::string> kept;
        for (std::uint64_t seed = 1; seed <= 64; seed++) {
            Plan p = run(v, seed);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(describe(p), std::size_t{1}, p.decisions.size());
            const Decision& d = p.decisions[0];
            CPPUNIT_ASSERT(d.action == Action::Release && d.address == addr(A1));
            kept.insert(d.node == "n2" ? "n3" : "n2");
        }
        CPPUNIT_ASSERT_EQUAL(std::size_t{2}, kept.size());
    }

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

    // DESIGN §5.2: the countdown starts when the preferred host is not a
    // member and lasts until it returns; past orphan_timeout the address is
    // released from every holder ("expire") and not assigned again.
    void testOrphanCountdownStartsAndExpires() {
        View v = view({
            host("n2", 2).serves(A2),
            host("n3", 3).serves(A3),
            host("n4", 4).serves(A1),
            host("n5", 5),
        });
        v.config.orphan_timeout = 60;
        v.now = 1000;
        Plan p = run(v);
        expectNothing(v, p);
        CPPUNIT_ASSERT_EQUAL(std::size_t{1}, p.orphans.size());
        CPPUNIT_ASSERT_DOUBLES_EQUAL(1000.0, p.orphans.at(addr(A1)), 1e-9);

        // Not yet expired: kept where it is, the countdown unchanged.
        v.orphans = p.orphans;
        v.now = 1059;
        p = run(v);
        expectNothing(v, p);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(1000.0, p.orphans.at(addr(A1)), 1e-9);

        // An unserved orphan within its countdown is still assigned.
        View unserved = v;
        unserved.hosts[2].serving.clear();
        expectDecisions(unserved, run(unserved), {acquire(A1, "n4", {"n1", "n4"})});

        // Expired: every holder is told to expire it, nobody acquires it.
        v.now = 1061;
        v.hosts[3].serving.push_back({addr(A1), AddressState::Online});
        p = run(v);
        expectDecisions(v, p, {expire(A1, "n4", {"n1", "orphan"}), expire(A1, "n5", {"n1", "orphan"})});
        CPPUNIT_ASSERT_DOUBLES_EQUAL(1000.0, p.orphans.at(addr(A1)), 1e-9);

        // Expired and unserved: not assigned again, not even cannot_assign.
        View gone = v;
        gone.now = 1070;
        gone.hosts[2].serving.clear();
        gone.hosts[3].serving.clear();
        expectNothing(gone, run(gone));

        // The preferred host returns: the countdown ends, n1 gets A1 back.
        View returned = gone;
        returned.hosts.push_back(host("n1", 1));
        p = run(returned);
        expectDecisions(returned, p, {acquire(A1, "n1", {"n1"})});
        CPPUNIT_ASSERT(p.orphans.empty());
    }

    void testOrphanTimeoutZeroNeverExpires() {
        View v = view({
            host("n2", 2).serves(A2),
            host("n4", 4).serves(A1),
            host("n5", 5),
        });
        v.config.orphan_timeout = 0;
        v.orphans[addr(A1)] = 0;
        v.now = 1e9;
        Plan p = run(v);
        // A3 (n3 is not a member either) still goes to a spare.
        expectDecisions(v, p, {acquire(A3, "n5", {"n3", "n5"})});
        CPPUNIT_ASSERT_DOUBLES_EQUAL(0.0, p.orphans.at(addr(A1)), 1e-9);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(1e9, p.orphans.at(addr(A3)), 1e-9);
    }

    // DESIGN §5.2: an address not in config.addresses is released; that is
    // a decision, not an input error. One already releasing is left alone,
    // and a departed host is told nothing.
    void testUnknownAddressReleased() {
        View v = view({
            host("n1", 1).serves(A1),
            host("n2", 2).serves(A2),
            host("n3", 3).serves(A3),
            host("n4", 4).serves("198.18.0.200/24").acquiring("198.18.0.201/24").releasing("198.18.0.202/24"),
            host("n5", 5).departed().serves("198.18.0.203/24"),
        });
        expectDecisions(v, run(v),
                        {release("198.18.0.200/24", "n4", {"198.18.0.200", "not one of the group's addresses"}),
                         release("198.18.0.201/24", "n4", {"198.18.0.201"})});
    }

    // DESIGN §3: a host whose digest differs keeps what it holds, is given
    // nothing new, is told nothing, and is reported.
    void testConfigMismatchHostGetsNothingAndIsNotTold() {
        View v = view({
            host("n2", 2).serves(A2),
            host("n3", 3).otherConfig(),
            host("n4", 4).otherConfig().serves("198.18.0.200/24").serves(A2),
            host("n5", 5).load(50),
        });
        Plan p = run(v);
        // A1: n4 is the least loaded spare but not eligible. A3: its
        // preferred host n3 is present but not given it.
        expectDecisions(v, p, {acquire(A1, "n5", {"n5"}), acquire(A3, "n5", {"n5"})});
        CPPUNIT_ASSERT_MESSAGE("n3 should be reported", anyNoteMentions(p, "n3"));
        CPPUNIT_ASSERT_MESSAGE("n4 should be reported", anyNoteMentions(p, "n4"));

        // Alone with the address, it keeps it (no release, no failback).
        View keeps = view({
            host("n1", 1),
            host("n2", 2).serves(A2),
            host("n3", 3).serves(A3),
            host("n4", 4).otherConfig().serves(A1),
        });
        expectNothing(keeps, run(keeps));
    }

    // DESIGN §4.4: what a departed member held still counts as held (no new
    // copy while a live one may exist), and it is told nothing.
    void testDepartedHostHoldingBlocksReassignment() {
        View v = view({
            host("n1", 1).departed().serves(A1),
            host("n2", 2).serves(A2),
            host("n3", 3).serves(A3),
            host("n4", 4),
        });
        Plan p = run(v);
        expectNothing(v, p);
        CPPUNIT_ASSERT_MESSAGE("a departed host is not a member: its address is orphaned",
                               p.orphans.count(addr(A1)) == 1);

        // A departed spare holding A2 blocks failback to the present n2.
        View spare = view({
            host("n1", 1).serves(A1),
            host("n2", 2),
            host("n3", 3).serves(A3),
            host("n4", 4).departed().serves(A2),
        });
        expectNothing(spare, run(spare));
    }

    // Patent outer loop: only an OK host enters the spare and eligible
    // lists. A failing holder keeps its address here: the member releases
    // everything itself when its tests fail.
    void testNotOkHostGetsNothing() {
        View v = view({
            host("n1", 1).notOk(),
            host("n2", 2).notOk().serves(A2),
            host("n4", 4).notOk(),
            host("n5", 5).load(50),
        });
        expectDecisions(v, run(v), {acquire(A1, "n5", {"n5"}), acquire(A3, "n5", {"n5"})});
    }

    // DESIGN §4.7: a graceful stop hands over, make before break.
    void testStoppingHostHandsOver() {
        View v = view({
            host("n1", 1).stopping().serves(A1),
            host("n2", 2).serves(A2),
            host("n3", 3).serves(A3),
            host("n4", 4).load(10),
            host("n5", 5).load(20),
        });
        expectDecisions(v, run(v), {handover(A1, "n4", {"n1", "n4"})});

        View acquiring = v;
        acquiring.hosts[3].serving.push_back({addr(A1), AddressState::Acquiring});
        expectNothing(acquiring, run(acquiring));

        View both = v;
        both.hosts[3].serving.push_back({addr(A1), AddressState::Online});
        expectDecisions(both, run(both), {release(A1, "n1", {"n4"})});

        // Several addresses are spread by the count given in this pass.
        View two = view({
            host("n1", 1).stopping().serves(A1).serves(A3),
            host("n2", 2).serves(A2),
            host("n4", 4),
            host("n5", 5),
        });
        expectDecisions(two, run(two), {handover(A1, "n4", {"n1", "n4"}), handover(A3, "n5", {"n1", "n5"})});
    }

    void testStoppingNoEligibleReleases() {
        View v = view({
            host("n1", 1).stopping().serves(A1),
            host("n2", 2).quiesced().serves(A2),
            host("n4", 4).notOk(),
        });
        expectDecisions(v, run(v), {release(A1, "n1", {"n1", "stopping"}), cannotAssign(A3, {"n3"})});
    }

    // DESIGN §4.7: a manual move hands over to the pinned host, then the old
    // holder releases; the pin lasts.
    void testPinHandoverThenReleaseOld() {
        View v = view({
            host("n1", 1).serves(A1),
            host("n2", 2).serves(A2),
            host("n3", 3).serves(A3),
        });
        v.pins[addr(A1)] = "n2";
        Plan p = run(v);
        expectDecisions(v, p, {handover(A1, "n2", {"n2"})});
        CPPUNIT_ASSERT(p.pins == v.pins);

        View acquiring = v;
        acquiring.hosts[1].serving.push_back({addr(A1), AddressState::Acquiring});
        expectNothing(acquiring, run(acquiring));

        View both = v;
        both.hosts[1].serving.push_back({addr(A1), AddressState::Online});
        p = run(both);
        expectDecisions(both, p, {release(A1, "n1", {"n2"})});
        CPPUNIT_ASSERT(p.pins == v.pins);
    }

    // DESIGN §4.7: failback does not undo a manual move; a pinned unserved
    // address goes to its pinned host before its preferred one.
    void testPinSurvivesFailback() {
        View v = view({
            host("n1", 1),
            host("n2", 2).serves(A2),
            host("n3", 3).serves(A3),
            host("n4", 4).serves(A1),
        });
        v.pins[addr(A1)] = "n4";
        Plan p = run(v);
        expectNothing(v, p);
        CPPUNIT_ASSERT(p.pins == v.pins);

        View unserved = v;
        unserved.hosts[3].serving.clear();
        expectDecisions(unserved, run(unserved), {acquire(A1, "n4", {"n4"})});
    }

    // DESIGN §4.7: a pin lasts until its host fails (leaves the group).
    void testPinDroppedWhenHostGone() {
        View v = view({
            host("n1", 1),
            host("n2", 2).serves(A2),
            host("n3", 3).serves(A3),
        });
        v.pins[addr(A1)] = "n4";
        Plan p = run(v);
        expectDecisions(v, p, {acquire(A1, "n1", {"n1"})});
        CPPUNIT_ASSERT(p.pins.empty());
        CPPUNIT_ASSERT_MESSAGE("dropping a pin is reported", anyNoteMentions(p, "n4"));

        View departed = v;
        departed.hosts.push_back(host("n4", 4).departed());
        p = run(departed);
        expectDecisions(departed, p, {acquire(A1, "n1", {"n1"})});
        CPPUNIT_ASSERT(p.pins.empty());
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

    void testIPv6Addresses() {
        const char* B1 = "2001:2::101/64";
        const char* B2 = "2001:2::102/64";
        const std::string addresses = "n1=2001:2::101/64 n2=2001:2::102/64 n3=198.18.0.103/24";
        View v = view({
            host("n2", 2).serves(B2).serves("2001:2::200/64"),
            host("n3", 3).serves(A3).serves(B2),
            // The IPv4-mapped form of A3 is another (unknown) address.
            host("n4", 4).serves("::ffff:198.18.0.103/128"),
        }, addresses);
        expectDecisions(v, run(v),
                        {acquire(B1, "n4", {"n1", "n4"}), release(B2, "n3", {"n2"}),
                         release("2001:2::200/64", "n2", {"2001:2::200"}),
                         release("::ffff:198.18.0.103/128", "n4", {"::ffff:198.18.0.103"})});

        // A host reporting the address in another spelling holds the same one.
        View spelled = view({host("n1", 1), host("n4", 4).serves("2001:0002:0000::0101/64")}, addresses);
        expectDecisions(spelled, run(spelled),
                        {release(B1, "n4", {"n1"}), acquire(B2, "n4", {"n2", "n4"}), acquire(A3, "n4", {"n4"})});
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

CPPUNIT_TEST_SUITE_REGISTRATION(PlannerTest);
