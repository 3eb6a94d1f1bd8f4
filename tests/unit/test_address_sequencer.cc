// AddressSequencer tests: the per-address operation sequence of the address
// backend, driven without root, sockets or a main loop. A FakeKernel stands
// in for netlink: the test edits its table the way the kernel would (and
// hands the sequencer the matching events), and answers each request itself.

#include <cppunit/TestFixture.h>
#include <cppunit/extensions/HelperMacros.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "daemon/kernel/address_backend.h"
#include "daemon/kernel/address_sequencer.h"
#include "unit/common.h"

using namespace rais;
using namespace rais::kernel;
using rais::test::all;
using rais::test::count;

namespace {

ServiceAddress addr(const std::string& text) {
    auto a = ServiceAddress::parse(text);
    if (!a) CPPUNIT_FAIL("test bug: bad address " + text);
    return *a;
}

constexpr int kEth0 = 2;

class FakeKernel : public KernelPort {
public:
    const AddressTable& table() const override { return table_; }
    std::string ifname(int ifindex) const override { return ifindex == kEth0 ? "eth0" : ""; }
    int ifindex(const std::string& nic) const override { return nic == "eth0" ? kEth0 : 0; }
    LinkInfo link(const std::string&) const override {
        LinkInfo li;
        li.arp = true;
        li.mac = {2, 0, 0, 0, 0, 1};
        return li;
    }
    PromoteResult promote_secondaries(const std::string&) override {
        PromoteResult r;
        r.on = true;
        return r;
    }

    // Puts a record in the table; returns it as the monitor's event.
    KernelEvent add(const std::string& a, std::uint32_t flags = 0, int ifindex = kEth0) {
        AddrRecord r;
        r.ifindex = ifindex;
        r.addr = addr(a);
        r.flags = flags;
        r.valid = flags & IFA_F_PERMANENT ? kInfiniteLifetime : 30;
        KernelEvent ev;
        ev.rec = table_.apply(r, true);
        return ev;
    }
    KernelEvent remove(const std::string& a, std::uint32_t portid = 0, int ifindex = kEth0) {
        AddrRecord r;
        r.ifindex = ifindex;
        r.addr = addr(a);
        KernelEvent ev;
        ev.add = false;
        ev.portid = portid;
        ev.rec = table_.apply(r, false);
        return ev;
    }

    AddressTable table_;
};

template <class T> T one(const Effects& fx) {
    auto v = all<T>(fx);
    CPPUNIT_ASSERT_EQUAL(std::size_t(1), v.size());
    return v.front();
}
// Where the first effect of type T is; fx.size() if none.
template <class T> std::size_t index_of(const Effects& fx) {
    for (std::size_t i = 0; i < fx.size(); ++i)
        if (std::holds_alternative<T>(fx[i])) return i;
    return fx.size();
}
std::vector<AcquireStep> steps_of(const Effects& fx, const std::string& a) {
    std::vector<AcquireStep> out;
    for (const auto& s : all<out::Step>(fx))
        if (s.addr.str() == a) out.push_back(s.step);
    return out;
}
bool logged(const Effects& fx, const std::string& text) {
    for (const auto& l : all<out::Log>(fx))
        if (l.text.find(text) != std::string::npos) return true;
    return false;
}

}  // namespace

class AddressSequencerTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(AddressSequencerTest);
    CPPUNIT_TEST(testAcquireV4);
    CPPUNIT_TEST(testAcquireV6);
    CPPUNIT_TEST(testNoProbeMeansNoDad);
    CPPUNIT_TEST(testProbeAnswered);
    CPPUNIT_TEST(testDadFailed);
    CPPUNIT_TEST(testHookFailure);
    CPPUNIT_TEST(testReleasePermanent);
    CPPUNIT_TEST(testLostOnce);
    CPPUNIT_TEST(testReleaseDuringAcquire);
    CPPUNIT_TEST(testQueuedAfterRelease);
    CPPUNIT_TEST(testRefreshSkipsPermanent);
    CPPUNIT_TEST(testAnnounceRepeats);
    CPPUNIT_TEST(testBatchSharesOneDeadline);
    CPPUNIT_TEST(testSteps);
    CPPUNIT_TEST(testReconfigure);
    CPPUNIT_TEST(testAnnouncementsJoin);
    CPPUNIT_TEST(testLateProbeKeepsFullWindow);
    CPPUNIT_TEST_SUITE_END();

    FakeKernel kernel_;
    std::unique_ptr<AddressSequencer> seq_;
    double now_ = 100;

    void make(bool hook = false, double announce_interval = 10) {
        SequencerOptions o;
        o.arp_probe_ms = 50;
        o.announce_interval = announce_interval;
        o.hook = hook;
        seq_ = std::make_unique<AddressSequencer>(o, kernel_);
    }

    // One step, and the Continue steps it asks for, as the backend runs them.
    Effects step(const Input& in) {
        Effects fx = seq_->step(now_, in);
        while (count<out::Continue>(fx)) {
            fx.erase(std::remove_if(fx.begin(), fx.end(),
                                    [](const Effect& e) { return std::holds_alternative<out::Continue>(e); }),
                     fx.end());
            Effects more = seq_->step(now_, in::Continue{});
            fx.insert(fx.end(), more.begin(), more.end());
        }
        return fx;
    }

    // Acquires a (no probe) and answers the Add, the kernel having added it.
    Effects hold(const std::string& a) {
        Effects fx = step(in::Acquire{addr(a), false, 30});
        out::Add add = one<out::Add>(fx);
        kernel_.add(add.addr.str());
        return step(in::Added{add.key, add.op, 0, "", ""});
    }

