#include "sim/scenario.h"

#include <glib.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <set>
#include <sstream>

#include "core/glib_ptr.h"
#include "core/text.h"
#include "sim/world.h"

namespace raissim {

using namespace rais;

namespace {

const char* kSeparator = "----";

struct StrvDeleter {
    void operator()(gchar** v) const { g_strfreev(v); }
};

// Shell-like word splitting (quotes allowed), with GLib.
bool split(const std::string& line, std::vector<std::string>* out, std::string* err) {
    out->clear();
    gint argc = 0;
    gchar** argv = nullptr;
    GError* e = nullptr;
    if (!g_shell_parse_argv(line.c_str(), &argc, &argv, &e)) {
        GErrorPtr owned(e);
        *err = owned->message;
        return false;
    }
    std::unique_ptr<gchar*, StrvDeleter> owned(argv);
    for (gint i = 0; i < argc; i++) out->push_back(argv[i]);
    return true;
}

std::string fmt(double v) { return format_number("%.3f", v); }

class Runner {
public:
    Runner(const std::string& source, double wall_limit) : source_(source) { opts_.wall_limit = wall_limit; }
    ScenarioResult run(const std::string& commands);

private:
    bool exec(const std::vector<std::string>& w, int lineno);
    void flush_trace();
    void fail(int lineno, const std::string& what) {
        std::string m = source_ + ":" + std::to_string(lineno) + ": " + what;
        result_.failures.push_back(m);
        result_.output.push_back("FAILED: " + what);
        result_.expects_ok = false;
    }
    std::uint32_t node(const std::string& name, int lineno) {
        if (!world_) return 0;
        auto id = world_->node_id(name);
        if (!id) fail(lineno, "unknown node '" + name + "'");
        return id.value_or(0);
    }
    // Optional trailing GROUP argument (defaults to the first group).
    std::string group_arg(const std::vector<std::string>& w, std::size_t i) {
        if (i < w.size()) return w[i];
        return world_ && !world_->groups().empty() ? world_->groups().front() : "";
    }
    std::optional<ServiceAddress> address(const std::string& text, int lineno) {
        std::string why;
        auto a = ServiceAddress::parse(text, &why, false);
        if (!a) fail(lineno, "bad address '" + text + "': " + why);
        return a;
    }
    void show();
    bool ensure_world(int lineno);

