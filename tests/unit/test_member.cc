// Member tests, the group: leadership, views, quorum, messages, departures
// and fencing (DESIGN §3-§4 and the refinements in doc/design.md), driven
// directly through the Bus of test_member.h, without the simulator.

#include <cppunit/TestFixture.h>
#include <cppunit/extensions/HelperMacros.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/codec.h"
#include "core/member.h"
#include "unit/common.h"
#include "unit/test_member.h"

using namespace rais;
using namespace rais::test;

class MemberTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(MemberTest);
    CPPUNIT_TEST(testLeaderIsLowestCountedNodeId);
    CPPUNIT_TEST(testProcessWithoutInfoIsNotCounted);
    CPPUNIT_TEST(testHealedHostWaitsForTheOtherSide);
    CPPUNIT_TEST(testAcquireFromNonLeaderIsIgnored);
    CPPUNIT_TEST(testQuorumLossReleasesEveryAddressAtOnce);
    CPPUNIT_TEST(testQuorumForOlderRingIsIgnored);
    CPPUNIT_TEST(testAcquireWaitsForQuorumOfCurrentRing);
    CPPUNIT_TEST(testWaitingAcquireDroppedWhenNotQuorate);
    CPPUNIT_TEST(testAcquireAfterMinorityWaitsForQuorumOfNewRing);
    CPPUNIT_TEST(testInfoCmdSeenCountsCommandsSinceMembership);
    CPPUNIT_TEST(testGarbageIsDroppedAndCounted);
    CPPUNIT_TEST(testDepartedHostWaitsForFenceConfirmation);
    CPPUNIT_TEST(testFenceBeforeDepartureIsRemembered);
    CPPUNIT_TEST(testDepartureWithoutFenceProbes);
    CPPUNIT_TEST(testFencingTurnedOffStopsTheWait);
    CPPUNIT_TEST(testTwoNodeWithoutFencingWaitsForAFence);
    CPPUNIT_TEST(testForeignMajorVersionStopsPlanning);
    CPPUNIT_TEST(testSettledOnceNothingIsLeftToDo);
    CPPUNIT_TEST_SUITE_END();

    // Three real members with fencing=require, each serving its own address.
    static MemberSetup fencingSetup(std::uint32_t node) {
        MemberSetup s = setup(node);
        s.config.fencing = Fencing::Require;
        s.fencing_active = true;
        return s;
    }
    static std::vector<Member*> fencedTrio(Bus& bus) {
        Member& m1 = bus.add(fencingSetup(1));
        Member& m2 = bus.add(fencingSetup(2));
        Member& m3 = bus.add(fencingSetup(3));
        bus.view(1, {m1.self(), m2.self(), m3.self()});
        bus.quorum(1, true);
        bus.runFor(3);
        CPPUNIT_ASSERT(m3.held().count(addr(A3)));
        return {&m1, &m2, &m3};
    }
    static bool servedBySurvivors(const std::vector<Member*>& ms, const char* a) {
        return ms[0]->held().count(addr(a)) || ms[1]->held().count(addr(a));
    }

