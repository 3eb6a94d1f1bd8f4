// RandomSource: the seeded random source the core draws from. The core never
// seeds itself: whoever builds a Member or calls plan() passes the seed. The
// simulator (raissim --seed) and `raisctl plan --view FILE --seed N`
// (default 1) take it from the user, so their runs can be replayed. raisd
// seeds its Member once at start from the wall clock (microseconds) XOR its
// pid, and `raisctl plan --fail` asked of it plans with a fresh source of
// that same seed; the seed is not logged, so a daemon's random picks
// (placement=random) are not meant to be replayed. splitmix64: small, fast,
// and the same on every platform.
#pragma once

#include <cstdint>

namespace rais {

class RandomSource {
public:
    explicit RandomSource(std::uint64_t seed) : state_(seed) {}

    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    // Uniform in [0, n); n > 0. Rejection sampling keeps it unbiased.
    std::uint64_t below(std::uint64_t n) {
        std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % n);
        std::uint64_t v;
        do v = next(); while (v >= limit);
        return v % n;
    }
    // Uniform in [0, 1).
    double unit() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }

private:
    std::uint64_t state_;
};

}  // namespace rais
