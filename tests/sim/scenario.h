// Scenario: a simulator test written as a text file.
//
//   # comment lines
//   nodes n1 n2 n3 n4                  node ids 1.. in order
//   group web addresses="n1=... n2=..." failback=false ...   (agent parameters)
//   option fencing=on auto_fence=2 quorum=after:0.5 detect=0.5 logs=on slow_quorum=n3:2
//   boot n1 n2 n3 n4 | crash n2 | kill n2 [GROUP] | start n2 [GROUP]
//   hang n2 [GROUP] | resume n2 [GROUP] | partition n1 n2 n3 / n4 | heal
//   fence n2 | stop n2 [GROUP] | quiesce n3 [NODE] [GROUP] | unquiesce ...
//   move ADDRESS NODE [via NODE] [GROUP] | unpin ADDRESS [via NODE] [GROUP]
//   fail n2 | recover n2 | load n2 LOAD [CAPACITY] [GROUP]
//   reload n1 [GROUP] key=value...     (a rolling configuration change)
//   outside ADDRESS | stray n2 [GROUP] | garbage n2 [GROUP]
//   forge n2 acquire|release ADDRESS DEST [GROUP]
//                                      a stray client on n2 multicasts a leader
//                                      command naming n2 as the leader
//   forge n2 request KIND FROM TARGET|- [ADDRESS] [GROUP]
//                                      ... a Request (quiesce, unquiesce, move,
//                                      unpin) claiming to come from FROM
//   watch ADDRESS                      start measuring gaps with no holder
//   run SECONDS | show | mark
//   expect holder ADDRESS NODE|none    exactly this holder (kernel view)
//   expect holders ADDRESS NODE...     exactly these holders
//   expect event KIND [@NODE] [WORD...] an event of KIND (by NODE) since the last mark
//                                      whose line contains every WORD
//   expect no-event KIND [@NODE] [WORD...]  no such event since the last mark
//   expect leader NODE [GROUP] | expect maxgap ADDRESS SECONDS
//   expect consistent [GROUP]          every live, running member holds (by its
//                                      own account) exactly the group addresses
//                                      on its node's interface
//   ----
//   expected output (the trace), regenerated with --rewrite
//
// The output is the commands echoed, the events with their reasons, and the
// `show` tables. A scenario passes when every expect holds, the World saw no
// violation of its invariants (world.h), and the output equals the expected
// part.
#pragma once

#include <string>
#include <vector>

namespace raissim {

struct ScenarioResult {
    bool expects_ok = true;
    bool output_ok = true;
    std::vector<std::string> output;
    std::vector<std::string> failures;   // expect failures and parse errors
    std::string expected;                // the part after the separator
};

// Runs the scenario text; `source` names it in error messages. A positive
// `wall_limit` stops it after that many seconds of wall-clock time (a
// failure, like a busy loop).
ScenarioResult run_scenario(const std::string& text, const std::string& source, double wall_limit = 0);

// The text with its expected part replaced by `output`.
std::string rewrite_scenario(const std::string& text, const std::vector<std::string>& output);

}  // namespace raissim
