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
#pragma once

#include "core/model.h"
#include "core/random.h"

namespace rais {

Plan plan(const View& view, RandomSource& random);

}  // namespace rais
