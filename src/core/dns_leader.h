// DnsLeader: what the group's leader wants the DNS zone to advertise, and
// what it tells the operator about it (DESIGN §5.4). The plan itself is
// plan_dns() (dns_plan.h); this keeps the state between plans: the last
// advertised set (the patent's table M, for hysteresis), what the server last
// confirmed, and the current outage, so that one outage is one event.
//
// Invariants:
//  - it leads only while Member says so: plan() starts leading, step_down()
//    ends it, and a result that arrives while not leading is ignored;
//  - a new leader publishes at once, from the server's RRset once read;
//    afterwards only a changed set is published;
//  - a failure is reported once per outage (and per new kind of failure),
//    a recovery once.
//
// Pure: no I/O, no clock (time comes with each call); its effects are
// appended to the step's list, in the order they happen.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/member_io.h"
#include "core/model.h"

namespace rais {

class DnsLeader {
public:
    // A planning pass of the leader over view `v` (its config names the
    // server): plans the zone, logs a change, and publishes when the set
    // changed or this host has just started leading.
    void plan(const View& v, Effects& fx);
    // The server's answer to a read or an update; `self` names this host in
    // the events.
    void on_result(double now, const in::DnsResult& r, const GroupConfig& cfg, const std::string& self,
                   Effects& fx);
    // Leadership ended (or paused for a lost quorum).
    void step_down() { leading_ = false; }

    bool leading() const { return leading_; }
    // What the latest plan wants advertised.
    const std::set<ServiceAddress>& wanted() const { return prev_; }
    // The reasons of the last change of `wanted()`.
    const std::vector<std::string>& changes() const { return changes_; }

private:
    bool leading_ = false;
    // The last advertised set (table M): the hysteresis of the next plan,
    // seeded from the server's RRset when this host starts leading.
    std::set<ServiceAddress> prev_;
    std::set<ServiceAddress> confirmed_;            // what the server last confirmed
    std::map<ServiceAddress, std::string> why_;     // the latest plan's reason per address
    std::vector<std::string> changes_;              // the reasons of the last change of prev_
    std::string failing_;                           // the failure last reported as an event, until a success
};

}  // namespace rais
