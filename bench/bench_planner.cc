// Planner cost (DESIGN §7): one full planning pass for 32 hosts and 10,000
// addresses right after a host failed (its addresses unserved and handed
// out in the pass), for both placements, beside a steady-state pass (nothing
// to do) as the baseline measured in the same run. Target: failover pass
// under 5 ms on the project's 2-core machine.
#include <benchmark/benchmark.h>

#include <string>

#include "core/planner.h"

namespace {

rais::View make_view(unsigned hosts, unsigned addresses, unsigned spares, bool failed, rais::Placement placement) {
    std::string text;
    unsigned owners = hosts - spares;
    for (unsigned i = 0; i < addresses; i++) {
        unsigned owner = 1 + i % owners;
        text += "n" + std::to_string(owner) + "=198." + std::to_string(18 + (i >> 16)) + "." +
                std::to_string((i >> 8) & 255) + "." + std::to_string(i & 255) + "/15 ";
    }
    rais::GroupConfig cfg;
    if (auto e = rais::parse_config({{"addresses", text}, {"placement", to_string(placement)}}, &cfg)) std::abort();
    rais::View v;
    v.config = cfg;
    v.now = 1000;
    for (unsigned h = 1; h <= hosts; h++) {
        if (failed && h == 1) continue;  // n1 crashed: its addresses are unserved
        rais::HostView hv;
        hv.node = "n" + std::to_string(h);
        hv.id = h;
        hv.load = h % 7;
        for (const auto& p : cfg.addresses)
            if (p.node == hv.node) hv.serving.push_back({p.address, rais::AddressState::Online});
        v.hosts.push_back(std::move(hv));
    }
    return v;
}

void run(benchmark::State& state, bool failed, rais::Placement placement) {
    rais::View v = make_view(32, 10000, 4, failed, placement);
    rais::RandomSource random(42);
    std::size_t decisions = 0;
    for (auto _ : state) {
        rais::Plan p = rais::plan(v, random);
        decisions = p.decisions.size();
        benchmark::DoNotOptimize(p);
    }
    state.counters["decisions"] = static_cast<double>(decisions);
}

void BM_SteadyState(benchmark::State& s) { run(s, false, rais::Placement::LeastLoaded); }
void BM_FailoverLeastLoaded(benchmark::State& s) { run(s, true, rais::Placement::LeastLoaded); }
void BM_FailoverRandom(benchmark::State& s) { run(s, true, rais::Placement::Random); }

}  // namespace

BENCHMARK(BM_SteadyState)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FailoverLeastLoaded)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FailoverRandom)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
