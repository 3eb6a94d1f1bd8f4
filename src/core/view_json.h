// ViewJson: the JSON form of a View (DESIGN §5.2, the input of `raisctl plan
// --view` and part of `raisctl status --json`) and of Decisions (one JSON
// object a line). Parsing and printing only, with json-glib; no I/O.
//
// parse_view() accepts exactly the documented shape plus the documented
// extensions (host "stopping", "config_match", "departed"; top-level "pins";
// and "status", which `raisctl status --json` adds and this ignores;
// config keys as in the agent's parameters) and rejects anything else with
// an error naming the field (a JSON path such as hosts[1].id) and quoting
// the offending value. On error *out is left untouched.
#pragma once

#include <optional>
#include <string>

#include "core/model.h"

typedef struct _JsonBuilder JsonBuilder;

namespace rais {

struct ViewError {
    std::string field;    // e.g. "hosts[1].serving[0].address"
    std::string value;    // the offending value as JSON text (may be empty when missing)
    std::string message;  // a full sentence naming field and value
};

std::optional<ViewError> parse_view(const std::string& json_text, View* out);

// The inverse of parse_view: a pretty-printed JSON document that parse_view
// reads back into an equal View. One caveat of the shape: config.addresses
// has one member per node, so a configuration that interleaves nodes
// ("n1=A n2=B n1=C") reads back grouped by node (A, C, B) and with a
// different digest; configurations grouped by node read back unchanged.
std::string view_to_json(const View& v);

// The members of view_to_json's object (config, now, hosts, orphans, pins),
// added to an object the caller has begun: `status --json` is the view with
// one more member, built in one pass.
void add_view_members(JsonBuilder* b, const View& v);

// One decision as a single-line JSON object:
// {"action": ..., "address": ..., "node": ..., "reason": ...}
// (node is null for cannot_assign; "handover": true is added on handovers).
std::string decision_to_json(const Decision& d);

}  // namespace rais
