// raissim: runs simulator scenarios (text files) and random fault schedules.
//
//   raissim [--rewrite] [--verbose] [--seed-timeout S] FILE...
//                                   scenarios; --rewrite regenerates their
//                                   expected output for review
//   raissim --random [--seeds N] [--first S] [--steps K] [--seed-timeout S]
//                    [--no-forge] [--verbose]
//
// Each mode ends with one line "<mode>: N passed, M failed"; the exit status
// is 0 only when nothing failed. A failing random seed prints its seed and
// the tail of its trace, so `raissim --random --first SEED --seeds 1
// --verbose` replays it. A seed (or scenario file) that runs longer than
// --seed-timeout seconds of wall-clock time (default 20, 0 = no limit)
// fails as "FAIL seed N: timeout after S s at virtual time T".
//
// Random schedules interleave hostile group messages (forged by stray CPG
// clients: leader commands from a process that is not the leader's,
// Requests naming another member, Acquires of unconfigured addresses) drawn
// from a second random source, so the schedule of faults of a seed is the
// same with or without them; --no-forge leaves them out (and so replays
// seeds found before they existed).
#include <cstdio>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <set>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "core/config.h"
#include "core/random.h"
#include "core/text.h"
#include "sim/scenario.h"
#include "sim/world.h"

using namespace rais;
using namespace raissim;

