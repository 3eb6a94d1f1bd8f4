// Shared by Member's unit tests (test_member.cc: the group — leadership,
// views, quorum, messages, departures and fencing; test_member_host.cc: this
// host — its addresses, health, quiesce, stop and stalls).
//
// A small Bus stands in for CPG: it hands a view change to every member at
// once, delivers every multicast to every member of the view in one agreed
// order, and answers each Plumb/Unplumb with a successful ActionDone. Most
// tests put the member under test (node 2) beside a scripted leader (node 1)
// whose Infos and commands the test writes itself, so the member's reaction
// to one crafted command is all that happens.
#pragma once

#include <cppunit/extensions/HelperMacros.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/codec.h"
#include "core/config.h"
#include "core/member.h"
#include "unit/common.h"

namespace rais::test {

inline GroupConfig groupConfig() {
    GroupConfig c;
    auto e = parse_config({{"addresses", kAddresses}, {"group", "g"}, {"fencing", "off"}}, &c);
    if (e) CPPUNIT_FAIL("test bug: " + e->message);
    return c;
}

inline MemberSetup setup(std::uint32_t node) {
    MemberSetup s;
    s.config = groupConfig();
    s.self = {node, 100 + node};
    s.name = "n" + std::to_string(node);
    return s;
}


// The messages a member multicast, decoded: a member must never send what
// its peers would drop.
inline std::vector<Message> sent(const Effects& fx) {
    std::vector<Message> v;
    for (const auto& s : all<out::Send>(fx)) {
        auto d = decode(s.bytes.data(), s.bytes.size());
        const Message* m = std::get_if<Message>(&d);
        CPPUNIT_ASSERT_MESSAGE("a member sent an undecodable message: " + s.what, m);
        v.push_back(*m);
    }
    return v;
}

inline std::vector<InfoMsg> infos(const Effects& fx) {
    std::vector<InfoMsg> v;
    for (const auto& m : sent(fx))
        if (const auto* i = std::get_if<InfoMsg>(&m)) v.push_back(*i);
    return v;
}

inline std::vector<Event> events(const Effects& fx, EventKind k) {
    std::vector<Event> v;
    for (const auto& e : all<out::Emit>(fx))
        if (e.event.kind == k) v.push_back(e.event);
    return v;
}

// Addresses as text, so assertion messages show them.
template <class T> std::set<std::string> texts(const std::vector<T>& v) {
    std::set<std::string> s;
    for (const auto& x : v) s.insert(x.address.str());
    return s;
}

inline std::set<std::string> texts(const std::vector<Event>& v) {
    std::set<std::string> s;
    for (const auto& e : v) s.insert(e.address ? e.address->str() : "(none)");
    return s;
}

inline std::set<std::string> texts(std::initializer_list<const char*> v) { return {v.begin(), v.end()}; }

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A stand-in for CPG with agreed order, plus a shell that plumbs instantly.
class Bus {
public:
    double now = 1000;  // not 0: Member reads a last step at time 0 as "never stepped"

    Member& add(MemberSetup s) {
        slots_.emplace_back(std::move(s));
        Slot& slot = slots_.back();
        record(slot, slot.member.start(now));
        return slot.member;
    }

    // A scripted process: the Bus sends an Info for it on each view change
    // and every interval (so it stays counted and not silent); everything
    // else it says, the test multicasts for it.
    Process fake(std::uint32_t node) {
        fakes_.push_back({{node, 900 + node}, 0, 0});
        return fakes_.back().process;
    }

    void view(std::uint64_t ring, const std::vector<Process>& procs, ChangeReason left_why = ChangeReason::Leave) {
        settle();  // CPG delivers what was sent in the old view before the change
        in::Membership m;
        m.ring = ring;
        m.members = procs;
        for (const auto& p : view_)
            if (!in(procs, p)) m.left.emplace_back(p, left_why);
        for (const auto& p : procs) {
            if (!in(view_, p)) m.joined.emplace_back(p, ChangeReason::Join);
            if (std::find(m.nodes.begin(), m.nodes.end(), p.node) == m.nodes.end()) m.nodes.push_back(p.node);
        }
        view_ = procs;
        for (auto& s : slots_)
            if (in(view_, s.member.self())) {
                s.commands = 0;
                record(s, s.member.step(now, m));
            }
        for (auto& f : fakes_)
            if (in(view_, f.process)) fakeInfo(f);
        settle();
    }

    void quorum(std::uint64_t ring, bool quorate) {
        for (auto& s : slots_) record(s, s.member.step(now, in::Quorum{ring, quorate}));
        settle();
    }

    void multicast(const Process& from, const Message& m) { queue_.push_back({from, encode(m)}); }

    // One step of one member; what it sends or plumbs waits for settle().
    void input(Member& m, const Input& in) {
        Slot& s = slot(m);
        record(s, s.member.step(now, in));
    }

    void settle() {
        for (int guard = 0; !queue_.empty() || !actions_.empty(); ++guard) {
            CPPUNIT_ASSERT_MESSAGE("the members never fall quiet", guard < 10000);
            if (!queue_.empty()) {
                in::Delivered d = std::move(queue_.front());
                queue_.pop_front();
                auto msg = decode(d.bytes.data(), d.bytes.size());
                const Message* m = std::get_if<Message>(&msg);
                bool command = m && in(view_, d.from) &&
                               (std::holds_alternative<AcquireMsg>(*m) || std::holds_alternative<ReleaseMsg>(*m) ||
                                std::holds_alternative<BatchMsg>(*m));
                for (auto& s : slots_) {
                    if (!in(view_, s.member.self())) continue;
                    if (command) s.commands++;
                    record(s, s.member.step(now, d));
                }
            } else {
                auto [s, done] = actions_.front();
                actions_.pop_front();
                record(*s, s->member.step(now, done));
            }
        }
    }

