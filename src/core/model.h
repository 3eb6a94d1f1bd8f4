// Model: what the leader knows of its group at one instant (a View), and the
// decisions it takes from it. Shared by the planner, the member state
// machine, `raisctl plan` (through view_json) and the simulator.
//
// Invariants: host names and ids are unique within a View; an address appears
// at most once in a host's `serving`. Times are seconds on the caller's clock.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/address.h"
#include "core/config.h"

namespace rais {

enum class AddressState : std::uint8_t { Acquiring = 1, Online = 2, Releasing = 3 };
const char* to_string(AddressState s);

struct Holding {
    ServiceAddress address;
    AddressState state = AddressState::Online;
};

struct HostView {
    std::string node;              // cluster node name
    std::uint32_t id = 0;          // corosync node id
    bool ok = true;                // health tests pass
    bool quiesced = false;
    bool stopping = false;         // graceful stop under way: hand everything over
    bool config_match = true;      // its configuration digest equals the leader's
    bool departed = false;         // no longer a live member (restart grace, unfenced):
                                   // what it held still counts as held, it is told nothing
    std::string departed_why;
    double load = 0;
    double capacity = 100;
    std::vector<Holding> serving;

    // load x 100 / capacity; capacity 0 counts as 100 (DESIGN §5.2).
    double utilization() const { return load * 100.0 / (capacity > 0 ? capacity : 100.0); }
    const Holding* holding(const ServiceAddress& a) const {
        for (const auto& h : serving)
            if (h.address == a) return &h;
        return nullptr;
    }
};

struct View {
    GroupConfig config;
    double now = 0;
    std::vector<HostView> hosts;
    std::map<ServiceAddress, double> orphans;     // address -> since (orphan countdown start)
    std::map<ServiceAddress, std::string> pins;   // address -> node name (manual moves)
};

enum class Action : std::uint8_t { Acquire, Release, CannotAssign, Expire };
const char* to_string(Action a);

struct Decision {
    Action action = Action::Acquire;
    ServiceAddress address;
    std::string node;              // empty for cannot_assign
    std::uint32_t node_id = 0;
    bool handover = false;         // acquire while the old holder still serves (make before break)
    std::string reason;
};

struct Plan {
    std::vector<Decision> decisions;
    std::map<ServiceAddress, double> orphans;     // the countdowns after this pass
    std::map<ServiceAddress, std::string> pins;   // pins after this pass (pins of gone hosts dropped)
    std::vector<std::string> notes;               // things reported, not acted on
};

}  // namespace rais
