#include "core/view_json.h"

#include <json-glib/json-glib.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <variant>
#include <vector>

#include "core/glib_ptr.h"
#include "core/parameters.h"

namespace rais {

namespace {

// JsonNode is a boxed type, not a GObject, so GObjectPtr cannot own it.
struct JsonNodeDeleter {
    void operator()(JsonNode* n) const { json_node_unref(n); }
};
using JsonNodePtr = std::unique_ptr<JsonNode, JsonNodeDeleter>;

// json_object_get_members() hands over the list but not the strings in it.
struct GListDeleter {
    void operator()(GList* l) const { g_list_free(l); }
};
using GListPtr = std::unique_ptr<GList, GListDeleter>;

// ------------------------------------------------------------------ reading

// Thrown by the reader at the first error and caught in parse_view(): every
// check stays one line, and nothing half-built escapes.
struct Reject {
    ViewError error;
};

std::string json_text(JsonNode* n) {
    GCharPtr s(json_to_string(n, FALSE));
    return s ? s.get() : "";
}

// A whole document can be quoted back as the offending value; keep messages
// readable by shortening what goes into them (the full text stays in .value).
std::string for_message(const std::string& value) {
    constexpr std::size_t kMax = 120;
    if (value.size() <= kMax) return value;
    return value.substr(0, kMax) + "...";
}

[[noreturn]] void reject(const std::string& field, const std::string& value, const std::string& what) {
    // An empty field is the document itself.
    std::string msg = (field.empty() ? std::string("view") : field) + ": " + what;
    if (!value.empty()) msg += ", got " + for_message(value);
    throw Reject{{field, value, msg}};
}

[[noreturn]] void reject(const std::string& field, JsonNode* value, const std::string& what) {
    reject(field, json_text(value), what);
}

[[noreturn]] void missing(const std::string& field, const std::string& what) {
    throw Reject{{field, "", field + ": missing (expected " + what + ")"}};
}

std::string join(const std::string& prefix, const std::string& key) {
    return prefix.empty() ? key : prefix + "." + key;
}

std::string index(const std::string& prefix, guint i) { return prefix + "[" + std::to_string(i) + "]"; }

// Member names in document order: errors then name the first offender as a
// reader scanning the file would find it, and addresses keep their order.
std::vector<std::string> member_names(JsonObject* o) {
    GListPtr list(json_object_get_members(o));
    std::vector<std::string> out;
    for (GList* l = list.get(); l; l = l->next) out.emplace_back(static_cast<const char*>(l->data));
    return out;
}

// Strict keys: a misspelt optional key would otherwise silently mean its
// default, which is exactly the kind of what-if a user would not notice.
void only_keys(JsonObject* o, const std::string& prefix, std::initializer_list<const char*> allowed) {
    for (const auto& name : member_names(o)) {
        bool known = false;
        for (const char* a : allowed) known = known || name == a;
        if (!known) reject(join(prefix, name), json_object_get_member(o, name.c_str()), "unknown key");
    }
}

bool is_value(JsonNode* n, GType t) {
    return JSON_NODE_TYPE(n) == JSON_NODE_VALUE && json_node_get_value_type(n) == t;
}

bool is_number(JsonNode* n) { return is_value(n, G_TYPE_INT64) || is_value(n, G_TYPE_DOUBLE); }

JsonObject* want_object(JsonNode* n, const std::string& field) {
    if (!JSON_NODE_HOLDS_OBJECT(n)) reject(field, n, "expected an object");
    return json_node_get_object(n);
}

JsonArray* want_array(JsonNode* n, const std::string& field) {
    if (!JSON_NODE_HOLDS_ARRAY(n)) reject(field, n, "expected an array");
    return json_node_get_array(n);
}

std::string want_string(JsonNode* n, const std::string& field, const char* what = "a string") {
    if (!is_value(n, G_TYPE_STRING)) reject(field, n, std::string("expected ") + what);
    return json_node_get_string(n);
}

std::string want_name(JsonNode* n, const std::string& field) {
    std::string s = want_string(n, field, "a node name");
    if (s.empty()) reject(field, n, "expected a node name");
    return s;
}

bool want_bool(JsonNode* n, const std::string& field) {
    if (!is_value(n, G_TYPE_BOOLEAN)) reject(field, n, "expected true or false");
    return json_node_get_boolean(n);
}

// json-glib reads 1e999 as infinity, which no time or load can be.
double want_number(JsonNode* n, const std::string& field, bool non_negative) {
    const char* what = non_negative ? "expected a number >= 0" : "expected a number";
    if (!is_number(n)) reject(field, n, what);
    double d = json_node_get_double(n);
    if (!std::isfinite(d)) reject(field, n, "number out of range");
    if (non_negative && d < 0) reject(field, n, what);
    return d;
}

std::uint32_t want_id(JsonNode* n, const std::string& field) {
    const char* what = "expected a positive integer";
    if (!is_value(n, G_TYPE_INT64)) reject(field, n, what);
    gint64 v = json_node_get_int(n);
    if (v < 1 || v > G_MAXUINT32) reject(field, n, what);
    return static_cast<std::uint32_t>(v);
}

ServiceAddress want_address(JsonNode* n, const std::string& field) {
    std::string text = want_string(n, field, "an address string ADDRESS/PREFIX");
    std::string why;
    auto a = ServiceAddress::parse(text, &why);
    if (!a) reject(field, n, "not an address (" + why + ")");
    return *a;
}

JsonNode* member(JsonObject* o, const char* key) {
    return json_object_has_member(o, key) ? json_object_get_member(o, key) : nullptr;
}

// The JSON value of a configuration key as the text the agent would have
// passed, so parse_config() judges it exactly as it judges the agent's.
std::string config_value(JsonNode* n, const std::string& field) {
    if (is_value(n, G_TYPE_STRING)) return json_node_get_string(n);
    if (is_value(n, G_TYPE_BOOLEAN)) return json_node_get_boolean(n) ? "true" : "false";
    if (is_value(n, G_TYPE_INT64)) return std::to_string(json_node_get_int(n));
    if (is_value(n, G_TYPE_DOUBLE)) {
        // Shortest text that reads back to the same double.
        gchar buf[G_ASCII_DTOSTR_BUF_SIZE];
        return g_ascii_dtostr(buf, sizeof buf, json_node_get_double(n));
    }
    reject(field, n, "expected a string, number or boolean");
}

// parse_config() words its errors for an agent parameter ("parameter 'K':
// WHAT (value 'V')"); in a view the field and the JSON value say that
// already, so keep only WHAT when the message has that shape.
std::string config_what(const ConfigError& e) {
    const std::string head = "parameter '" + e.key + "': ";
    const std::string tail = " (value '" + e.value + "')";
    const std::string& m = e.message;
    if (m.size() >= head.size() + tail.size() && m.compare(0, head.size(), head) == 0 &&
        m.compare(m.size() - tail.size(), tail.size(), tail) == 0)
        return m.substr(head.size(), m.size() - head.size() - tail.size());
    return m;
}

struct AddressEntry {
    std::string field;     // config.addresses.NODE or config.addresses.NODE[i]
    JsonNode* node;        // the JSON string, for quoting
    ServiceAddress address;
};

// config.addresses -> the agent's "NODE=ADDR ..." text, in document order.
// Each entry goes through parse_addresses() on its own so an error names the
// exact entry; duplicates across entries are caught here for the same reason.
std::string read_addresses(JsonNode* n, const std::string& field) {
    JsonObject* o = want_object(n, field);
    std::string text;
    std::vector<AddressEntry> seen;
    for (const auto& node : member_names(o)) {
        const std::string nfield = field + "." + node;
        JsonNode* v = json_object_get_member(o, node.c_str());
        std::vector<std::pair<std::string, JsonNode*>> items;
        if (JSON_NODE_HOLDS_ARRAY(v)) {
            JsonArray* arr = json_node_get_array(v);
            for (guint i = 0; i < json_array_get_length(arr); i++)
                items.emplace_back(index(nfield, i), json_array_get_element(arr, i));
        } else if (is_value(v, G_TYPE_STRING)) {
            items.emplace_back(nfield, v);
        } else {
            reject(nfield, v, "expected an address string or an array of them");
        }
        // The agent's syntax splits on blanks and '=': such a name could not
        // be written there, and would be misread here.
        if (node.empty() || node.find_first_of(" \t\n\r\v\f=") != std::string::npos)
            reject(nfield, v, "'" + node + "' is not a valid cluster node name");
        for (const auto& [ifield, inode] : items) {
            std::string addr = want_string(inode, ifield, "an address string ADDRESS/PREFIX");
            if (addr.find_first_of(" \t\n\r\v\f") != std::string::npos)
                reject(ifield, inode, "expected one ADDRESS/PREFIX");
            std::string word = node + "=" + addr;
            std::vector<PreferredAddress> one;
            if (auto e = parse_addresses(word, &one)) reject(ifield, inode, config_what(*e));
            for (const auto& s : seen)
                if (s.address == one.front().address)
                    reject(ifield, inode, "address " + s.address.ip() + " is listed more than once (also " +
                                              s.field + ")");
            seen.push_back({ifield, inode, one.front().address});
            text += (text.empty() ? "" : " ") + word;
        }
    }
    return text;
}

GroupConfig read_config(JsonNode* n) {
    JsonObject* o = want_object(n, "config");
    std::vector<std::pair<std::string, std::string>> pairs;
    for (const auto& key : member_names(o)) {
        JsonNode* v = json_object_get_member(o, key.c_str());
        const ParamSpec* p = find_param(key);
        if (!p) reject("config." + key, v, "unknown key (not a parameter of the agent)");
        bool addresses = std::holds_alternative<std::vector<PreferredAddress> GroupConfig::*>(p->field);
        pairs.emplace_back(key, addresses ? read_addresses(v, "config." + key) : config_value(v, "config." + key));
    }
    for (const auto& p : parameters())
        if (p.required && !json_object_has_member(o, p.name))
            missing(std::string("config.") + p.name, "an object mapping each node to its address or addresses");
    GroupConfig c;
    if (auto e = parse_config(pairs, &c)) {
        const std::string field = "config." + e->key;
        JsonNode* v = member(o, e->key.c_str());
        reject(field, v ? json_text(v) : std::string(), config_what(*e));
    }
    return c;
}

Holding read_holding(JsonNode* n, const std::string& field) {
    JsonObject* o = want_object(n, field);
    only_keys(o, field, {"address", "state"});
    Holding h;
    JsonNode* a = member(o, "address");
    if (!a) missing(field + ".address", "an address string ADDRESS/PREFIX");
    h.address = want_address(a, field + ".address");
    if (JsonNode* s = member(o, "state")) {
        std::string st = want_string(s, field + ".state", "acquiring, online or releasing");
        if (st == "acquiring") h.state = AddressState::Acquiring;
        else if (st == "online") h.state = AddressState::Online;
        else if (st == "releasing") h.state = AddressState::Releasing;
        else reject(field + ".state", s, "expected acquiring, online or releasing");
    }
    return h;
}

HostView read_host(JsonNode* n, const std::string& field) {
    JsonObject* o = want_object(n, field);
    only_keys(o, field, {"node", "id", "ok", "quiesced", "load", "capacity", "serving", "stopping",
                         "config_match", "departed", "departed_why"});
    HostView h;
    JsonNode* v = member(o, "node");
    if (!v) missing(field + ".node", "a node name");
    h.node = want_name(v, field + ".node");
    if (!(v = member(o, "id"))) missing(field + ".id", "a positive integer");
    h.id = want_id(v, field + ".id");
    if ((v = member(o, "ok"))) h.ok = want_bool(v, field + ".ok");
    if ((v = member(o, "quiesced"))) h.quiesced = want_bool(v, field + ".quiesced");
    if ((v = member(o, "stopping"))) h.stopping = want_bool(v, field + ".stopping");
    if ((v = member(o, "config_match"))) h.config_match = want_bool(v, field + ".config_match");
    if ((v = member(o, "departed"))) h.departed = want_bool(v, field + ".departed");
    if ((v = member(o, "departed_why"))) h.departed_why = want_string(v, field + ".departed_why");
    if ((v = member(o, "load"))) h.load = want_number(v, field + ".load", true);
    if ((v = member(o, "capacity"))) h.capacity = want_number(v, field + ".capacity", true);
    if ((v = member(o, "serving"))) {
        const std::string sfield = field + ".serving";
        JsonArray* arr = want_array(v, sfield);
        std::map<ServiceAddress, guint> first;
        for (guint i = 0; i < json_array_get_length(arr); i++) {
            const std::string ifield = index(sfield, i);
            Holding held = read_holding(json_array_get_element(arr, i), ifield);
            auto [it, fresh] = first.emplace(held.address, i);
            if (!fresh)
                reject(ifield + ".address", json_object_get_member(json_array_get_object_element(arr, i), "address"),
                       "address listed twice for this host (also " + index(sfield, it->second) + ")");
            h.serving.push_back(held);
        }
    }
    return h;
}

std::vector<HostView> read_hosts(JsonNode* n) {
    JsonArray* arr = want_array(n, "hosts");
    std::vector<HostView> hosts;
    std::map<std::string, guint> names;
    std::map<std::uint32_t, guint> ids;
    for (guint i = 0; i < json_array_get_length(arr); i++) {
        const std::string field = index("hosts", i);
        HostView h = read_host(json_array_get_element(arr, i), field);
        JsonObject* o = json_array_get_object_element(arr, i);
        if (auto [it, fresh] = names.emplace(h.node, i); !fresh)
            reject(field + ".node", json_object_get_member(o, "node"),
                   "duplicate node name (also " + index("hosts", it->second) + ")");
        if (auto [it, fresh] = ids.emplace(h.id, i); !fresh)
            reject(field + ".id", json_object_get_member(o, "id"),
                   "duplicate node id (also " + index("hosts", it->second) + ")");
        hosts.push_back(std::move(h));
    }
    return hosts;
}

// orphans[] and pins[] share a shape: {address, KEY}, one entry per address.
template <typename Value, typename ReadValue>
std::map<ServiceAddress, Value> read_address_table(JsonNode* n, const char* name, const char* key,
                                                   const char* expected, ReadValue read_value) {
    JsonArray* arr = want_array(n, name);
    std::map<ServiceAddress, Value> out;
    std::map<ServiceAddress, guint> first;
    for (guint i = 0; i < json_array_get_length(arr); i++) {
        const std::string field = index(name, i);
        JsonObject* o = want_object(json_array_get_element(arr, i), field);
        only_keys(o, field, {"address", key});
        JsonNode* a = member(o, "address");
        if (!a) missing(field + ".address", "an address string ADDRESS/PREFIX");
        ServiceAddress addr = want_address(a, field + ".address");
        JsonNode* v = member(o, key);
        if (!v) missing(join(field, key), expected);
        Value value = read_value(v, join(field, key));
        if (auto [it, fresh] = first.emplace(addr, i); !fresh)
            reject(field + ".address", a, "address listed twice (also " + index(name, it->second) + ")");
        out.emplace(addr, value);
    }
    return out;
}

View read_view(JsonNode* root) {
    JsonObject* o = want_object(root, "");
    only_keys(o, "", {"config", "now", "hosts", "orphans", "pins", "status"});
    View v;
    JsonNode* n = member(o, "config");
    if (!n) missing("config", "an object with at least \"addresses\"");
    v.config = read_config(n);
    if ((n = member(o, "now"))) v.now = want_number(n, "now", false);
    if (!(n = member(o, "hosts"))) missing("hosts", "an array of hosts");
    v.hosts = read_hosts(n);
    if ((n = member(o, "orphans")))
        v.orphans = read_address_table<double>(n, "orphans", "since", "a number",
                                               [](JsonNode* x, const std::string& f) { return want_number(x, f, false); });
    if ((n = member(o, "pins")))
        v.pins = read_address_table<std::string>(n, "pins", "node", "a node name", want_name);
    return v;
}

// ------------------------------------------------------------------ writing

// Whole numbers are written as JSON integers: "load": 10, not 10.0, and
// parse_view reads both.
void add_number(JsonBuilder* b, double v) {
    if (std::isfinite(v) && v == std::trunc(v) && std::fabs(v) < 9007199254740992.0)
        json_builder_add_int_value(b, static_cast<gint64>(v));
    else
        json_builder_add_double_value(b, v);
}

void add_member(JsonBuilder* b, const char* key, const std::string& s) {
    json_builder_set_member_name(b, key);
    json_builder_add_string_value(b, s.c_str());
}

void add_member(JsonBuilder* b, const char* key, const char* s) {
    json_builder_set_member_name(b, key);
    json_builder_add_string_value(b, s);
}

void add_member(JsonBuilder* b, const char* key, bool v) {
    json_builder_set_member_name(b, key);
    json_builder_add_boolean_value(b, v);
}

void add_member(JsonBuilder* b, const char* key, double v) {
    json_builder_set_member_name(b, key);
    add_number(b, v);
}

void add_member(JsonBuilder* b, const char* key, unsigned v) {
    json_builder_set_member_name(b, key);
    json_builder_add_int_value(b, v);
}

std::string join_words(const std::vector<std::string>& words) {
    std::string s;
    for (const auto& w : words) s += (s.empty() ? "" : " ") + w;
    return s;
}

void add_addresses(JsonBuilder* b, const char* key, const std::vector<PreferredAddress>& addresses) {
    // One JSON member per node: a node's addresses come out together, in
    // their configured order (nodes in order of first appearance).
    json_builder_set_member_name(b, key);
    json_builder_begin_object(b);
    std::vector<std::string> nodes;
    for (const auto& p : addresses) {
        bool known = false;
        for (const auto& n : nodes) known = known || n == p.node;
        if (!known) nodes.push_back(p.node);
    }
    for (const auto& node : nodes) {
        json_builder_set_member_name(b, node.c_str());
        std::vector<std::string> mine;
        for (const auto& p : addresses)
            if (p.node == node) mine.push_back(p.address.str());
        if (mine.size() == 1) {
            json_builder_add_string_value(b, mine.front().c_str());
        } else {
            json_builder_begin_array(b);
            for (const auto& a : mine) json_builder_add_string_value(b, a.c_str());
            json_builder_end_array(b);
        }
    }
    json_builder_end_object(b);
}

// Writes the parameters the table marks view_always (as the documented
// example has them), every other one only where it differs from its default,
// so a view reads back equal without repeating the defaults. Node-local keys
// too: the planner ignores them, but a view must read back equal.
void add_config(JsonBuilder* b, const GroupConfig& c) {
    const ParamSet changed = c.diff(GroupConfig());
    json_builder_begin_object(b);
    for (Scope scope : {Scope::Group, Scope::Node})
    for (const auto& p : parameters()) {
        if (p.scope != scope || (!p.view_always && !changed.has(p.id))) continue;
        const char* key = p.name;
        std::visit(Overload{
                       [&](std::vector<PreferredAddress> GroupConfig::*f) { add_addresses(b, key, c.*f); },
                       [&](std::vector<std::string> GroupConfig::*f) { add_member(b, key, join_words(c.*f)); },
                       [&](std::optional<double> GroupConfig::*f) {
                           if (c.*f) add_member(b, key, *(c.*f));
                       },
                       [&](Fencing GroupConfig::*f) { add_member(b, key, to_string(c.*f)); },
                       [&](Placement GroupConfig::*f) { add_member(b, key, to_string(c.*f)); },
                       [&](auto f) { add_member(b, key, c.*f); },
                   },
                   p.field);
    }
    json_builder_end_object(b);
}

void add_host(JsonBuilder* b, const HostView& h) {
    json_builder_begin_object(b);
    add_member(b, "node", h.node);
    json_builder_set_member_name(b, "id");
    json_builder_add_int_value(b, h.id);
    add_member(b, "ok", h.ok);
    add_member(b, "quiesced", h.quiesced);
    add_member(b, "load", h.load);
    add_member(b, "capacity", h.capacity);
    json_builder_set_member_name(b, "serving");
    json_builder_begin_array(b);
    for (const auto& s : h.serving) {
        json_builder_begin_object(b);
        add_member(b, "address", s.address.str());
        add_member(b, "state", to_string(s.state));
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    // Extensions only when they say something, so the documented shape stays
    // what users see in the common case.
    if (h.stopping) add_member(b, "stopping", true);
    if (!h.config_match) add_member(b, "config_match", false);
    if (h.departed) add_member(b, "departed", true);
    if (!h.departed_why.empty()) add_member(b, "departed_why", h.departed_why);
    json_builder_end_object(b);
}

std::string generate(JsonNode* root, bool pretty) {
    GObjectPtr<JsonGenerator> gen(json_generator_new());
    json_generator_set_pretty(gen.get(), pretty);
    if (pretty) json_generator_set_indent(gen.get(), 2);
    json_generator_set_root(gen.get(), root);  // copies root
    GCharPtr text(json_generator_to_data(gen.get(), nullptr));
    return text.get();
}

// One JSON string literal, escaped by json-glib's generator (quotes,
// backslashes, control characters, so a reason never breaks the line).
std::string json_string(const std::string& s) {
    JsonNodePtr n(json_node_alloc());
    json_node_init_string(n.get(), s.c_str());
    return generate(n.get(), false);
}

}  // namespace

std::optional<ViewError> parse_view(const std::string& json_text_in, View* out) {
    GObjectPtr<JsonParser> parser(json_parser_new());
    GError* raw = nullptr;
    if (!json_parser_load_from_data(parser.get(), json_text_in.data(), static_cast<gssize>(json_text_in.size()),
                                    &raw)) {
        GErrorPtr err(raw);
        return ViewError{"", "", std::string("not valid JSON: ") + (err ? err->message : "unknown error")};
    }
    JsonNode* root = json_parser_get_root(parser.get());  // owned by the parser
    if (!root) return ViewError{"", "", "not valid JSON: the input is empty"};
    try {
        View v = read_view(root);
        *out = std::move(v);
    } catch (const Reject& r) {
        return r.error;
    }
    return std::nullopt;
}

void add_view_members(JsonBuilder* b, const View& v) {
    json_builder_set_member_name(b, "config");
    add_config(b, v.config);
    add_member(b, "now", v.now);

    json_builder_set_member_name(b, "hosts");
    json_builder_begin_array(b);
    for (const auto& h : v.hosts) add_host(b, h);
    json_builder_end_array(b);

    json_builder_set_member_name(b, "orphans");
    json_builder_begin_array(b);
    for (const auto& [addr, since] : v.orphans) {
        json_builder_begin_object(b);
        add_member(b, "address", addr.str());
        add_member(b, "since", since);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);

    if (!v.pins.empty()) {
        json_builder_set_member_name(b, "pins");
        json_builder_begin_array(b);
        for (const auto& [addr, node] : v.pins) {
            json_builder_begin_object(b);
            add_member(b, "address", addr.str());
            add_member(b, "node", node);
            json_builder_end_object(b);
        }
        json_builder_end_array(b);
    }
}

std::string view_to_json(const View& v) {
    GObjectPtr<JsonBuilder> b(json_builder_new());
    json_builder_begin_object(b.get());
    add_view_members(b.get(), v);
    json_builder_end_object(b.get());
    JsonNodePtr root(json_builder_get_root(b.get()));
    return generate(root.get(), true) + "\n";
}

// Built from json-glib literals rather than one generated object so the keys
// keep their documented order and spacing ({"action": ..., "address": ...}),
// which json-glib's compact generator would not give.
std::string decision_to_json(const Decision& d) {
    std::string s = "{\"action\": " + json_string(to_string(d.action));
    s += ", \"address\": " + json_string(d.address.str());
    s += ", \"node\": ";
    s += d.action == Action::CannotAssign || d.node.empty() ? "null" : json_string(d.node);
    s += ", \"reason\": " + json_string(d.reason);
    if (d.handover) s += ", \"handover\": true";
    return s + "}";
}

}  // namespace rais