    std::string source_;
    ScenarioResult result_;
    std::vector<std::string> node_names_;
    std::vector<GroupConfig> group_cfgs_;
    WorldOptions opts_;
    std::unique_ptr<World> world_;
    std::size_t trace_seen_ = 0;
    std::size_t mark_ = 0;                      // index into output for expect event
};

bool Runner::ensure_world(int lineno) {
    if (world_) return true;
    if (node_names_.empty() || group_cfgs_.empty()) {
        fail(lineno, "declare 'nodes' and at least one 'group' first");
        return false;
    }
    world_ = std::make_unique<World>(1, opts_);
    for (const auto& n : node_names_) world_->add_node(n);
    for (const auto& g : group_cfgs_) world_->add_group(g);
    return true;
}

void Runner::flush_trace() {
    if (!world_) return;
    auto& t = world_->trace();
    for (; trace_seen_ < t.size(); trace_seen_++) result_.output.push_back(t[trace_seen_]);
    for (const auto& v : world_->take_violations()) {
        result_.output.push_back("VIOLATION: " + v);
        result_.failures.push_back(source_ + ": invariant violated: " + v);
        result_.expects_ok = false;
    }
}

void Runner::show() {
    for (const auto& gname : world_->groups()) {
        const GroupConfig* cfg = nullptr;
        for (const auto& g : group_cfgs_)
            if (g.group == gname) cfg = &g;
        std::string leader = "-";
        for (auto id : world_->node_ids()) {
            const Member* m = world_->member(id, gname);
            if (m && world_->quorate(id) && !world_->process_hung(id, gname) && m->is_leader())
                leader = world_->node_name(id);
        }
        result_.output.push_back("  group " + gname + " (leader " + leader + ")");
        for (const auto& p : cfg->addresses) {
            std::string line = "    " + p.address.str() + " (" + p.node + "):";
            auto hs = world_->holders(p.address);
            if (hs.empty()) line += " -";
            for (auto h : hs) {
                line += " " + world_->node_name(h);
                const Member* m = world_->member(h, gname);
                if (m && m->held().count(p.address)) {
                    auto st = m->held().at(p.address);
                    if (st != AddressState::Online) line += std::string("(") + to_string(st) + ")";
                } else {
                    line += "(unowned)";
                }
            }
            result_.output.push_back(line);
        }
        std::string flags;
        for (auto id : world_->node_ids()) {
            std::string f;
            if (!world_->node_up(id)) f = "down";
            else if (!world_->process_alive(id, gname)) f = "no raisd";
            else if (world_->process_hung(id, gname)) f = "hung";
            else {
                auto st = world_->member(id, gname)->status(world_->now());
                if (!world_->quorate(id)) f += "minority,";
                if (!st.ok) f += "failed,";
                if (st.quiesced) f += "quiesced,";
                if (st.stopping) f += "stopping,";
                if (!f.empty()) f.pop_back();
            }
            if (!f.empty()) flags += " " + world_->node_name(id) + "=" + f;
        }
        if (!flags.empty()) result_.output.push_back("    hosts:" + flags);
    }
}

bool Runner::exec(const std::vector<std::string>& w, int lineno) {
    const std::string& cmd = w[0];
    auto need = [&](std::size_t n) {
        if (w.size() >= n) return true;
        fail(lineno, "'" + cmd + "' needs more arguments");
        return false;
    };
    if (cmd == "nodes") {
        for (std::size_t i = 1; i < w.size(); i++) node_names_.push_back(w[i]);
        return true;
    }
    if (cmd == "group") {
        if (!need(3)) return false;
        std::vector<std::pair<std::string, std::string>> kv{{"group", w[1]}};
        for (std::size_t i = 2; i < w.size(); i++) {
            auto eq = w[i].find('=');
            if (eq == std::string::npos) return fail(lineno, "expected key=value, got '" + w[i] + "'"), false;
            kv.emplace_back(w[i].substr(0, eq), w[i].substr(eq + 1));
        }
        GroupConfig cfg;
        if (auto e = parse_config(kv, &cfg)) return fail(lineno, e->message), false;
        group_cfgs_.push_back(cfg);
        return true;
    }
    if (cmd == "option") {
        for (std::size_t i = 1; i < w.size(); i++) {
            auto eq = w[i].find('=');
            std::string k = w[i].substr(0, eq), v = eq == std::string::npos ? "" : w[i].substr(eq + 1);
            if (k == "fencing") opts_.fencing = v == "on";
            else if (k == "auto_fence") opts_.auto_fence = std::stod(v);
            else if (k == "detect") opts_.detect = std::stod(v);
            else if (k == "logs") opts_.trace_logs = v == "on";
            else if (k == "slow_quorum") {
                auto colon = v.find(':');
                if (colon == std::string::npos) return fail(lineno, "slow_quorum=NODE:SECONDS"), false;
                opts_.slow_quorum[v.substr(0, colon)] = std::stod(v.substr(colon + 1));
            }
            else if (k == "quorum") {
                if (v == "before") opts_.quorum_order = QuorumOrder::Before;
                else if (v.rfind("after", 0) == 0) {
                    opts_.quorum_order = QuorumOrder::After;
                    opts_.quorum_delay = v.size() > 6 ? std::stod(v.substr(6)) : 0.0;
                } else return fail(lineno, "quorum=before|after[:DELAY]"), false;
            } else return fail(lineno, "unknown option '" + k + "'"), false;
        }
        if (world_) world_->options() = opts_;
        return true;
    }
    if (!ensure_world(lineno)) return false;
    World& W = *world_;
    result_.output.push_back("> " + [&] {
        std::string s;
        for (const auto& x : w) s += (s.empty() ? "" : " ") + x;
        return s;
    }());

    if (cmd == "run") {
        if (!need(2)) return false;
        W.run_for(std::stod(w[1]));
    } else if (cmd == "boot") {
        for (std::size_t i = 1; i < w.size(); i++)
            if (auto id = node(w[i], lineno)) W.boot(id);
    } else if (cmd == "crash") {
        for (std::size_t i = 1; i < w.size(); i++)
            if (auto id = node(w[i], lineno)) W.crash(id);
    } else if (cmd == "fence") {
        for (std::size_t i = 1; i < w.size(); i++)
            if (auto id = node(w[i], lineno)) W.fence(id);
    } else if (cmd == "kill" || cmd == "start" || cmd == "hang" || cmd == "resume" || cmd == "stray" ||
               cmd == "garbage" || cmd == "stop") {
        if (!need(2)) return false;
        auto id = node(w[1], lineno);
        std::string g = group_arg(w, 2);
        if (!id) return false;
        if (cmd == "kill") W.kill(id, g);
        else if (cmd == "start") W.start(id, g);
        else if (cmd == "hang") W.hang(id, g);
        else if (cmd == "resume") W.resume(id, g);
        else if (cmd == "stray") W.stray(id, g);
        else if (cmd == "garbage") W.garbage(id, g, {'R', 'A', rais::kProtocolVersion, 1, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0xff});
        else W.command(id, g, in::Command{CommandKind::Stop, "", std::nullopt});
    } else if (cmd == "forge") {
        if (!need(3)) return false;
        auto id = node(w[1], lineno);
        if (!id) return false;
        const std::string& kind = w[2];
        if (kind == "acquire" || kind == "release") {
            if (!need(5)) return false;
            auto a = address(w[3], lineno);
            auto dest = node(w[4], lineno);
            if (!a || !dest) return false;
            std::string what = std::string(kind == "acquire" ? "Acquire" : "Release") + " of " + a->str() +
                               " for node " + std::to_string(dest) + " claiming leader node " + std::to_string(id);
            if (kind == "acquire") W.forge(id, group_arg(w, 5), AcquireMsg{id, dest, *a, false, "forged"}, what);
            else W.forge(id, group_arg(w, 5), ReleaseMsg{id, dest, *a, "forged"}, what);
        } else if (kind == "request") {
            if (!need(6)) return false;
            RequestMsg m;
            if (w[3] == "quiesce") m.kind = RequestKind::Quiesce;
            else if (w[3] == "unquiesce") m.kind = RequestKind::Unquiesce;
            else if (w[3] == "move") m.kind = RequestKind::Move;
            else if (w[3] == "unpin") m.kind = RequestKind::Unpin;
            else return fail(lineno, "forge request: kind is quiesce, unquiesce, move or unpin"), false;
            m.from = node(w[4], lineno);
            m.target = w[5] == "-" ? 0 : node(w[5], lineno);
            std::size_t i = 6;
            if (m.kind == RequestKind::Move || m.kind == RequestKind::Unpin) {
                if (!need(7)) return false;
                auto a = address(w[6], lineno);
                if (!a) return false;
                m.address.push_back(*a);
                i = 7;
            }
            if (!m.from) return false;
            W.forge(id, group_arg(w, i), m,
                    std::string(to_string(m.kind)) + " Request of node " + std::to_string(m.target) +
                        (m.address.empty() ? "" : " " + m.address[0].str()) + " claiming to come from node " +
                        std::to_string(m.from));
        } else {
            return fail(lineno, "forge: acquire, release or request"), false;
        }
    } else if (cmd == "quiesce" || cmd == "unquiesce") {
        // quiesce ON_NODE [TARGET] [GROUP]: raisctl run on ON_NODE
        if (!need(2)) return false;
        auto id = node(w[1], lineno);
        std::string target = w.size() > 2 ? w[2] : "";
        if (!id) return false;
        W.command(id, group_arg(w, 3),
                  in::Command{cmd == "quiesce" ? CommandKind::Quiesce : CommandKind::Unquiesce, target, std::nullopt});
    } else if (cmd == "move" || cmd == "unpin") {
        // move ADDRESS NODE [via NODE] [GROUP] / unpin ADDRESS [via NODE] [GROUP]
        std::size_t i = cmd == "move" ? 3 : 2;
        if (!need(i)) return false;
        auto a = address(w[1], lineno);
        if (!a) return false;
        std::string target = cmd == "move" ? w[2] : "";
        std::uint32_t via = 0;
        if (w.size() > i + 1 && w[i] == "via") {
            via = node(w[i + 1], lineno);
            i += 2;
        }
        std::string g = group_arg(w, i);
        if (!via) {
            // raisctl on the current leader by default
            for (auto id : W.node_ids())
                if (const Member* m = W.member(id, g); m && m->is_leader()) via = id;
            if (!via) return fail(lineno, "no leader to send the command through"), false;
        }
        W.command(via, g, in::Command{cmd == "move" ? CommandKind::Move : CommandKind::Unpin, target, *a});
    } else if (cmd == "partition") {
        std::vector<std::set<std::uint32_t>> parts(1);
        for (std::size_t i = 1; i < w.size(); i++) {
            if (w[i] == "/" || w[i] == "|") parts.emplace_back();
            else if (auto id = node(w[i], lineno)) parts.back().insert(id);
        }
        W.partition(parts);
    } else if (cmd == "heal") {
        W.heal();
    } else if (cmd == "fail" || cmd == "recover") {
        for (std::size_t i = 1; i < w.size(); i++)
            if (auto id = node(w[i], lineno)) W.set_health(id, cmd == "recover");
    } else if (cmd == "load") {
        if (!need(3)) return false;
        auto id = node(w[1], lineno);
        double cap = w.size() > 3 ? std::stod(w[3]) : 100;
        if (id) W.set_load(id, group_arg(w, 4), std::stod(w[2]), cap);
    } else if (cmd == "reload") {
        if (!need(3)) return false;
        auto id = node(w[1], lineno);
        std::size_t i = 2;
        std::string g = w[2].find('=') == std::string::npos ? w[i++] : W.groups().front();
        const GroupConfig* base = nullptr;
        for (const auto& c : group_cfgs_)
            if (c.group == g) base = &c;
        if (!base || !id) return fail(lineno, "reload: unknown group or node"), false;
        std::vector<std::pair<std::string, std::string>> kv{{"group", g}};
        // start from the group's declared parameters, then override
        kv.emplace_back("addresses", [&] {
            std::string s;
            for (const auto& p : base->addresses) s += p.node + "=" + p.address.str() + " ";
            return s;
        }());
        kv.emplace_back("failback", base->failback ? "true" : "false");
        kv.emplace_back("placement", to_string(base->placement));
        kv.emplace_back("restart_grace", fmt(base->restart_grace));
        kv.emplace_back("interval", std::to_string(base->interval_ms));
        kv.emplace_back("orphan_timeout", fmt(base->orphan_timeout));
        for (; i < w.size(); i++) {
            auto eq = w[i].find('=');
            if (eq == std::string::npos) return fail(lineno, "expected key=value"), false;
            kv.emplace_back(w[i].substr(0, eq), w[i].substr(eq + 1));
        }
        GroupConfig cfg;
        if (auto e = parse_config(kv, &cfg)) return fail(lineno, e->message), false;
        W.reload(id, g, cfg);
    } else if (cmd == "outside") {
        if (!need(2)) return false;
        if (auto a = address(w[1], lineno)) {
            W.add_outside(*a);
            W.note("a machine outside the group answers for " + a->ip());
        }
    } else if (cmd == "watch") {
        if (!need(2)) return false;
        if (auto a = address(w[1], lineno)) W.watch(*a);
    } else if (cmd == "show") {
        flush_trace();
        show();
        return true;
    } else if (cmd == "mark") {
        flush_trace();
        mark_ = result_.output.size();
        return true;
    } else if (cmd == "expect") {
        flush_trace();
        result_.output.pop_back();  // expects are not echoed: the output stays readable
        if (!need(2)) return false;
        const std::string& what = w[1];
        if (what != "consistent" && !need(3)) return false;
        if (what == "holder" || what == "holders") {
            auto a = address(w[2], lineno);
            if (!a) return false;
            std::vector<std::string> want;
            for (std::size_t i = 3; i < w.size(); i++)
                if (w[i] != "none") want.push_back(w[i]);
            std::vector<std::string> got;
            for (auto h : W.holders(*a)) got.push_back(W.node_name(h));
            std::sort(want.begin(), want.end());
            std::sort(got.begin(), got.end());
            if (want != got) {
                std::string g, x;
                for (const auto& s : got) g += " " + s;
                for (const auto& s : want) x += " " + s;
                fail(lineno, "expect " + what + " " + a->str() + ": want" + (x.empty() ? " none" : x) + ", got" +
                                 (g.empty() ? " none" : g));
            }
        } else if (what == "event" || what == "no-event") {
            bool found = false;
            for (std::size_t i = mark_; i < result_.output.size() && !found; i++) {
                const std::string& line = result_.output[i];
                if (line.rfind("> ", 0) == 0) continue;
                // "TIME NODE KIND ...": the kind must be the third word, @NODE
                // the second; other words are substrings of the line.
                std::istringstream ls(line);
                std::string t, who, kind;
                ls >> t >> who >> kind;
                if (W.groups().size() > 1) {
                    who = kind;
                    ls >> kind;
                }
                if (!kind.empty() && kind.back() == ':') kind.pop_back();
                bool all = kind == w[2];
                for (std::size_t k = 3; k < w.size() && all; k++) {
                    if (w[k][0] == '@') all = who == w[k].substr(1) || who == w[k].substr(1) + ":";
                    else all = line.find(w[k]) != std::string::npos;
                }
                found = all;
            }
            std::string words;
            for (std::size_t k = 2; k < w.size(); k++) words += " " + w[k];
            if (what == "event" && !found) fail(lineno, "expected an event line with:" + words);
            if (what == "no-event" && found) fail(lineno, "expected no event line with:" + words);
        } else if (what == "leader") {
            std::string g = group_arg(w, 3);
            std::vector<std::string> leaders;
            for (auto id : W.node_ids()) {
                const Member* m = W.member(id, g);
                if (m && W.quorate(id) && !W.process_hung(id, g) && m->is_leader())
                    leaders.push_back(W.node_name(id));
            }
            if (leaders.size() != 1 || leaders[0] != w[2])
                fail(lineno, "expect leader " + w[2] + ": got " + (leaders.empty() ? "none" : leaders[0]) +
                                 (leaders.size() > 1 ? " and others" : ""));
        } else if (what == "consistent") {
            std::string g = w.size() > 2 ? w[2] : W.groups().front();
            for (auto id : W.node_ids()) {
                const Member* m = W.member(id, g);
                if (!W.node_up(id) || !m || W.process_hung(id, g)) continue;
                auto hs_of = [&](const ServiceAddress& a) {
                    auto hs = W.holders(a);
                    return std::find(hs.begin(), hs.end(), id) != hs.end();
                };
                for (const auto& [a, st] : m->held())
                    if (st == AddressState::Online && !hs_of(a))
                        fail(lineno, W.node_name(id) + " believes it holds " + a.str() + " but the interface lacks it");
                for (const auto& p : m->config().addresses)
                    if (hs_of(p.address) && !m->held().count(p.address))
                        fail(lineno, "the interface of " + W.node_name(id) + " holds " + p.address.str() +
                                         " but its raisd does not know it");
            }
        } else if (what == "zone") {
            // expect zone [GROUP] ADDRESS...|none: exactly these records
            std::size_t first = 2;
            std::string g = W.groups().front();
            if (std::find(W.groups().begin(), W.groups().end(), w[2]) != W.groups().end()) {
                g = w[2];
                first = 3;
            }
            std::set<std::string> want, got;
            for (std::size_t i = first; i < w.size(); i++)
                if (w[i] != "none") want.insert(w[i]);
            for (const auto& a : W.zone(g)) got.insert(a.ip());
            if (want != got) {
                std::string x, y;
                for (const auto& s2 : want) x += " " + s2;
                for (const auto& s2 : got) y += " " + s2;
                fail(lineno, "expect zone: want" + (x.empty() ? " none" : x) + ", got" + (y.empty() ? " none" : y));
            }
        } else if (what == "maxgap") {
            if (!need(4)) return false;
            auto a = address(w[2], lineno);
            if (!a) return false;
            double gap = W.max_gap(*a), limit = std::stod(w[3]);
            if (gap < 0) fail(lineno, "maxgap: " + w[2] + " is not watched");
            else if (gap > limit) fail(lineno, "longest gap of " + w[2] + " was " + fmt(gap) + " s > " + w[3] + " s");
            else result_.output.push_back("  longest gap of " + a->str() + ": " + fmt(gap) + " s");
        } else {
            fail(lineno, "unknown expect '" + what + "'");
        }
        return true;
    } else {
        fail(lineno, "unknown command '" + cmd + "'");
        return false;
    }
    flush_trace();
    return true;
}

ScenarioResult Runner::run(const std::string& commands) {
    std::istringstream in(commands);
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
        lineno++;
        auto first = line.find_first_not_of(" \t");
        if (first == std::string::npos || line[first] == '#') continue;
        std::vector<std::string> words;
        std::string err;
        if (!split(line, &words, &err)) {
            fail(lineno, "cannot parse: " + err);
            continue;
        }
        if (!words.empty()) exec(words, lineno);
    }
    flush_trace();
    return result_;
}

}  // namespace

ScenarioResult run_scenario(const std::string& text, const std::string& source, double wall_limit) {
    std::string commands = text, expected;
    std::istringstream in(text);
    std::string line;
    std::size_t pos = 0;
    bool found = false;
    while (std::getline(in, line)) {
        if (line == kSeparator) {
            commands = text.substr(0, pos);
            expected = text.substr(std::min(text.size(), pos + line.size() + 1));
            found = true;
            break;
        }
        pos += line.size() + 1;
    }
    Runner r(source, wall_limit);
    ScenarioResult res = r.run(commands);
    res.expected = expected;
    std::string got;
    for (const auto& l : res.output) got += l + "\n";
    res.output_ok = found && got == expected;
    return res;
}

std::string rewrite_scenario(const std::string& text, const std::vector<std::string>& output) {
    std::string commands = text;
    auto at = text.find(std::string("\n") + kSeparator + "\n");
    if (at != std::string::npos) commands = text.substr(0, at + 1);
    else if (text.rfind(std::string(kSeparator) + "\n", 0) == 0) commands.clear();
    if (!commands.empty() && commands.back() != '\n') commands += "\n";
    std::string out = commands + kSeparator + "\n";
    for (const auto& l : output) out += l + "\n";
    return out;
}

}  // namespace raissim
