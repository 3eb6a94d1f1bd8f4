// Shared by the planner's unit tests (test_planner.cc: the patent's rules;
// test_planner_balance.cc: placement and the output invariants).
//
// Each test describes a View as a small table of hosts and states the exact
// decisions the leader must take. Decisions are compared as a set (their
// order is not a contract); each expected decision also names words its
// reason must contain, so a reason always points at the host that motivates
// it.
#pragma once

#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <vector>

#include "core/config.h"
#include "core/model.h"
#include "core/planner.h"
#include "core/random.h"
#include "unit/common.h"

namespace rais::test {

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

inline Host host(const std::string& node, std::uint32_t id) { return Host(node, id); }

inline View view(std::vector<HostView> hosts, const std::string& addresses = kAddresses) {
    View v;
    auto err = parse_addresses(addresses, &v.config.addresses);
    CPPUNIT_ASSERT_MESSAGE("test bug: bad addresses", !err);
    v.now = 1000;
    v.hosts = std::move(hosts);
    return v;
}

inline Plan run(const View& v, std::uint64_t seed = 1) {
    RandomSource random(seed);
    return plan(v, random);
}

inline std::string describe(const Decision& d) {
    std::string s = std::string(to_string(d.action)) + " " + d.address.str();
    if (!d.node.empty()) s += " -> " + d.node;
    if (d.handover) s += " (handover)";
    return s + " [" + d.reason + "]";
}

inline std::string describe(const Plan& p) {
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

inline Want acquire(const char* a, const char* node, std::vector<std::string> mentions) {
    return {Action::Acquire, a, node, false, std::move(mentions)};
}
inline Want handover(const char* a, const char* node, std::vector<std::string> mentions) {
    return {Action::Acquire, a, node, true, std::move(mentions)};
}
inline Want release(const char* a, const char* node, std::vector<std::string> mentions) {
    return {Action::Release, a, node, false, std::move(mentions)};
}
inline Want expire(const char* a, const char* node, std::vector<std::string> mentions) {
    return {Action::Expire, a, node, false, std::move(mentions)};
}
inline Want cannotAssign(const char* a, std::vector<std::string> mentions) {
    return {Action::CannotAssign, a, "", false, std::move(mentions)};
}

inline std::uint32_t idOf(const View& v, const std::string& node) {
    for (const auto& h : v.hosts)
        if (h.node == node) return h.id;
    return 0;
}

// Asserts that the plan holds exactly the wanted decisions, in any order.
inline void expectDecisions(const View& v, const Plan& p, const std::vector<Want>& wants) {
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

inline void expectNothing(const View& v, const Plan& p) { expectDecisions(v, p, {}); }

inline bool anyNoteMentions(const Plan& p, const std::string& word) {
    for (const auto& n : p.notes)
        if (n.find(word) != std::string::npos) return true;
    return false;
}

}  // namespace rais::test