    // Time passes in quarter intervals, with every member ticked each time.
    void runFor(double seconds) {
        for (double end = now + seconds; now < end;) {
            now += 0.25;
            for (auto& f : fakes_)
                if (in(view_, f.process) && now >= f.next_info) fakeInfo(f);
            for (auto& s : slots_) record(s, s.member.step(now, in::Tick{}));
            settle();
        }
    }

    const Effects& fx(const Member& m) { return slot(m).fx; }
    void clear() {
        for (auto& s : slots_) s.fx.clear();
    }
    // Infos whose cmd_seen differed from the Acquire/Release count the Bus
    // itself delivered to the sender since its last view change.
    const std::vector<std::string>& cmdSeenMismatches() const { return mismatches_; }

private:
    struct Slot {
        explicit Slot(MemberSetup s) : member(std::move(s)) {}
        Member member;
        Effects fx;                  // everything it did since the last clear()
        std::uint32_t commands = 0;  // Acquire/Release delivered to it since its last view
    };
    struct Fake {
        Process process;
        std::uint64_t seq;
        double next_info;
    };

    static bool in(const std::vector<Process>& v, const Process& p) {
        return std::find(v.begin(), v.end(), p) != v.end();
    }

    Slot& slot(const Member& m) {
        for (auto& s : slots_)
            if (&s.member == &m) return s;
        CPPUNIT_FAIL("test bug: member not on this bus");
        throw;  // unreachable: CPPUNIT_FAIL throws
    }

    void fakeInfo(Fake& f) {
        InfoMsg i;
        i.seq = ++f.seq;
        i.node = f.process.node;
        i.name = "n" + std::to_string(f.process.node);
        i.digest = groupConfig().digest();
        multicast(f.process, i);
        f.next_info = now + 1;
    }

    void record(Slot& s, Effects fx) {
        for (auto& e : fx) {
            if (const auto* send = std::get_if<out::Send>(&e)) {
                queue_.push_back({s.member.self(), send->bytes});
                auto msg = decode(send->bytes.data(), send->bytes.size());
                const Message* m = std::get_if<Message>(&msg);
                const InfoMsg* i = m ? std::get_if<InfoMsg>(m) : nullptr;
                if (i && i->cmd_seen != s.commands)
                    mismatches_.push_back(s.member.name() + " Info #" + std::to_string(i->seq) + ": cmd_seen " +
                                          std::to_string(i->cmd_seen) + ", delivered " + std::to_string(s.commands));
            } else if (const auto* p = std::get_if<out::Plumb>(&e)) {
                actions_.push_back({&s, in::ActionDone{p->address, true, true, ""}});
            } else if (const auto* u = std::get_if<out::Unplumb>(&e)) {
                actions_.push_back({&s, in::ActionDone{u->address, false, true, ""}});
            }
            s.fx.push_back(std::move(e));
        }
    }

    std::deque<Slot> slots_;  // a deque keeps references to members valid as more are added
    std::vector<Fake> fakes_;
    std::vector<Process> view_;
    std::deque<in::Delivered> queue_;
    std::deque<std::pair<Slot*, in::ActionDone>> actions_;
    std::vector<std::string> mismatches_;
};

inline const Process kLeader{1, 901};  // the scripted leader, as Bus::fake(1) names it

// Node 2 (set up as `s`) in view `ring` beside the scripted leader, quorate.
inline Member& joinLedGroup(Bus& bus, MemberSetup s, std::uint64_t ring = 1) {
    CPPUNIT_ASSERT(bus.fake(1) == kLeader);
    Member& m = bus.add(std::move(s));
    bus.view(ring, {kLeader, m.self()});
    bus.quorum(ring, true);
    CPPUNIT_ASSERT_EQUAL(std::uint32_t{1}, m.status(bus.now).leader);
    bus.clear();
    return m;
}

inline void order(Bus& bus, const char* a, std::uint32_t dest = 2) {
    bus.multicast(kLeader, AcquireMsg{1, dest, addr(a), false, "test: the leader's order"});
}

inline void orderRelease(Bus& bus, const char* a, std::uint32_t dest = 2) {
    bus.multicast(kLeader, ReleaseMsg{1, dest, addr(a), "test: the leader's order"});
}

// The scripted leader gives node 2 the addresses, which end up online.
inline void grant(Bus& bus, Member& m, std::initializer_list<const char*> as) {
    for (const char* a : as) order(bus, a);
    bus.settle();
    for (const char* a : as) CPPUNIT_ASSERT(m.held().at(addr(a)) == AddressState::Online);
    bus.clear();
}

inline void assertNoAcquire(Bus& bus, Member& m) {
    CPPUNIT_ASSERT_EQUAL(std::size_t{0}, count<out::Plumb>(bus.fx(m)));
    CPPUNIT_ASSERT_EQUAL(std::size_t{0}, events(bus.fx(m), EventKind::Acquire).size());
}

}  // namespace rais::test
