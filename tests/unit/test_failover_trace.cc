// FailoverTrace: the breakdown of one failover on one host (issue 13). The
// trace opens at a departure, closes exactly once, reports only hosts that
// took part, and times per-address steps by the last address.
#include <cppunit/TestFixture.h>
#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "core/failover_trace.h"
#include "unit/common.h"

namespace {

using namespace rais;
using rais::test::addr;

double ms(const FailoverBreakdown& b, FailoverStep s) {
    CPPUNIT_ASSERT_MESSAGE(key_of(s), b[s].has_value());
    return *b[s];
}

class FailoverTraceTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(FailoverTraceTest);
    CPPUNIT_TEST(taker_times_every_step_by_the_last_address);
    CPPUNIT_TEST(quorum_of_the_new_totem_ring);
    CPPUNIT_TEST(quorum_before_the_confchg_is_negative);
    CPPUNIT_TEST(leader_that_takes_nothing_closes_after_its_plan);
    CPPUNIT_TEST(host_that_took_no_part_reports_nothing);
    CPPUNIT_TEST(joins_alone_open_nothing);
    CPPUNIT_TEST(next_departure_closes_an_unfinished_trace);
    CPPUNIT_TEST(failed_acquires_count_and_close);
    CPPUNIT_TEST(closes_after_the_longest_span);
    CPPUNIT_TEST_SUITE_END();

public:
    void taker_times_every_step_by_the_last_address() {
        FailoverTrace t;
        t.membership(10.0, 7, {"h2"});
        CPPUNIT_ASSERT(t.open());
        t.quorum(10.001, 7, true);
        t.ordered(10.080, addr("198.18.4.1/24"));
        t.ordered(10.081, addr("198.18.4.2/24"));
        t.step(10.0805, addr("198.18.4.1/24"), FailoverStep::ProbeSent);
        t.step(10.0815, addr("198.18.4.2/24"), FailoverStep::ProbeSent);
        t.step(10.0812, addr("198.18.4.9/24"), FailoverStep::ProbeSent);   // never ordered: ignored
        t.step(10.131, addr("198.18.4.1/24"), FailoverStep::ProbeSettled);
        t.step(10.132, addr("198.18.4.2/24"), FailoverStep::ProbeSettled);
        t.step(10.133, addr("198.18.4.1/24"), FailoverStep::Plumbed);
        t.step(10.134, addr("198.18.4.2/24"), FailoverStep::Plumbed);
        t.step(10.135, addr("198.18.4.1/24"), FailoverStep::Announced);
        t.step(10.136, addr("198.18.4.2/24"), FailoverStep::Announced);
        t.step(10.300, addr("198.18.4.2/24"), FailoverStep::Announced);   // a repeat: not the first
        t.done(10.137, addr("198.18.4.1/24"), true);
        CPPUNIT_ASSERT(t.open());
        CPPUNIT_ASSERT(!t.take_closed());
        t.done(10.138, addr("198.18.4.2/24"), true);
        CPPUNIT_ASSERT(!t.open());
        auto b = t.take_closed();
        CPPUNIT_ASSERT(b);
        CPPUNIT_ASSERT(!t.take_closed());   // once
        CPPUNIT_ASSERT(t.last());
        CPPUNIT_ASSERT_EQUAL(std::size_t{2}, b->addresses);
        CPPUNIT_ASSERT(b->complete);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(0.0, ms(*b, FailoverStep::Membership), 1e-6);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(1.0, ms(*b, FailoverStep::Quorum), 1e-6);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(80.0, ms(*b, FailoverStep::Ordered), 1e-6);     // the first
        CPPUNIT_ASSERT_DOUBLES_EQUAL(81.5, ms(*b, FailoverStep::ProbeSent), 1e-6);   // the last
        CPPUNIT_ASSERT_DOUBLES_EQUAL(132.0, ms(*b, FailoverStep::ProbeSettled), 1e-6);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(134.0, ms(*b, FailoverStep::Plumbed), 1e-6);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(136.0, ms(*b, FailoverStep::Announced), 1e-6);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(135.0, *b->first_announced, 1e-6);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(138.0, ms(*b, FailoverStep::Done), 1e-6);
        CPPUNIT_ASSERT(!(*b)[FailoverStep::Plan] && !(*b)[FailoverStep::Fence]);
        CPPUNIT_ASSERT_EQUAL(std::string("failover breakdown: departed=h2 ring=7 addresses=2 failed=0 "
                                         "membership=+0.0ms totem=- quorum=+1.0ms fence=- plan=- sent=- ordered=+80.0ms "
                                         "probe_sent=+81.5ms probe_settled=+132.0ms plumbed=+134.0ms "
                                         "announced=+136.0ms done=+138.0ms first_announced=+135.0ms "
                                         "first_done=+137.0ms"),
                             b->line());
        // Steps after the close belong to no trace.
        t.step(10.5, addr("198.18.4.1/24"), FailoverStep::Announced);
        CPPUNIT_ASSERT(!t.take_closed());
    }