namespace {

int usage(FILE* to, int code) {
    std::fprintf(to,
                 "usage: raissim [--rewrite] [--verbose] [--seed-timeout S] SCENARIO...\n"
                 "       raissim --random [--seeds N] [--first SEED] [--steps K] [--seed-timeout S]\n"
                 "                        [--no-forge] [--verbose]\n");
    return code;
}

int run_scenarios(const std::vector<std::string>& files, bool rewrite, bool verbose, double timeout) {
    int passed = 0, failed = 0;
    for (const auto& f : files) {
        std::ifstream in(f);
        if (!in) {
            std::fprintf(stderr, "raissim: cannot read %s: %s\n", f.c_str(), std::strerror(errno));
            failed++;
            continue;
        }
        std::stringstream ss;
        ss << in.rdbuf();
        std::string text = ss.str();
        ScenarioResult r = run_scenario(text, f, timeout);
        if (rewrite) {
            std::ofstream o(f);
            o << rewrite_scenario(text, r.output);
        }
        bool ok = r.expects_ok && (r.output_ok || rewrite);
        if (ok) {
            passed++;
            std::printf("PASS %s\n", f.c_str());
        } else {
            failed++;
            std::printf("FAIL %s\n", f.c_str());
            for (const auto& m : r.failures) std::printf("  %s\n", m.c_str());
            if (!r.output_ok) std::printf("  output differs from the expected part (run with --rewrite and review the diff)\n");
        }
        if (verbose || (!ok && !r.output_ok)) {
            for (const auto& l : r.output) std::printf("    | %s\n", l.c_str());
        }
    }
    std::printf("scenarios: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

// ------------------------------------------------------------------ random mode

struct Schedule {
    World* world;
    RandomSource* r;
    GroupConfig cfg;
    std::vector<std::string> failures;
};

std::string pick_node(World& W, RandomSource& r) {
    auto ids = W.node_ids();
    return W.node_name(ids[r.below(ids.size())]);
}

// The invariants of a stable view (DESIGN §6.2).
void check_stable(World& W, const GroupConfig& cfg, std::vector<std::string>* out) {
    const std::string& g = cfg.group;
    double now = W.now();
    auto say = [&](const std::string& s) { out->push_back(format_number("%8.3f ", now) + s); };
    std::set<std::uint32_t> q;
    for (auto id : W.node_ids())
        if (W.node_up(id) && W.quorate(id)) q.insert(id);
    // Who could serve: live, non-hung members in the quorate partition that are
    // OK, not quiesced, not stopping and share the configuration.
    std::set<std::string> eligible;
    for (auto id : q) {
        const Member* m = W.member(id, g);
        if (!m || W.process_hung(id, g)) continue;
        auto st = m->status(now);
        if (st.ok && !st.quiesced && !st.stopping && m->config().digest() == cfg.digest())
            eligible.insert(W.node_name(id));
    }
    for (const auto& p : cfg.addresses) {
        auto hs = W.holders(p.address);
        if (hs.size() > 1) {
            std::string s;
            for (auto h : hs) s += " " + W.node_name(h);
            say("INVARIANT two holders of " + p.address.str() + ":" + s);
        }
        for (auto h : hs)
            if (!q.count(h)) say("INVARIANT minority host " + W.node_name(h) + " holds " + p.address.str());
        bool pref_live = false;
        if (auto pid = W.node_id(p.node); pid && q.count(*pid) && W.member(*pid, g) && !W.process_hung(*pid, g))
            pref_live = true;
        bool may_expire = cfg.orphan_timeout > 0 && !pref_live;
        if (!eligible.empty() && !may_expire && hs.empty())
            say("INVARIANT " + p.address.str() + " unserved although " + *eligible.begin() + " is eligible");
    }
    // Every member's idea of what it holds matches its interface.
    for (auto id : q) {
        const Member* m = W.member(id, g);
        if (!m || W.process_hung(id, g)) continue;
        for (const auto& [a, st] : m->held()) {
            auto hs = W.holders(a);
            if (st == AddressState::Online && std::find(hs.begin(), hs.end(), id) == hs.end())
                say("INVARIANT " + W.node_name(id) + " believes it holds " + a.str() + " but the interface lacks it");
        }
    }
}

// One hostile message, well formed, from a stray CPG client (DESIGN rule
// 4.1: commands only from the leader process, Requests only from counted
// members about themselves, Acquires only of configured addresses). The
// World checks that no member acts on it.
void forge_step(World& W, RandomSource& h, const GroupConfig& cfg) {
    const std::string& g = cfg.group;
    auto ids = W.node_ids();
    auto any = [&] { return ids[h.below(ids.size())]; };
    std::uint32_t leader = 0;
    for (auto id : ids)
        if (const Member* m = W.member(id, g); m && W.quorate(id) && !W.process_hung(id, g) && m->is_leader())
            leader = id;
    if (!leader) leader = any();
    auto address = [&] { return cfg.addresses[h.below(cfg.addresses.size())].address; };
    // Served by someone, if possible: a Release the victim would obey.
    auto held_somewhere = [&](std::uint32_t* holder) {
        ServiceAddress a = address();
        auto hs = W.holders(a);
        *holder = hs.empty() ? any() : hs[h.below(hs.size())];
        return a;
    };
    auto node = [](std::uint32_t id) { return "node " + std::to_string(id); };
    switch (h.below(5)) {
    case 0: {  // (a) an Acquire from a process on the leader's node that is not the leader's
        std::uint32_t from = h.below(4) ? leader : any();
        AcquireMsg m{leader, any(), address(), h.below(2) == 0, "forged"};
        W.forge(from, g, m, "Acquire of " + m.address.str() + " for " + node(m.dest) + " claiming leader " + node(leader));
        break;
    }
    case 1: {  // (a) a Release of an address its holder serves
        std::uint32_t dest = 0;
        ServiceAddress a = held_somewhere(&dest);
        std::uint32_t from = h.below(4) ? leader : any();
        ReleaseMsg m{leader, dest, a, "forged"};
        W.forge(from, g, m, "Release of " + a.str() + " for " + node(dest) + " claiming leader " + node(leader));
        break;
    }
    case 2: {  // (a) a Batch mixing both
        BatchMsg m{leader, any(), {}};
        std::set<ServiceAddress> seen;
        for (std::uint64_t i = 0, k = 1 + h.below(3); i < k; i++) {
            ServiceAddress a = address();
            if (seen.insert(a).second) m.items.push_back({h.below(2) == 0, a, h.below(2) == 0, "forged"});
        }
        std::uint32_t from = h.below(4) ? leader : any();
        W.forge(from, g, m, "Batch of " + std::to_string(m.items.size()) + " for " + node(m.dest) +
                                " claiming leader " + node(leader));
        break;
    }
    case 3: {  // (b) a Request naming a member as its sender
        RequestMsg m;
        m.from = any();
        m.target = any();
        static const RequestKind kinds[] = {RequestKind::Quiesce, RequestKind::Unquiesce, RequestKind::Move,
                                            RequestKind::Unpin};
        m.kind = kinds[h.below(4)];
        if (m.kind == RequestKind::Move || m.kind == RequestKind::Unpin) m.address.push_back(address());
        W.forge(any(), g, m,
                std::string(to_string(m.kind)) + " Request of " + node(m.target) +
                    (m.address.empty() ? "" : " " + m.address[0].str()) + " claiming to come from " + node(m.from));
        break;
    }
    case 4: {  // (c) an Acquire of an address no configuration names
        std::string text = h.below(2) ? "198.19.200." + std::to_string(1 + h.below(250)) + "/24"
                                      : "2001:2:0:ff::" + std::to_string(1 + h.below(250)) + "/64";
        auto a = ServiceAddress::parse(text);
        AcquireMsg m{leader, any(), *a, false, "forged"};
        W.forge(leader, g, m, "Acquire of unconfigured " + a->str() + " for " + node(m.dest) +
                                  " claiming leader " + node(leader));
        break;
    }
    }
}

bool run_seed(std::uint64_t seed, int steps, bool verbose, double timeout, bool forge) {
    RandomSource r(seed);
    // Hostile messages come from their own source: the faults of a seed
    // are the same with or without them.
    RandomSource hostile(seed ^ 0x686f7374696c6500ULL);
    std::size_t n = 3 + r.below(4);
    WorldOptions opts;
    opts.fencing = r.below(3) == 0;
    opts.auto_fence = opts.fencing ? 0.5 + r.unit() * 2 : -1;
    opts.quorum_order = r.below(2) ? QuorumOrder::Before : QuorumOrder::After;
    opts.quorum_delay = opts.quorum_order == QuorumOrder::After ? r.unit() * 0.5 : 0;
    opts.trace_logs = std::getenv("RAISSIM_LOGS") != nullptr;
    opts.wall_limit = timeout;
    World W(seed, opts);
    std::vector<std::string> names;
    for (std::size_t i = 1; i <= n; i++) {
        names.push_back("n" + std::to_string(i));
        W.add_node(names.back());
    }
    std::string addrs;
    int k = 0;
    for (std::size_t i = 0; i < n; i++) {
        bool spare = i > 0 && r.below(3) == 0;
        if (spare) continue;
        int count = 1 + static_cast<int>(r.below(2));
        for (int c = 0; c < count; c++, k++) {
            if (r.below(4) == 0) addrs += names[i] + "=2001:2::" + std::to_string(100 + k) + "/64 ";
            else addrs += names[i] + "=198.18.1." + std::to_string(100 + k) + "/24 ";
        }
    }
    std::vector<std::pair<std::string, std::string>> kv = {
        {"group", "web"},
        {"addresses", addrs},
        {"failback", r.below(3) ? "true" : "false"},
        {"placement", r.below(2) ? "least-loaded" : "random"},
        {"orphan_timeout", r.below(4) == 0 ? "8" : "0"},
        {"restart_grace", "4"},
        {"interval", "1000"},
        {"test_interval", "500"},
        {"test_failures", "2"},
    };
    GroupConfig cfg;
    if (auto e = parse_config(kv, &cfg)) {
        std::printf("seed %llu: bad generated config: %s\n", static_cast<unsigned long long>(seed), e->message.c_str());
        return false;
    }
    W.add_group(cfg);
    // Everything a scenario needs to set the same stage.
    W.note("seed " + std::to_string(seed) + ": " + std::to_string(n) + " nodes, addresses " + addrs +
           "failback=" + (cfg.failback ? "true" : "false") + " placement=" + to_string(cfg.placement) +
           " orphan_timeout=" + std::to_string(static_cast<int>(cfg.orphan_timeout)) +
           " fencing=" + (opts.fencing ? "on auto_fence=" + format_number("%.4f", opts.auto_fence) : "off") +
           " quorum=" +
           (opts.quorum_order == QuorumOrder::Before ? "before" : "after:" + format_number("%.4f", opts.quorum_delay)));
    for (auto id : W.node_ids()) W.boot(id);
    W.run_for(5);

    std::vector<std::string> failures;
    auto settle = [&] {
        for (auto id : W.node_ids()) W.resume(id, "web");
        W.note("settle");
        W.run_for(12 + cfg.restart_grace + (opts.fencing ? opts.auto_fence : 0));
        if (!W.halted()) check_stable(W, cfg, &failures);
    };
    for (int s = 0; s < steps && !W.halted(); s++) {
        auto id = *W.node_id(pick_node(W, r));
        switch (r.below(16)) {
        case 0: W.crash(id); break;
        case 1: case 2: W.boot(id); break;
        case 3: W.kill(id, "web"); break;
        case 4: W.start(id, "web"); break;
        case 5: {
            std::set<std::uint32_t> a, b;
            for (auto x : W.node_ids()) (r.below(2) ? a : b).insert(x);
            W.partition({a, b});
            break;
        }
        case 6: W.heal(); break;
        case 7: W.hang(id, "web"); break;
        case 8: W.resume(id, "web"); break;
        case 9: W.command(id, "web", in::Command{CommandKind::Quiesce, "", std::nullopt}); break;
        case 10: W.command(id, "web", in::Command{CommandKind::Unquiesce, "", std::nullopt}); break;
        case 11: W.set_health(id, r.below(2) == 0); break;
        case 12: W.set_load(id, "web", static_cast<double>(r.below(100)), 100); break;
        case 13: {
            const auto& p = cfg.addresses[r.below(cfg.addresses.size())];
            if (W.member(id, "web"))
                W.command(id, "web", in::Command{CommandKind::Move, pick_node(W, r), p.address});
            break;
        }
        case 14: W.command(id, "web", in::Command{CommandKind::Stop, "", std::nullopt}); break;
        case 15:
            if (r.below(2)) settle();
            else W.heal();
            break;
        }
        if (forge && hostile.below(3) == 0) forge_step(W, hostile, cfg);
        W.run_for(0.05 + r.unit() * 6);
        for (const auto& v : W.take_violations()) failures.push_back("INVARIANT " + v);
        if (s % 6 == 5) settle();
    }
    if (!W.halted()) {
        // Last: heal, bring everything back, and check once more.
        W.heal();
        for (auto id : W.node_ids()) {
            W.boot(id);
            W.start(id, "web");
            W.set_health(id, true);
        }
        settle();
    }
    for (const auto& v : W.take_violations()) failures.push_back("INVARIANT " + v);

    if (!failures.empty() || verbose) {
        std::string head = failures.empty() ? "PASS" : "FAIL";
        head += " seed " + std::to_string(seed);
        if (W.timed_out()) head += ": " + W.halt_reason();
        std::printf("%s\n", head.c_str());
        for (const auto& f : failures) std::printf("  %s\n", f.c_str());
        const auto& t = W.trace();
        std::size_t from = verbose || t.size() < 400 ? 0 : t.size() - 400;
        for (std::size_t i = from; i < t.size(); i++) std::printf("    | %s\n", t[i].c_str());
        std::fflush(stdout);
    }
    return failures.empty();
}

}  // namespace

int main(int argc, char** argv) {
    bool rewrite = false, verbose = false, random = false, forge = true;
    double timeout = 20;
    unsigned long long seeds = 1000, first = 1;
    int steps = 30;
    std::vector<std::string> files;
    try {
        for (int i = 1; i < argc; i++) {
            std::string a = argv[i];
            auto value = [&]() -> std::string {
                if (i + 1 >= argc) {
                    std::fprintf(stderr, "raissim: %s needs a value\n", a.c_str());
                    std::exit(2);
                }
                return argv[++i];
            };
            if (a == "--rewrite") rewrite = true;
            else if (a == "--verbose" || a == "-v") verbose = true;
            else if (a == "--random") random = true;
            else if (a == "--seeds") seeds = std::stoull(value());
            else if (a == "--first") first = std::stoull(value());
            else if (a == "--steps") steps = std::stoi(value());
            else if (a == "--seed-timeout") timeout = std::stod(value());
            else if (a == "--no-forge") forge = false;
            else if (a == "--help" || a == "-h") return usage(stdout, 0);
            else if (!a.empty() && a[0] == '-') return usage(stderr, 2);
            else files.push_back(a);
        }
    } catch (const std::exception&) {
        std::fprintf(stderr, "raissim: bad number in the arguments\n");
        return usage(stderr, 2);
    }
    if (random) {
        unsigned long long passed = 0, failed = 0;
        for (unsigned long long s = first; s < first + seeds; s++) {
            if (run_seed(s, steps, verbose, timeout, forge)) passed++;
            else failed++;
        }
        std::printf("random: %llu passed, %llu failed\n", passed, failed);
        return failed ? 1 : 0;
    }
    if (files.empty()) return usage(stderr, 2);
    return run_scenarios(files, rewrite, verbose, timeout);
}