public:
    void testDepartedHostWaitsForFenceConfirmation() {
        Bus bus;
        auto ms = fencedTrio(bus);
        bus.view(2, {ms[0]->self(), ms[1]->self()}, ChangeReason::NodeDown);
        bus.quorum(2, true);
        bus.runFor(30);  // far beyond restart_grace: only fencing may release it
        CPPUNIT_ASSERT_MESSAGE("n3's address moved before fencing confirmed n3 down", !servedBySurvivors(ms, A3));
        bus.clear();
        // The fencer names the node; the daemon may not know its id.
        bus.input(*ms[0], in::Fenced{0, "n3"});
        bus.input(*ms[1], in::Fenced{3, ""});
        bus.runFor(2);
        CPPUNIT_ASSERT_MESSAGE("n3's address not served after the fence", servedBySurvivors(ms, A3));
        // Nothing can answer an ARP probe for it: its taker plumbs at once.
        std::vector<out::Plumb> plumbs = all<out::Plumb>(bus.fx(*ms[0]));
        for (const auto& p : all<out::Plumb>(bus.fx(*ms[1]))) plumbs.push_back(p);
        CPPUNIT_ASSERT_EQUAL(std::size_t{1}, plumbs.size());
        CPPUNIT_ASSERT_EQUAL(std::string(A3), plumbs[0].address.str());
        CPPUNIT_ASSERT_MESSAGE("probed after a confirmed fence", !plumbs[0].probe);
    }

    // Without a fence nothing confirms the departed holder is gone: its
    // taker probes (rule 4.5).
    void testDepartureWithoutFenceProbes() {
        Bus bus;
        Member& m1 = bus.add(setup(1));
        Member& m2 = bus.add(setup(2));
        Member& m3 = bus.add(setup(3));
        bus.view(1, {m1.self(), m2.self(), m3.self()});
        bus.quorum(1, true);
        bus.runFor(3);
        CPPUNIT_ASSERT(m3.held().count(addr(A3)));
        bus.clear();
        bus.view(2, {m1.self(), m2.self()}, ChangeReason::NodeDown);
        bus.quorum(2, true);
        bus.runFor(2);
        std::vector<out::Plumb> plumbs = all<out::Plumb>(bus.fx(m1));
        for (const auto& p : all<out::Plumb>(bus.fx(m2))) plumbs.push_back(p);
        CPPUNIT_ASSERT_EQUAL(std::size_t{1}, plumbs.size());
        CPPUNIT_ASSERT_MESSAGE("no ARP probe without a fence", plumbs[0].probe);
    }

    void testFenceBeforeDepartureIsRemembered() {
        Bus bus;
        auto ms = fencedTrio(bus);
        bus.input(*ms[0], in::Fenced{0, "n3"});
        bus.input(*ms[1], in::Fenced{0, "n3"});
        bus.view(2, {ms[0]->self(), ms[1]->self()}, ChangeReason::NodeDown);
        bus.quorum(2, true);
        bus.runFor(2);
        CPPUNIT_ASSERT_MESSAGE("a fence reported before the departure was forgotten", servedBySurvivors(ms, A3));
    }

    // Rule 4.8: in a corosync two_node cluster both halves of a split stay
    // quorate, so without fencing a departed peer's addresses are never
    // taken; a fence (or its return) releases them.
    void testTwoNodeWithoutFencingWaitsForAFence() {
        Bus bus;
        Member& m1 = bus.add(setup(1));
        Member& m2 = bus.add(setup(2));
        Member& m3 = bus.add(setup(3));
        for (Member* m : {&m1, &m2, &m3}) bus.input(*m, in::FencingMode{false, "test: no fencing", true});
        bus.view(1, {m1.self(), m2.self(), m3.self()});
        bus.quorum(1, true);
        bus.runFor(4);
        CPPUNIT_ASSERT(m2.held().count(addr(A2)));
        bus.clear();
        bus.view(2, {m1.self(), m3.self()}, ChangeReason::NodeDown);
        bus.quorum(2, true);
        bus.runFor(20);
        CPPUNIT_ASSERT_EQUAL(std::size_t{0}, count<out::Plumb>(bus.fx(m1)) + count<out::Plumb>(bus.fx(m3)));
        auto st = m1.status(bus.now);
        auto p2 = std::find_if(st.peers.begin(), st.peers.end(), [](const PeerStatus& p) { return p.process.node == 2; });
        CPPUNIT_ASSERT(p2 != st.peers.end());
        CPPUNIT_ASSERT_MESSAGE(p2->departed_why, contains(p2->departed_why, "two_node"));
        for (Member* m : {&m1, &m3}) bus.input(*m, in::Fenced{2, "n2"});
        bus.runFor(1);
        std::set<std::string> plumbed = texts(all<out::Plumb>(bus.fx(m1)));
        for (const auto& a : texts(all<out::Plumb>(bus.fx(m3)))) plumbed.insert(a);
        CPPUNIT_ASSERT(plumbed == texts({A2}));
    }

    // DESIGN §3 compatibility rule: a process speaking another major
    // version may hold addresses we cannot read, so the leader does not
    // plan while it is in the group.
    void testForeignMajorVersionStopsPlanning() {
        Bus bus;
        Member& m1 = bus.add(setup(1));
        Member& m2 = bus.add(setup(2));
        bus.view(1, {m1.self(), m2.self()});
        bus.quorum(1, true);
        bus.runFor(4);
        CPPUNIT_ASSERT(m2.held().count(addr(A2)));
        const Process future{3, 903};
        bus.view(2, {m1.self(), m2.self(), future});
        InfoMsg i;
        i.seq = 1;
        i.node = 3;
        i.name = "n3";
        i.digest = groupConfig().digest();
        auto bytes = encode(i);
        bytes[2] = static_cast<std::uint8_t>(kProtocolVersion + 1);  // the header's major version
        bus.input(m1, in::Delivered{future, bytes});
        bus.input(m2, in::Delivered{future, bytes});
        bool said = false;
        for (const auto& l : all<out::Log>(bus.fx(m1))) said = said || contains(l.text, "not planning");
        CPPUNIT_ASSERT_MESSAGE("the foreign version is not reported", said);
        bus.quorum(2, true);
        bus.runFor(4);
        bus.clear();
        // m2 goes; with fencing off its addresses would move at once.
        bus.view(3, {m1.self(), future}, ChangeReason::ProcDown);
        bus.quorum(3, true);
        bus.runFor(12);  // past restart_grace
        CPPUNIT_ASSERT_EQUAL(std::size_t{0}, count<out::Plumb>(bus.fx(m1)));
    }

    void testFencingTurnedOffStopsTheWait() {
        Bus bus;
        auto ms = fencedTrio(bus);
        bus.view(2, {ms[0]->self(), ms[1]->self()}, ChangeReason::NodeDown);
        bus.quorum(2, true);
        bus.runFor(3);
        CPPUNIT_ASSERT(!servedBySurvivors(ms, A3));
        CPPUNIT_ASSERT(ms[0]->status(bus.now).fencing_active);
        for (int i = 0; i < 2; i++) bus.input(*ms[i], in::FencingMode{false, "test: stonith-enabled=false"});
        CPPUNIT_ASSERT(!ms[0]->status(bus.now).fencing_active);
        bus.runFor(2);
        CPPUNIT_ASSERT_MESSAGE("still waiting for a fence after fencing was turned off", servedBySurvivors(ms, A3));
    }

    void testSettledOnceNothingIsLeftToDo() {
        Bus bus;
        Member& m1 = bus.add(setup(1));
        Member& m2 = bus.add(setup(2));
        bus.view(1, {m1.self(), m2.self()});
        CPPUNIT_ASSERT_MESSAGE("settled before quorum", !m2.status(bus.now).settled);
        bus.quorum(1, true);
        bus.runFor(3);
        CPPUNIT_ASSERT(m2.held().count(addr(A2)));
        CPPUNIT_ASSERT(m1.status(bus.now).settled);
        CPPUNIT_ASSERT(m2.status(bus.now).settled);
        // n3 starts: not settled before it is in the group; once in, the
        // bus (which plumbs at once) has given it A3 back.
        Member& m3 = bus.add(setup(3));
        CPPUNIT_ASSERT(!m3.status(bus.now).settled);
        bus.view(2, {m1.self(), m2.self(), m3.self()});
        bus.quorum(2, true);
        bus.runFor(5);
        CPPUNIT_ASSERT(m3.held().count(addr(A3)));
        CPPUNIT_ASSERT(m3.status(bus.now).settled);
    }

    void testLeaderIsLowestCountedNodeId() {
        Bus bus;
        // CPG order is join order, not node order: 3 joined first.
        Member& m3 = bus.add(setup(3));
        Member& m1 = bus.add(setup(1));
        Member& m2 = bus.add(setup(2));
        bus.view(1, {m3.self(), m1.self(), m2.self()});
        bus.quorum(1, true);
        for (Member* m : {&m1, &m2, &m3}) {
            CPPUNIT_ASSERT_EQUAL(std::uint32_t{1}, m->status(bus.now).leader);
            CPPUNIT_ASSERT_EQUAL(m == &m1, m->is_leader());
            CPPUNIT_ASSERT_EQUAL(std::size_t{m == &m1 ? 1u : 0u}, events(bus.fx(*m), EventKind::Leader).size());
        }
    }

    // Chaos seed 4242 (cut, heal): the host returning from a partition got
    // the merged ring and its quorum before CPG reported the other side's
    // processes, led a group of one, and plumbed addresses the other side
    // still served (two holders for up to 150 ms). It must wait for the
    // processes of nodes new to the ring, and then for their first Infos.
    void testHealedHostWaitsForTheOtherSide() {
        Bus bus;
        Member& m1 = bus.add(setup(1));
        bus.view(5, {m1.self()});
        bus.quorum(5, false);  // the minority side: holds nothing
        bus.runFor(4);
        CPPUNIT_ASSERT(m1.held().empty());
        bus.clear();
        // The heal: totem's merged ring (the group view unchanged), quorate.
        in::Membership ring;
        ring.ring = 6;
        ring.members = {m1.self()};
        ring.nodes = {1, 2, 3};
        bus.input(m1, ring);
        bus.input(m1, in::Quorum{6, true});
        bus.settle();
        bus.runFor(0.5);
        CPPUNIT_ASSERT_EQUAL(std::size_t{0}, count<out::Plumb>(bus.fx(m1)));
        CPPUNIT_ASSERT(!m1.status(bus.now).ready);
        // CPG reports the other side's processes; their Infos follow.
        const Process p2{2, 902}, p3{3, 903};
        bus.view(6, {m1.self(), p2, p3});
        bus.runFor(0.25);
        CPPUNIT_ASSERT_EQUAL(std::size_t{0}, count<out::Plumb>(bus.fx(m1)));
        for (const auto& [p, held] : {std::pair{p2, std::vector<const char*>{A1, A2}}, std::pair{p3, std::vector<const char*>{A3}}}) {
            InfoMsg i;
            i.seq = 1;
            i.node = p.node;
            i.name = "n" + std::to_string(p.node);
            i.digest = groupConfig().digest();
            for (const char* a : held) i.serving.push_back({addr(a), AddressState::Online});
            bus.multicast(p, i);
        }
        bus.settle();
        CPPUNIT_ASSERT(m1.is_leader());
        // Scripted n2 never releases A1, so nothing may be plumbed: A2 and A3
        // are served, and A1 could come back (failback) only by a move.
        std::set<std::string> plumbed = texts(all<out::Plumb>(bus.fx(m1)));
        CPPUNIT_ASSERT_MESSAGE("plumbed an address the other side serves", plumbed.empty());
    }

    void testProcessWithoutInfoIsNotCounted() {
        Bus bus;
        const Process stray{1, 77};  // lowest node id, but never says a word
        Member& m2 = bus.add(setup(2));
        Member& m3 = bus.add(setup(3));
        bus.view(1, {stray, m2.self(), m3.self()});
        bus.quorum(1, true);
        bus.runFor(4);  // past 3 x interval: the stray is reported, not waited for
        for (Member* m : {&m2, &m3}) {
            MemberStatus s = m->status(bus.now);
            CPPUNIT_ASSERT_EQUAL(std::uint32_t{2}, s.leader);
            auto p = std::find_if(s.peers.begin(), s.peers.end(), [&](const PeerStatus& x) { return x.process == stray; });
            CPPUNIT_ASSERT(p != s.peers.end());
            CPPUNIT_ASSERT(!p->counted);
        }
        CPPUNIT_ASSERT(m2.is_leader());
    }

    void testAcquireFromNonLeaderIsIgnored() {
        Bus bus;
        Member& m = joinLedGroup(bus, setup(2));
        // Node 2 names itself leader, then speaks in the leader's name.
        bus.multicast(m.self(), AcquireMsg{2, 2, addr(A2), false, "forged"});
        bus.multicast(m.self(), AcquireMsg{1, 2, addr(A2), false, "forged"});
        bus.settle();
        assertNoAcquire(bus, m);
        CPPUNIT_ASSERT(m.held().empty());
        // The same order from the leader is obeyed: the setup is sound.
        order(bus, A2);
        bus.settle();
        CPPUNIT_ASSERT_EQUAL(std::size_t{1}, count<out::Plumb>(bus.fx(m)));
    }

    void testQuorumLossReleasesEveryAddressAtOnce() {
        Bus bus;
        Member& m = joinLedGroup(bus, setup(2));
        grant(bus, m, {A1, A2, A3});
        bus.input(m, in::Quorum{1, false});
        // All in the one step, without waiting for anybody.
        CPPUNIT_ASSERT(texts({A1, A2, A3}) == texts(all<out::Unplumb>(bus.fx(m))));
        auto i = infos(bus.fx(m));
        CPPUNIT_ASSERT_EQUAL(std::size_t{1}, i.size());
        CPPUNIT_ASSERT(texts({A1, A2, A3}) == texts(i[0].serving));
        for (const auto& h : i[0].serving) CPPUNIT_ASSERT(h.state == AddressState::Releasing);
        bus.settle();
        CPPUNIT_ASSERT(texts({A1, A2, A3}) == texts(all<out::Unplumb>(bus.fx(m))));  // and nothing more
        CPPUNIT_ASSERT_EQUAL(std::size_t{3}, events(bus.fx(m), EventKind::Release).size());
        CPPUNIT_ASSERT(m.held().empty());
    }

    void testQuorumForOlderRingIsIgnored() {
        Bus bus;
        Member& m = joinLedGroup(bus, setup(2), 5);
        grant(bus, m, {A2});
        bus.quorum(4, false);  // late news from before the heal
        CPPUNIT_ASSERT_EQUAL(std::size_t{0}, count<out::Unplumb>(bus.fx(m)));
        CPPUNIT_ASSERT(m.held().at(addr(A2)) == AddressState::Online);
        CPPUNIT_ASSERT(m.status(bus.now).quorate);
    }

    void testAcquireWaitsForQuorumOfCurrentRing() {
        Bus bus;
        Member& m = joinLedGroup(bus, setup(2), 4);
        bus.view(5, {kLeader, m.self()});  // quorum for ring 5 not known yet
        bus.clear();
        order(bus, A2);
        bus.settle();
        assertNoAcquire(bus, m);
        bus.quorum(5, true);
        auto plumbs = all<out::Plumb>(bus.fx(m));
        CPPUNIT_ASSERT_EQUAL(std::size_t{1}, plumbs.size());
        CPPUNIT_ASSERT_EQUAL(std::string(A2), plumbs[0].address.str());
        CPPUNIT_ASSERT(m.held().at(addr(A2)) == AddressState::Online);
    }

    void testWaitingAcquireDroppedWhenNotQuorate() {
        Bus bus;
        Member& m = joinLedGroup(bus, setup(2), 4);
        bus.view(5, {kLeader, m.self()});
        order(bus, A2);
        bus.settle();
        bus.quorum(5, false);
        bus.quorum(5, true);  // quorum regained: the old order is not revived
        assertNoAcquire(bus, m);
        CPPUNIT_ASSERT(m.held().empty());
    }

    // After a partition heals, the last quorum news (not quorate) is about
    // the old ring: for the new ring quorum is unknown, so the acquire waits.
    void testAcquireAfterMinorityWaitsForQuorumOfNewRing() {
        Bus bus;
        Member& m = joinLedGroup(bus, setup(2), 4);
        bus.quorum(4, false);
        bus.view(5, {kLeader, m.self()});
        order(bus, A2);
        bus.settle();
        assertNoAcquire(bus, m);
        bus.quorum(5, true);
        CPPUNIT_ASSERT_EQUAL_MESSAGE("the acquire deferred in ring 5 runs once ring 5 is quorate", std::size_t{1},
                                     count<out::Plumb>(bus.fx(m)));
        CPPUNIT_ASSERT(m.held().count(addr(A2)));
    }

    void testInfoCmdSeenCountsCommandsSinceMembership() {
        Bus bus;
        Member& m = joinLedGroup(bus, setup(2));
        Member& m3 = bus.add(setup(3));
        bus.view(2, {kLeader, m.self(), m3.self()});
        bus.quorum(2, true);
        order(bus, A2);
        order(bus, A3, 3);
        order(bus, A1, 9);  // to nobody here: still a command every member counts
        bus.settle();
        orderRelease(bus, A2);
        bus.settle();
        bus.runFor(2);  // periodic Infos repeat the count
        std::uint32_t most = 0;
        for (Member* x : {&m, &m3})
            for (const auto& i : infos(bus.fx(*x))) most = std::max(most, i.cmd_seen);
        CPPUNIT_ASSERT_EQUAL(std::uint32_t{4}, most);
        bus.clear();
        bus.view(3, {kLeader, m.self(), m3.self()});  // a view change starts the count again
        for (Member* x : {&m, &m3}) {
            auto i = infos(bus.fx(*x));
            CPPUNIT_ASSERT(!i.empty());
            CPPUNIT_ASSERT_EQUAL(std::uint32_t{0}, i[0].cmd_seen);
        }
        order(bus, A1);
        bus.settle();
        std::string mismatches;
        for (const auto& x : bus.cmdSeenMismatches()) mismatches += x + "; ";
        CPPUNIT_ASSERT_MESSAGE(mismatches, bus.cmdSeenMismatches().empty());
    }

    void testGarbageIsDroppedAndCounted() {
        Bus bus;
        Member& m = joinLedGroup(bus, setup(2));
        grant(bus, m, {A2});
        std::vector<std::uint8_t> truncated = encode(AcquireMsg{1, 2, addr(A3), false, "cut short"});
        truncated.pop_back();
        const std::vector<std::vector<std::uint8_t>> garbage = {
            {},
            {'h', 'e', 'l', 'l', 'o'},
            {'R', 'A', 9, 2, 0, 0, 0, 0, 1, 2, 3},        // unknown version
            {'R', 'A', kProtocolVersion, 2, 0, 0, 0, 0, 0xff, 0xfe},  // Acquire with a junk body
            truncated,
        };
        std::uint64_t dropped = 0;
        for (const auto& bytes : garbage) {
            bus.input(m, in::Delivered{kLeader, bytes});  // even from the leader
            dropped++;
            CPPUNIT_ASSERT_EQUAL(dropped, m.status(bus.now).dropped_messages);
            const Effects& fx = bus.fx(m);
            CPPUNIT_ASSERT_EQUAL(std::size_t{1}, fx.size());  // a log line, nothing else
            auto logs = all<out::Log>(fx);
            CPPUNIT_ASSERT_EQUAL(std::size_t{1}, logs.size());
            // Another major version is an error (we keep out of planning), the rest warnings.
            CPPUNIT_ASSERT(logs[0].level == LogLevel::Warning || logs[0].level == LogLevel::Error);
            bus.clear();
        }
        CPPUNIT_ASSERT_EQUAL(std::size_t{1}, m.held().size());
        CPPUNIT_ASSERT_EQUAL(std::uint32_t{1}, m.status(bus.now).leader);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(MemberTest);
