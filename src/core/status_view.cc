#include "core/status_view.h"

#include <json-glib/json-glib.h>

#include <memory>

#include "core/dns_plan.h"
#include "core/glib_ptr.h"
#include "core/parameters.h"
#include "core/text.h"
#include "core/view_json.h"

namespace rais {

namespace {

struct JsonNodeDeleter {
    void operator()(JsonNode* n) const { json_node_unref(n); }
};
using JsonNodePtr = std::unique_ptr<JsonNode, JsonNodeDeleter>;

// A peer's role as status names it (the text shows the last three only for
// counted, live peers, where the first two cannot apply).
const char* role_of(const PeerStatus& p, const MemberStatus& st, const GroupConfig& cfg) {
    return p.departed                     ? "departed"
           : !p.counted                   ? "not counted"
           : p.process.node == st.leader  ? "leader"
           : cfg.is_spare(p.name)         ? "spare"
                                          : "member";
}

std::string leader_or_none(const MemberStatus& st) { return st.leader_name.empty() ? "none" : st.leader_name; }

std::string peer_line(const PeerStatus& p, const MemberStatus& st, const GroupConfig& cfg) {
    if (p.departed) return "departed: " + p.departed_why;
    if (!p.counted) return "not counted (sent no Info)";
    std::string flags = role_of(p, st, cfg);
    flags += p.host.ok ? ", ok"
             : p.process.node == st.self.node && !st.failing_test.empty() ? ", FAILED tests: " + st.failing_test
                                                                        : ", FAILED tests";
    if (p.host.quiesced) flags += ", quiesced";
    if (p.host.stopping) flags += ", stopping";
    if (p.silent) flags += ", silent";
    if (!p.host.config_match) flags += ", DIFFERENT CONFIGURATION";
    return flags + ", util " + format_number("%.1f%%", p.host.utilization());
}

std::string address_line(const PreferredAddress& pa, const StatusInput& in) {
    const MemberStatus& st = in.member;
    const View& v = in.view;
    std::string holders;
    auto fixed = st.fixed_holders.find(pa.address);
    if (fixed != st.fixed_holders.end()) holders = fixed->second + " (fixed: configured statically, left alone)";
    for (const auto& h : v.hosts)
        if (const Holding* x = h.holding(pa.address))
            holders += (holders.empty() ? "" : ", ") + h.node +
                       (x->state == AddressState::Online ? "" : std::string(" (") + to_string(x->state) + ")");
    std::string o = pa.address.str() + " -> " + (holders.empty() ? "UNSERVED" : holders) + "  [prefers " + pa.node;
    if (auto o_it = v.orphans.find(pa.address); o_it != v.orphans.end())
        o += ", orphaned " + format_number("%.0f s ago", in.now - o_it->second);
    if (auto p_it = v.pins.find(pa.address); p_it != v.pins.end()) o += ", pinned to " + p_it->second;
    if (st.cannot_assign.count(pa.address)) o += ", cannot assign";
    return o + "]";
}

// ------------------------------------------------------------------ JSON

void member(JsonBuilder* b, const char* key, const std::string& s) {
    json_builder_set_member_name(b, key);
    json_builder_add_string_value(b, s.c_str());
}
void member(JsonBuilder* b, const char* key, const char* s) {
    json_builder_set_member_name(b, key);
    json_builder_add_string_value(b, s);
}
void member(JsonBuilder* b, const char* key, bool v) {
    json_builder_set_member_name(b, key);
    json_builder_add_boolean_value(b, v);
}
void member(JsonBuilder* b, const char* key, double v) {   // always a JSON double: "utilization": 20.0
    json_builder_set_member_name(b, key);
    json_builder_add_double_value(b, v);
}
void member(JsonBuilder* b, const char* key, std::int64_t v) {
    json_builder_set_member_name(b, key);
    json_builder_add_int_value(b, v);
}

void add_members(JsonBuilder* b, const MemberStatus& st, const GroupConfig& cfg) {
    json_builder_set_member_name(b, "members");
    json_builder_begin_array(b);
    for (const auto& p : st.peers) {
        json_builder_begin_object(b);
        member(b, "node", p.name);
        member(b, "id", std::int64_t{p.process.node});
        member(b, "pid", std::int64_t{p.process.pid});
        member(b, "role", role_of(p, st, cfg));
        member(b, "silent", p.silent);
        member(b, "ok", p.host.ok);
        member(b, "quiesced", p.host.quiesced);
        member(b, "utilization", p.host.utilization());
        if (p.departed) member(b, "why", p.departed_why);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
}

// "last_failover": the breakdown of the last failover this host took part
// in; each step in ms after the departure confchg, null when it did not
// happen here.
void add_failover(JsonBuilder* b, const FailoverBreakdown& f) {
    json_builder_set_member_name(b, "last_failover");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "departed");
    json_builder_begin_array(b);
    for (const auto& d : f.departed) json_builder_add_string_value(b, d.c_str());
    json_builder_end_array(b);
    member(b, "ring", static_cast<std::int64_t>(f.ring));
    member(b, "addresses", static_cast<std::int64_t>(f.addresses));
    member(b, "failed", static_cast<std::int64_t>(f.failed));
    member(b, "complete", f.complete);
    json_builder_set_member_name(b, "ms");
    json_builder_begin_object(b);
    auto ms = [b](const char* key, const std::optional<double>& v) {
        json_builder_set_member_name(b, key);
        if (v) json_builder_add_double_value(b, *v);
        else json_builder_add_null_value(b);
    };
    for (std::size_t i = 0; i < kFailoverSteps; ++i) ms(key_of(static_cast<FailoverStep>(i)), f.at[i]);
    ms("first_announced", f.first_announced);
    ms("first_done", f.first_done);
    json_builder_end_object(b);
    json_builder_end_object(b);
}

// The "status" object: what the view does not say.
void add_status(JsonBuilder* b, const StatusInput& in) {
    const MemberStatus& st = in.member;
    const GroupConfig& cfg = in.config;
    json_builder_begin_object(b);
    member(b, name(Param::Group), st.group);
    member(b, "node", st.name);
    member(b, "node_id", std::int64_t{st.self.node});
    member(b, "leader", st.leader_name);
    member(b, "quorate", st.quorate);
    member(b, "ring", static_cast<std::int64_t>(st.ring));
    member(b, name(Param::Interval), std::int64_t{cfg.interval_ms});
    member(b, "ok", st.ok);
    if (!st.ok) member(b, "failing_test", st.failing_test);
    member(b, "utilization", st.load * 100.0 / (st.capacity > 0 ? st.capacity : 100.0));
    member(b, "quiesced", st.quiesced);
    member(b, "stopping", st.stopping);
    member(b, "settled", st.settled);
    member(b, "fencing", st.fencing_active);
    member(b, "dropped_messages", static_cast<std::int64_t>(st.dropped_messages));
    member(b, "unsent_messages", static_cast<std::int64_t>(st.unsent_messages));
    member(b, "two_node", st.two_node);
    json_builder_set_member_name(b, "fixed");   // address -> the node holding it statically (rule 4.10)
    json_builder_begin_object(b);
    for (const auto& [a, node] : st.fixed_holders) member(b, a.str().c_str(), node);
    json_builder_end_object(b);
    json_builder_set_member_name(b, "reload");   // reload-agent compares attempts before and after its SIGHUP
    json_builder_begin_object(b);
    member(b, "attempts", static_cast<std::int64_t>(in.shell.reload_attempts));
    member(b, "generation", static_cast<std::int64_t>(in.shell.config_generation));
    member(b, "digest", cfg.digest());
    member(b, "error", in.shell.reload_error);
    json_builder_end_object(b);
    add_members(b, st, cfg);
    json_builder_set_member_name(b, "cannot_assign");
    json_builder_begin_array(b);
    for (const auto& a : st.cannot_assign) json_builder_add_string_value(b, a.str().c_str());
    json_builder_end_array(b);
    if (!cfg.dns_server.empty()) {
        json_builder_set_member_name(b, "dns");
        json_builder_begin_object(b);
        member(b, "server", cfg.dns_server);
        member(b, "name", cfg.dns_owner() + "." + cfg.dns_zone);
        member(b, "writer", st.dns);
        json_builder_set_member_name(b, "advertised");
        json_builder_begin_array(b);
        for (const auto& a : st.dns_wanted) json_builder_add_string_value(b, a.ip().c_str());
        json_builder_end_array(b);
        member(b, "last", in.shell.dns_last);
        json_builder_end_object(b);
    }
    if (!in.shell.quiesce_error.empty()) member(b, "quiesce_error", in.shell.quiesce_error);
    if (in.shell.last_failover) add_failover(b, *in.shell.last_failover);
    json_builder_end_object(b);
}

std::string generate(JsonBuilder* b, bool pretty) {
    JsonNodePtr root(json_builder_get_root(b));
    GObjectPtr<JsonGenerator> gen(json_generator_new());
    json_generator_set_pretty(gen.get(), pretty);
    if (pretty) json_generator_set_indent(gen.get(), 2);
    json_generator_set_root(gen.get(), root.get());
    GCharPtr text(json_generator_to_data(gen.get(), nullptr));
    return text.get();
}

}  // namespace

std::string status_text(const StatusInput& in) {
    const MemberStatus& st = in.member;
    const GroupConfig& cfg = in.config;
    std::string o;
    o += "group " + st.group + " on " + st.name + " (node " + std::to_string(st.self.node) + ")\n";
    o += "  leader: " + leader_or_none(st) + "; " +
         (st.quorate ? "quorate" : st.quorum_known ? "NOT quorate" : "quorum unknown") + " (ring " +
         std::to_string(st.ring) + ")\n";
    o += std::string("  fencing: ") + (st.fencing_active ? "on (departed hosts wait for a fence confirmation)" : "off") +
         "; this host " + (st.settled ? "settled" : st.stopping ? "stopping" : "settling") + "\n";
    o += "  hosts:\n";
    for (const auto& p : st.peers)
        o += "    " + p.name + " (id " + std::to_string(p.process.node) + "): " + peer_line(p, st, cfg) + "\n";
    o += "  addresses:\n";
    for (const auto& pa : cfg.addresses) o += "    " + address_line(pa, in) + "\n";
    if (!cfg.dns_server.empty()) {
        o += "  dns: " + cfg.dns_owner() + "." + cfg.dns_zone + " at " + cfg.dns_server;
        if (st.dns) {
            o += ": advertising " + dns_list(st.dns_wanted) + "\n";
            o += "       last: " + (in.shell.dns_last.empty() ? std::string("nothing sent yet") : in.shell.dns_last) + "\n";
        } else {
            o += " (written by the leader, " + leader_or_none(st) + ")\n";
        }
    }
    if (st.dropped_messages) o += "  dropped messages: " + std::to_string(st.dropped_messages) + "\n";
    if (st.unsent_messages)
        o += "  unsent messages: " + std::to_string(st.unsent_messages) +
             " (peers would have dropped them: a bug, see the log)\n";
    if (!in.shell.reload_error.empty()) o += "  last reload REFUSED: " + in.shell.reload_error + "\n";
    if (!in.shell.quiesce_error.empty()) o += "  quiesce flag NOT saved: " + in.shell.quiesce_error + "\n";
    if (in.shell.last_failover)
        o += "  last failover: " + in.shell.last_failover->line().substr(std::string("failover breakdown: ").size()) +
             " (ms after the departure confchg)\n";
    return o;
}

std::string status_json(const StatusInput& in) {
    // The view exactly as `raisctl plan --view` reads it, then the "status"
    // member: one object, built once.
    GObjectPtr<JsonBuilder> b(json_builder_new());
    json_builder_begin_object(b.get());
    add_view_members(b.get(), in.view);
    json_builder_set_member_name(b.get(), "status");
    add_status(b.get(), in);
    json_builder_end_object(b.get());
    return generate(b.get(), true) + "\n";
}

std::string events_text(const std::deque<LoggedEvent>& events, const WallFormat& wall_time) {
    std::string o;
    for (const auto& le : events) {
        const Event& e = le.event;
        o += wall_time(le.wall_us) + " " + to_string(e.kind) + " " + (e.node.empty() ? "-" : e.node) + " " +
             (e.address ? e.address->str() : "-") + ": " + e.reason + "\n";
    }
    return o;
}

std::string events_json(const std::deque<LoggedEvent>& events) {
    GObjectPtr<JsonBuilder> b(json_builder_new());
    json_builder_begin_array(b.get());
    for (const auto& le : events) {
        const Event& e = le.event;
        json_builder_begin_object(b.get());
        member(b.get(), "time", static_cast<double>(le.wall_us) / 1e6);
        member(b.get(), "event", to_string(e.kind));
        member(b.get(), "group", e.group);
        member(b.get(), "node", e.node);
        json_builder_set_member_name(b.get(), "address");
        if (e.address) json_builder_add_string_value(b.get(), e.address->str().c_str());
        else json_builder_add_null_value(b.get());
        member(b.get(), "reason", e.reason);
        json_builder_end_object(b.get());
    }
    json_builder_end_array(b.get());
    return generate(b.get(), false) + "\n";
}

}  // namespace rais