public:
    void setUp() override {
        kernel_ = FakeKernel();
        kernel_.add("198.18.0.1/24", IFA_F_PERMANENT);
        kernel_.add("2001:2::1/64", IFA_F_PERMANENT);
        now_ = 100;
        make();
    }

    void testAcquireV4() {
        ServiceAddress a = addr("198.18.0.10/24");
        Effects fx = step(in::Acquire{a, true, 30});
        out::ProbeStart probe = one<out::ProbeStart>(fx);
        CPPUNIT_ASSERT_EQUAL(kEth0, probe.ifindex);
        CPPUNIT_ASSERT_EQUAL(std::string("eth0"), probe.nic);
        CPPUNIT_ASSERT_EQUAL(0u, static_cast<unsigned>(count<out::Add>(fx)));  // nothing plumbed while probing
        CPPUNIT_ASSERT_DOUBLES_EQUAL(now_ + 0.05, one<out::Wake>(fx).at, 1e-9);
        CPPUNIT_ASSERT(seq_->interface_of(a).empty());

        now_ += 0.05;  // the window passes unanswered
        fx = step(in::Tick{});
        CPPUNIT_ASSERT(index_of<out::ProbeStop>(fx) < index_of<out::Add>(fx));
        out::Add add = one<out::Add>(fx);
        CPPUNIT_ASSERT_EQUAL(std::string("198.18.0.10/24"), add.addr.str());
        CPPUNIT_ASSERT(!add.replace);
        CPPUNIT_ASSERT_EQUAL(30u, add.lifetime);
        CPPUNIT_ASSERT_EQUAL(0u, static_cast<unsigned>(count<out::Wake>(fx)));

        kernel_.add("198.18.0.10/24");
        fx = step(in::Added{add.key, add.op, 0, "", ""});
        // Announce at once, then report: the first announcement is not held back by the callback.
        CPPUNIT_ASSERT(index_of<out::Announce>(fx) < index_of<out::Done>(fx));
        CPPUNIT_ASSERT(logged(fx, "acquired 198.18.0.10/24 on eth0"));
        out::Done d = one<out::Done>(fx);
        CPPUNIT_ASSERT(d.acquire && d.ok && d.detail.empty());
        CPPUNIT_ASSERT_DOUBLES_EQUAL(now_ + kAnnounceGap, one<out::Wake>(fx).at, 1e-9);
        CPPUNIT_ASSERT_EQUAL(std::string("eth0"), seq_->interface_of(a));
    }

    void testAcquireV6() {
        ServiceAddress a = addr("2001:2::10/64");
        Effects fx = step(in::Acquire{a, true, 30});
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::ProbeStart>(fx));  // no ARP for IPv6: DAD instead
        out::Add add = one<out::Add>(fx);

        kernel_.add("2001:2::10/64", IFA_F_TENTATIVE);
        fx = step(in::Added{add.key, add.op, 0, "", ""});
        CPPUNIT_ASSERT(logged(fx, "2001:2::10/64: waiting for duplicate address detection"));
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Done>(fx));
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Announce>(fx));  // a tentative address is not claimed
        CPPUNIT_ASSERT_DOUBLES_EQUAL(now_ + kDadLimitSeconds, one<out::Wake>(fx).at, 1e-9);

        now_ += 1.5;
        fx = step(in::KernelEvents{{kernel_.add("2001:2::10/64")}});
        CPPUNIT_ASSERT(logged(fx, "duplicate address detection passed"));
        CPPUNIT_ASSERT(index_of<out::Announce>(fx) < index_of<out::Done>(fx));
        CPPUNIT_ASSERT(one<out::Done>(fx).ok);
        CPPUNIT_ASSERT_EQUAL(std::string("2001:2::10/64"), one<out::Announce>(fx).addr.str());
    }

    // DAD is IPv6's probe: an acquire without a probe (a handover, whose old
    // holder would fail DAD by answering; a confirmed fence) plumbs with
    // IFA_F_NODAD and is announced at once; IPv4 never asks for it.
    void testNoProbeMeansNoDad() {
        CPPUNIT_ASSERT(!one<out::Add>(step(in::Acquire{addr("2001:2::10/64"), true, 30})).nodad);
        ServiceAddress a = addr("2001:2::11/64");
        Effects fx = step(in::Acquire{a, false, 30});
        out::Add add = one<out::Add>(fx);
        CPPUNIT_ASSERT(add.nodad);
        kernel_.add("2001:2::11/64");   // not tentative
        fx = step(in::Added{add.key, add.op, 0, "", ""});
        CPPUNIT_ASSERT(one<out::Done>(fx).ok);
        CPPUNIT_ASSERT(!one<out::Add>(step(in::Acquire{addr("198.18.0.12/24"), false, 30})).nodad);
    }

    void testProbeAnswered() {
        ServiceAddress a = addr("198.18.0.10/24");
        Effects fx = step(in::Acquire{a, true, 30});
        out::ProbeStart probe = one<out::ProbeStart>(fx);
        fx = step(in::ProbeAnswered{probe.key, probe.op, "02:00:00:00:00:02"});
        out::Done d = one<out::Done>(fx);
        CPPUNIT_ASSERT(d.acquire && !d.ok);
        CPPUNIT_ASSERT_EQUAL(std::string("ARP probe for 198.18.0.10 answered by 02:00:00:00:00:02"), d.detail);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), count<out::ProbeStop>(fx));
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Add>(fx));
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Remove>(fx));
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Wake>(fx));  // no window left to wait for

        now_ += 1;  // a late tick plumbs nothing
        fx = step(in::Tick{});
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Add>(fx));
    }

    void testDadFailed() {
        Effects fx = step(in::Acquire{addr("2001:2::10/64"), true, 30});
        out::Add add = one<out::Add>(fx);
        kernel_.add("2001:2::10/64", IFA_F_TENTATIVE);
        step(in::Added{add.key, add.op, 0, "", ""});
        fx = step(in::KernelEvents{{kernel_.add("2001:2::10/64", IFA_F_DADFAILED)}});
        out::Remove rm = one<out::Remove>(fx);
        CPPUNIT_ASSERT_EQUAL(std::string("2001:2::10/64"), rm.addr.str());
        CPPUNIT_ASSERT(index_of<out::Remove>(fx) < index_of<out::Done>(fx));
        out::Done d = one<out::Done>(fx);
        CPPUNIT_ASSERT(!d.ok);
        CPPUNIT_ASSERT_EQUAL(std::string("duplicate address detected (DAD failed)"), d.detail);
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Announce>(fx));
    }

    void testHookFailure() {
        make(true);
        Effects fx = step(in::Acquire{addr("198.18.0.10/24"), false, 30});
        out::Add add = one<out::Add>(fx);
        kernel_.add("198.18.0.10/24");
        fx = step(in::Added{add.key, add.op, 0, "", ""});
        out::RunHook hook = one<out::RunHook>(fx);
        CPPUNIT_ASSERT(hook.acquire);
        CPPUNIT_ASSERT_EQUAL(std::string("198.18.0.10/24"), hook.addr.str());
        CPPUNIT_ASSERT_EQUAL(std::string("eth0"), hook.nic);
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Done>(fx));

        fx = step(in::HookDone{hook.key, hook.op, false, "hook exit status 3: refused"});
        CPPUNIT_ASSERT(index_of<out::Remove>(fx) < index_of<out::Done>(fx));
        CPPUNIT_ASSERT_EQUAL(std::string("198.18.0.10/24"), one<out::Remove>(fx).addr.str());
        out::Done d = one<out::Done>(fx);
        CPPUNIT_ASSERT(!d.ok);
        CPPUNIT_ASSERT_EQUAL(std::string("hook exit status 3: refused"), d.detail);
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Announce>(fx));
    }

    void testReleasePermanent() {
        make(true);
        kernel_.add("198.18.0.20/24", IFA_F_PERMANENT);
        Effects fx = step(in::Release{addr("198.18.0.20/24")});
        out::Done d = one<out::Done>(fx);
        CPPUNIT_ASSERT(!d.acquire && d.ok);
        CPPUNIT_ASSERT_EQUAL(std::string(AddressBackend::kPermanentDetail), d.detail);
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Remove>(fx));
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::RunHook>(fx));  // the hook is not ours to run for it
        CPPUNIT_ASSERT(one<out::Fixed>(fx).present);
        CPPUNIT_ASSERT(index_of<out::Fixed>(fx) < index_of<out::Done>(fx));
        CPPUNIT_ASSERT(logged(fx, "198.18.0.20/24 on eth0 is a permanent address (configured by the administrator): "
                                  "not removed"));

        // Its acquire leaves it alone too, and does not report it fixed twice.
        fx = step(in::Acquire{addr("198.18.0.20/24"), true, 30});
        CPPUNIT_ASSERT_EQUAL(std::string(AddressBackend::kPermanentDetail), one<out::Done>(fx).detail);
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Add>(fx) + count<out::ProbeStart>(fx));
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Fixed>(fx));
    }

    void testLostOnce() {
        hold("198.18.0.10/24");
        now_ += 5;
        Effects fx = step(in::KernelEvents{{kernel_.remove("198.18.0.10/24", 4242)}});
        out::Lost lost = one<out::Lost>(fx);
        CPPUNIT_ASSERT_EQUAL(std::string("198.18.0.10/24"), lost.addr.str());
        CPPUNIT_ASSERT_EQUAL(std::string("deleted from eth0 by another process (netlink port 4242)"), lost.why);
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Wake>(fx));  // announcements stop with it
        CPPUNIT_ASSERT(seq_->interface_of(addr("198.18.0.10/24")).empty());

        // The same removal seen again, a refresh, a tick: nothing more.
        fx = step(in::KernelEvents{{kernel_.remove("198.18.0.10/24")}});
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Lost>(fx));
        fx = step(in::Refresh{{addr("198.18.0.10/24")}, 30});
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Lost>(fx));
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Refresh>(fx));  // not added back
        CPPUNIT_ASSERT(logged(fx, "refresh: 198.18.0.10/24 is on no interface; not adding it back"));
    }

    void testReleaseDuringAcquire() {
        ServiceAddress a = addr("198.18.0.10/24");
        Effects fx = step(in::Acquire{a, false, 30});
        out::Add add = one<out::Add>(fx);
        kernel_.add("198.18.0.10/24");  // in the kernel, its ACK not read yet
        fx = step(in::Release{a});
        auto done = all<out::Done>(fx);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), done.size());
        CPPUNIT_ASSERT(done[0].acquire && !done[0].ok);
        CPPUNIT_ASSERT_EQUAL(std::string("superseded by a release"), done[0].detail);
        out::Remove rm = one<out::Remove>(fx);
        CPPUNIT_ASSERT(rm.op != 0 && rm.op != add.op);

        // The acquire's late ACK changes nothing; the release's ends it.
        fx = step(in::Added{add.key, add.op, 0, "", ""});
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Done>(fx) + count<out::Announce>(fx));
        kernel_.remove("198.18.0.10/24");
        fx = step(in::Removed{rm.key, rm.op, rm.addr, 0, "", ""});
        out::Done d = one<out::Done>(fx);
        CPPUNIT_ASSERT(!d.acquire && d.ok && d.detail.empty());
        CPPUNIT_ASSERT(logged(fx, "released 198.18.0.10/24"));
    }

    void testQueuedAfterRelease() {
        ServiceAddress a = addr("198.18.0.10/24");
        hold("198.18.0.10/24");
        Effects fx = step(in::Release{a});
        out::Remove rm = one<out::Remove>(fx);
        fx = step(in::Acquire{a, false, 30});  // waits for the release
        CPPUNIT_ASSERT(logged(fx, "198.18.0.10/24: acquire queued behind the operation in progress"));
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Add>(fx));
        kernel_.remove("198.18.0.10/24");
        fx = step(in::Removed{rm.key, rm.op, rm.addr, 0, "", ""});
        // The release's answer first, then the acquire, on the table without the address: created anew.
        CPPUNIT_ASSERT(index_of<out::Done>(fx) < index_of<out::Add>(fx));
        CPPUNIT_ASSERT(!one<out::Add>(fx).replace);
    }

    void testRefreshSkipsPermanent() {
        hold("198.18.0.10/24");
        kernel_.add("198.18.0.20/24", IFA_F_PERMANENT);
        now_ += 10;
        Effects fx = step(in::Refresh{{addr("198.18.0.10/24"), addr("198.18.0.20/24")}, 40});
        out::Refresh r = one<out::Refresh>(fx);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), r.items.size());
        CPPUNIT_ASSERT_EQUAL(std::string("198.18.0.10/24"), r.items[0].addr.str());
        CPPUNIT_ASSERT_EQUAL(kEth0, r.items[0].ifindex);
        CPPUNIT_ASSERT_EQUAL(40u, r.lifetime);
        CPPUNIT_ASSERT(logged(fx, "refresh: 198.18.0.20/24 is a permanent address (the administrator's); left alone"));
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Lost>(fx));

        // Ours made permanent by the administrator: relinquished, no Lost, no longer refreshed.
        fx = step(in::KernelEvents{{kernel_.add("198.18.0.10/24", IFA_F_PERMANENT)}});
        CPPUNIT_ASSERT(logged(fx, "was made permanent by the administrator"));
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Lost>(fx));
        fx = step(in::Refresh{{addr("198.18.0.10/24")}, 40});
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Refresh>(fx));
    }

    void testAnnounceRepeats() {
        make(false, 10);
        Effects fx = hold("198.18.0.10/24");
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), count<out::Announce>(fx));
        double at = one<out::Wake>(fx).at;
        for (unsigned i = 0; i < kAnnounceRepeats; ++i) {
            CPPUNIT_ASSERT_DOUBLES_EQUAL(now_ + kAnnounceGap, at, 1e-9);
            now_ = at;
            fx = step(in::Tick{});
            CPPUNIT_ASSERT_EQUAL(std::size_t(1), count<out::Announce>(fx));
            at = one<out::Wake>(fx).at;
        }
        // After the burst: every announce_interval.
        CPPUNIT_ASSERT_DOUBLES_EQUAL(now_ + 10, at, 1e-9);
        now_ += 5;  // an early tick announces nothing and keeps the time
        fx = step(in::Tick{});
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Announce>(fx));
        CPPUNIT_ASSERT_DOUBLES_EQUAL(at, one<out::Wake>(fx).at, 1e-9);
        now_ = at;
        fx = step(in::Tick{});
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), count<out::Announce>(fx));
        CPPUNIT_ASSERT_DOUBLES_EQUAL(now_ + 10, one<out::Wake>(fx).at, 1e-9);

        // announce_interval 0: the burst only.
        make(false, 0);
        fx = hold("198.18.0.11/24");
        for (unsigned i = 0; i < kAnnounceRepeats; ++i) {
            now_ = one<out::Wake>(fx).at;
            fx = step(in::Tick{});
        }
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), count<out::Announce>(fx));
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Wake>(fx));
    }

    // A leader's Batch: the probes of one round share one deadline, their
    // Adds leave in one step, their ACKs come back in one step and the
    // announcements repeat on one timer.
    void testBatchSharesOneDeadline() {
        in::AcquireBatch batch;
        for (unsigned i = 2; i < 252; ++i)
            batch.list.push_back(in::Acquire{addr("198.18.0." + std::to_string(i) + "/24"), true, 30});
        Effects fx = step(batch);
        CPPUNIT_ASSERT_EQUAL(std::size_t(250), count<out::ProbeStart>(fx));
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Add>(fx));
        CPPUNIT_ASSERT_DOUBLES_EQUAL(now_ + 0.05, one<out::Wake>(fx).at, 1e-9);

        // Half the window later another acquire starts its own full window.
        now_ += 0.025;
        fx = step(in::Acquire{addr("198.18.0.252/24"), true, 30});
        CPPUNIT_ASSERT_DOUBLES_EQUAL(now_ + 0.025, one<out::Wake>(fx).at, 1e-9);  // the round's comes first

        now_ += 0.0245;  // short of the round's deadline (beyond the timer slack): nothing yet
        fx = step(in::Tick{});
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::Add>(fx));
        now_ += 0.0005;
        fx = step(in::Tick{});
        auto adds = all<out::Add>(fx);
        CPPUNIT_ASSERT_EQUAL(std::size_t(250), adds.size());  // all of the round at once, the late one not
        CPPUNIT_ASSERT_EQUAL(std::size_t(250), count<out::ProbeStop>(fx));
        CPPUNIT_ASSERT_DOUBLES_EQUAL(now_ + 0.025, one<out::Wake>(fx).at, 1e-9);  // the late one's full window

        in::AddedBatch acks;
        for (const auto& a : adds) {
            kernel_.add(a.addr.str());
            acks.list.push_back(in::Added{a.key, a.op, 0, "", ""});
        }
        fx = step(acks);
        CPPUNIT_ASSERT_EQUAL(std::size_t(250), count<out::Announce>(fx));
        CPPUNIT_ASSERT_EQUAL(std::size_t(250), count<out::Done>(fx));
        double at = one<out::Wake>(fx).at;
        CPPUNIT_ASSERT_DOUBLES_EQUAL(now_ + 0.025, at, 1e-9);  // still the late probe first
        now_ = at;
        fx = step(in::Tick{});
        out::Add late = one<out::Add>(fx);
        CPPUNIT_ASSERT_EQUAL(std::string("198.18.0.252/24"), late.addr.str());
        // The round's repeats: one timer, every address in one tick.
        now_ = one<out::Wake>(fx).at;
        fx = step(in::Tick{});
        CPPUNIT_ASSERT_EQUAL(std::size_t(250), count<out::Announce>(fx));
    }

    void testSteps() {
        const std::string a = "198.18.0.10/24";
        Effects fx = step(in::Acquire{addr(a), true, 30});
        out::ProbeStart probe = one<out::ProbeStart>(fx);
        CPPUNIT_ASSERT(steps_of(fx, a).empty());  // not on the wire yet
        fx = step(in::ProbesSent{{{probe.key, probe.op}}});
        CPPUNIT_ASSERT(steps_of(fx, a) == std::vector<AcquireStep>{AcquireStep::ProbeSent});
        now_ += 0.05;
        fx = step(in::Tick{});
        CPPUNIT_ASSERT(steps_of(fx, a) == std::vector<AcquireStep>{AcquireStep::ProbeSettled});
        out::Add add = one<out::Add>(fx);
        kernel_.add(a);
        fx = step(in::Added{add.key, add.op, 0, "", ""});
        CPPUNIT_ASSERT(steps_of(fx, a) == (std::vector<AcquireStep>{AcquireStep::Plumbed, AcquireStep::Announced}));
        // Announced once the first announcement is among the effects, before the answer.
        std::size_t announced = fx.size();
        for (std::size_t i = 0; i < fx.size(); ++i)
            if (auto* st = std::get_if<out::Step>(&fx[i]); st && st->step == AcquireStep::Announced) announced = i;
        CPPUNIT_ASSERT(index_of<out::Announce>(fx) < announced);
        CPPUNIT_ASSERT(announced < index_of<out::Done>(fx));

        // A probe that could not go out settles at once, never "sent"; a
        // stale ProbesSent reports nothing.
        const std::string b = "198.18.0.11/24";
        fx = step(in::Acquire{addr(b), true, 30});
        probe = one<out::ProbeStart>(fx);
        fx = step(in::ProbeSkipped{probe.key, probe.op});
        CPPUNIT_ASSERT(steps_of(fx, b) == std::vector<AcquireStep>{AcquireStep::ProbeSettled});
        fx = step(in::ProbesSent{{{probe.key, probe.op}}});
        CPPUNIT_ASSERT(steps_of(fx, b).empty());

        // No probe (a handover): no probe steps.
        const std::string c = "198.18.0.12/24";
        fx = hold(c);
        CPPUNIT_ASSERT(steps_of(fx, c) == (std::vector<AcquireStep>{AcquireStep::Plumbed, AcquireStep::Announced}));
        // A failed acquire reports no Plumbed.
        const std::string d = "198.18.0.13/24";
        fx = step(in::Acquire{addr(d), false, 30});
        add = one<out::Add>(fx);
        fx = step(in::Added{add.key, add.op, EPERM, "Operation not permitted", ""});
        CPPUNIT_ASSERT(steps_of(fx, d).empty());
        CPPUNIT_ASSERT(!one<out::Done>(fx).ok);
    }

    // A reload applies to operations that start afterwards; those under way
    // finish as they began.
    void testReconfigure() {
        ServiceAddress a = addr("198.18.0.10/24"), b = addr("198.18.0.11/24");
        Effects fx = step(in::Acquire{a, true, 30});
        one<out::ProbeStart>(fx);
        double deadline = one<out::Wake>(fx).at;

        SequencerOptions o;
        o.nic = "ignored";  // the nic stays
        o.arp_probe_ms = 0;
        o.announce_interval = 2;
        o.hook = true;
        o.hook_command = "/usr/lib/rais/hook";
        o.hook_timeout = 7;
        seq_->reconfigure(o);

        fx = step(in::Acquire{b, true, 30});  // probe wanted, but arp_probe_ms is 0 now
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::ProbeStart>(fx));
        out::Add add_b = one<out::Add>(fx);
        CPPUNIT_ASSERT_EQUAL(kEth0, add_b.ifindex);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(deadline, one<out::Wake>(fx).at, 1e-9);  // a keeps its window
        // arp_probe_ms=0 turns the ARP probe off, not IPv6's DAD.
        CPPUNIT_ASSERT(!one<out::Add>(step(in::Acquire{addr("2001:2::20/64"), false, 30})).nodad);

        now_ = deadline;
        fx = step(in::Tick{});
        out::Add add_a = one<out::Add>(fx);
        kernel_.add(a.str());
        fx = step(in::Added{add_a.key, add_a.op, 0, "", ""});
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), count<out::RunHook>(fx));  // began without a hook
        CPPUNIT_ASSERT(one<out::Done>(fx).ok);

        kernel_.add(b.str());
        fx = step(in::Added{add_b.key, add_b.op, 0, "", ""});
        out::RunHook hook = one<out::RunHook>(fx);
        CPPUNIT_ASSERT_EQUAL(std::string("/usr/lib/rais/hook"), hook.command);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(7.0, hook.timeout, 1e-9);
        fx = step(in::HookDone{hook.key, hook.op, true, ""});
        CPPUNIT_ASSERT(one<out::Done>(fx).ok);

        // a's announcements: after its burst, the new interval.
        double at = one<out::Wake>(fx).at;
        for (int i = 0; i < 20 && std::abs(at - now_ - 2) > 1e-6; ++i) {
            now_ = at;
            fx = step(in::Tick{});
            at = one<out::Wake>(fx).at;
        }
        CPPUNIT_ASSERT_DOUBLES_EQUAL(now_ + 2, at, 1e-6);

        // Releases started after the reload run the hook too.
        fx = step(in::Release{a});
        CPPUNIT_ASSERT_EQUAL(std::string("/usr/lib/rais/hook"), one<out::RunHook>(fx).command);
    }

    // A probe that waited for room on the link gets its full window from
    // when it left; the others of the batch keep theirs.
    void testLateProbeKeepsFullWindow() {
        in::AcquireBatch batch{{in::Acquire{addr("198.18.0.10/24"), true, 30},
                                in::Acquire{addr("198.18.0.11/24"), true, 30}}};
        Effects fx = step(batch);
        auto probes = all<out::ProbeStart>(fx);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), probes.size());
        double start = now_;
        fx = step(in::ProbesSent{{{probes[0].key, probes[0].op}}});
        CPPUNIT_ASSERT_DOUBLES_EQUAL(start + 0.05, one<out::Wake>(fx).at, 1e-9);
        now_ += 0.01;  // the second left 10 ms late
        fx = step(in::ProbesSent{{{probes[1].key, probes[1].op}}});
        CPPUNIT_ASSERT(steps_of(fx, "198.18.0.11/24") == std::vector<AcquireStep>{AcquireStep::ProbeSent});
        now_ = start + 0.05;
        fx = step(in::Tick{});
        CPPUNIT_ASSERT_EQUAL(std::string("198.18.0.10/24"), one<out::Add>(fx).addr.str());
        CPPUNIT_ASSERT_DOUBLES_EQUAL(start + 0.06, one<out::Wake>(fx).at, 1e-9);
        now_ = start + 0.06;
        fx = step(in::Tick{});
        CPPUNIT_ASSERT_EQUAL(std::string("198.18.0.11/24"), one<out::Add>(fx).addr.str());
    }

    // Announcements of addresses acquired a few ms apart share one timer.
    void testAnnouncementsJoin() {
        hold("198.18.0.10/24");
        now_ += 0.002;
        Effects fx = hold("198.18.0.11/24");
        double at = one<out::Wake>(fx).at;
        CPPUNIT_ASSERT_DOUBLES_EQUAL(now_ - 0.002 + kAnnounceGap, at, 1e-9);  // joined the first one's time
        now_ = at;
        fx = step(in::Tick{});
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), count<out::Announce>(fx));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(AddressSequencerTest);
