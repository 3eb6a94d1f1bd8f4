// Planner: the leader's planning pass, the patent's Control thread (Fig. 6A/6B
// and its pseudocode for unserved and duplicate addresses) made exact by the
// "Planner precisions" of DESIGN §5.2.
//
// A pure function of a View and a seeded random source. It is stateless and
// idempotent: addresses in transition (acquiring, releasing) are left alone,
// so running it again before earlier decisions took effect decides nothing
// new. Invariants of its output: one pass never both releases and acquires
// the same address; a departed host or one whose configuration digest differs
// is never told anything; every decision carries a reason.
//
// The pass builds the patent's control database (the host table, then who
// claims each address) and applies one function per rule, in this order; the
// first rule that settles an address ends its turn:
//   1. release_unknown          an address outside the group is released (inner loop)
//   2. expire_orphan            orphan countdown; past orphan_timeout, expire
//      in_transition            acquiring or releasing: left alone
//   3. assign_unserved          pin, preferred host, hot spare, other eligible host, or cannot_assign
//   4. hand_over_from_stopping  a stopping holder hands over (make before break) or gives up
//   5. move_to_pin              a manual move: the pinned host acquires (handover)
//   6. settle_duplicates        failback injection, then the duplicate rule
// Placement within a tier (least-loaded or the seeded random pick) is shared
// by rules 3, 4 and 6; random draws happen only there, in address order.
#pragma once

#include "core/model.h"
#include "core/random.h"

namespace rais {

Plan plan(const View& view, RandomSource& random);

}  // namespace rais
