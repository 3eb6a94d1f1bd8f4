// The one rule for a service group's name, shared by raisd (parse_config),
// raisctl (-g) and the agent (through `raisd --check-group`), so a name one
// of them accepts is never refused by another.
//
// A group name becomes file names under /run/rais (GROUP.conf, GROUP.pid),
// the log file rais-GROUP.log, the libqb service rais-GROUP and the CPG group
// rais:GROUP: so 1 to 64 of letters, digits, '-', '_' and '.', and not
// starting with '.' (no hidden files, never "." or "..").
#pragma once

#include <string_view>

namespace rais {

bool valid_group_name(std::string_view name);

// The rule in words, for error messages: "letters, digits, '-', '_' and '.',
// at most 64, not starting with '.'".
extern const char* const kGroupNameRule;

}  // namespace rais
