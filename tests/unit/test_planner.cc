// Planner tests, the patent's rules: one method per branch of the patent's
// Control-thread pseudocode (WO 98/26553: outer/inner loops, unserved,
// duplicate) and per "Planner precision" of DESIGN §5.2 and rule §4.7.
// Placement and the output invariants: test_planner_balance.cc; the host
// table and expectDecisions(): test_planner.h.

#include <cppunit/TestFixture.h>
#include <cppunit/extensions/HelperMacros.h>

#include <set>
#include <string>
#include <vector>

#include "unit/test_planner.h"

using namespace rais;
using namespace rais::test;

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
    // IPv6, and addresses spelled differently.
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
};

CPPUNIT_TEST_SUITE_REGISTRATION(PlannerTest);