    // CPG delivers the group's confchg with the ring it knew (the old one),
    // then the totem confchg of the new ring: quorum counts for the new one.
    void quorum_of_the_new_totem_ring() {
        FailoverTrace t;
        t.quorum(1.0, 13, true);        // the old ring, long before
        t.membership(5.0, 13, {"h2"});
        t.membership(5.001, 17, {});    // totem ring 17
        t.quorum(5.012, 17, true);
        t.ordered(5.03, addr("198.18.4.1/24"));
        t.done(5.09, addr("198.18.4.1/24"), true);
        auto b = t.take_closed();
        CPPUNIT_ASSERT(b);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t{17}, b->ring);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(1.0, ms(*b, FailoverStep::Totem), 1e-6);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(12.0, ms(*b, FailoverStep::Quorum), 1e-6);
        // Quorum of the new ring that came before its totem confchg.
        FailoverTrace u;
        u.membership(5.0, 13, {"h2"});
        u.quorum(5.0005, 17, true);
        u.membership(5.001, 17, {});
        u.ordered(5.03, addr("198.18.4.1/24"));
        u.done(5.09, addr("198.18.4.1/24"), true);
        auto c = u.take_closed();
        CPPUNIT_ASSERT(c);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(0.5, ms(*c, FailoverStep::Quorum), 1e-6);
    }

    void quorum_before_the_confchg_is_negative() {
        FailoverTrace t;
        t.quorum(4.990, 9, true);
        t.quorum(4.995, 9, true);   // a repeat keeps the first time
        t.membership(5.0, 9, {"h3"});
        t.ordered(5.05, addr("198.18.4.1/24"));
        t.done(5.06, addr("198.18.4.1/24"), true);
        auto b = t.take_closed();
        CPPUNIT_ASSERT(b);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(-10.0, ms(*b, FailoverStep::Quorum), 1e-6);
        // Quorum of another ring, or lost, is not this ring's.
        FailoverTrace u;
        u.quorum(4.990, 8, true);
        u.membership(5.0, 9, {"h3"});
        u.quorum(5.002, 9, false);
        u.quorum(5.004, 9, true);
        u.ordered(5.05, addr("198.18.4.1/24"));
        u.done(5.06, addr("198.18.4.1/24"), true);
        auto c = u.take_closed();
        CPPUNIT_ASSERT(c);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(4.0, ms(*c, FailoverStep::Quorum), 1e-6);
    }

    void leader_that_takes_nothing_closes_after_its_plan() {
        FailoverTrace t;
        t.membership(1.0, 3, {"h2", "h4"});
        t.fenced(1.5);
        t.planned(1.501);
        t.sent(1.502);
        t.planned(1.7);   // a later assignment is not the plan
        CPPUNIT_ASSERT(t.next_wake());
        CPPUNIT_ASSERT_DOUBLES_EQUAL(1.501 + FailoverTrace::kQuietAfterPlan, *t.next_wake(), 1e-9);
        t.tick(1.7);
        CPPUNIT_ASSERT(t.open());
        t.tick(1.76);
        CPPUNIT_ASSERT(!t.open());
        auto b = t.take_closed();
        CPPUNIT_ASSERT(b);
        CPPUNIT_ASSERT_EQUAL(std::size_t{0}, b->addresses);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(500.0, ms(*b, FailoverStep::Fence), 1e-6);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(501.0, ms(*b, FailoverStep::Plan), 1e-6);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(502.0, ms(*b, FailoverStep::Sent), 1e-6);
        CPPUNIT_ASSERT(b->line().find("departed=h2,h4 ") != std::string::npos);
        CPPUNIT_ASSERT(!t.next_wake());
    }

    void host_that_took_no_part_reports_nothing() {
        FailoverTrace t;
        t.membership(1.0, 3, {"h2"});
        t.quorum(1.1, 3, true);
        t.tick(200.0);
        CPPUNIT_ASSERT(!t.open());
        CPPUNIT_ASSERT(!t.take_closed());
        CPPUNIT_ASSERT(!t.last());
        // Orders outside a trace (a failback, a move) are no failover.
        t.ordered(201.0, addr("198.18.4.1/24"));
        t.done(201.1, addr("198.18.4.1/24"), true);
        CPPUNIT_ASSERT(!t.take_closed());
    }

    void joins_alone_open_nothing() {
        FailoverTrace t;
        t.membership(1.0, 3, {});
        CPPUNIT_ASSERT(!t.open());
        t.membership(2.0, 4, {"h2"});
        t.ordered(2.1, addr("198.18.4.1/24"));
        t.membership(2.15, 5, {});   // a ring change during the failover keeps it open
        t.membership(2.16, 6, {});   // only the first is the departure's new ring
        t.done(2.2, addr("198.18.4.1/24"), true);
        auto b = t.take_closed();
        CPPUNIT_ASSERT(b);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t{5}, b->ring);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(150.0, ms(*b, FailoverStep::Totem), 1e-6);
    }

    void next_departure_closes_an_unfinished_trace() {
        FailoverTrace t;
        t.membership(1.0, 3, {"h2"});
        t.ordered(1.1, addr("198.18.4.1/24"));
        t.membership(2.0, 4, {"h3"});
        auto b = t.take_closed();
        CPPUNIT_ASSERT(b);
        CPPUNIT_ASSERT(!b->complete);
        CPPUNIT_ASSERT(b->line().find(" incomplete") != std::string::npos);
        CPPUNIT_ASSERT(t.open());
        // The old order does not belong to the new trace.
        t.done(2.1, addr("198.18.4.1/24"), true);
        CPPUNIT_ASSERT(t.open());
    }

    void failed_acquires_count_and_close() {
        FailoverTrace t;
        t.membership(1.0, 3, {"h2"});
        t.ordered(1.1, addr("198.18.4.1/24"));
        t.ordered(1.1, addr("198.18.4.2/24"));
        t.done(1.2, addr("198.18.4.1/24"), false);
        t.done(1.3, addr("198.18.4.2/24"), true);
        auto b = t.take_closed();
        CPPUNIT_ASSERT(b);
        CPPUNIT_ASSERT_EQUAL(std::size_t{1}, b->failed);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(300.0, ms(*b, FailoverStep::Done), 1e-6);
    }

    void closes_after_the_longest_span() {
        FailoverTrace t;
        t.membership(1.0, 3, {"h2"});
        t.ordered(1.1, addr("198.18.4.1/24"));
        CPPUNIT_ASSERT_DOUBLES_EQUAL(1.0 + FailoverTrace::kMaxSpan, *t.next_wake(), 1e-9);
        t.tick(1.0 + FailoverTrace::kMaxSpan);
        auto b = t.take_closed();
        CPPUNIT_ASSERT(b);
        CPPUNIT_ASSERT(!b->complete);
    }
};

}  // namespace

CPPUNIT_TEST_SUITE_REGISTRATION(FailoverTraceTest);
