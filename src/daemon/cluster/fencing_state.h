// FencingState: what the daemon believes about the cluster's fencing, as
// pure functions of what it was told, so the rule "unknown is not off"
// (DESIGN §4 rule 8) is one place and unit-tested.
//
//  - stonith-enabled (fencing=auto): a real answer from the CIB replaces the
//    value; a failed query (CIB busy, Pacemaker restarting, a timeout) keeps
//    the last known value, and before the first real answer the value is
//    unknown, which counts as ON (departures wait for a fence). Only
//    "Pacemaker is not installed" (no crm_attribute to run) means off.
//  - corosync's quorum.two_node: both halves of a two_node split stay
//    quorate, so the Member must know it; unknown counts as two_node.
#pragma once

#include <optional>
#include <string>

#include "core/config.h"
#include "core/member.h"

namespace rais {

enum class StonithAnswer {
    Value,          // the CIB answered; `value` is stonith-enabled
    Failed,         // the query failed or timed out: nothing learnt
    NotInstalled,   // crm_attribute does not exist here: no Pacemaker, no fencing
};

struct StonithState {
    std::optional<bool> enabled;    // nullopt: no answer yet (counts as on)
    std::string detail = "Pacemaker has not answered yet";
};

// The state after one query. A failed query changes only the detail's
// wording ("... (last answer kept)"), never the value.
StonithState next_stonith_state(const StonithState& prev, StonithAnswer answer, bool value, const std::string& detail);

// The mode the Member is fed: fencing=require is on, fencing=off is off,
// fencing=auto follows stonith-enabled with unknown as on. two_node nullopt
// (corosync did not say) counts as true.
in::FencingMode fencing_mode(Fencing configured, const StonithState& stonith, std::optional<bool> two_node);

// quorum { two_node: 1 } in the text of a corosync.conf: true or false when
// the file says (absent means false), nullopt when the text cannot be read
// as corosync's format (unbalanced braces).
std::optional<bool> corosync_conf_two_node(const std::string& text);

}  // namespace rais
