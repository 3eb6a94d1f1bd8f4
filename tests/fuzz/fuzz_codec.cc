// libFuzzer target for the message decoder: every input must either decode
// or come back as a DecodeError, never crash, leak or trip a sanitizer; and
// whatever decodes must re-encode and decode to the same bytes (the codec
// is canonical), so a message cannot mean two things.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "core/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto r = rais::decode(data, size);
    if (auto* m = std::get_if<rais::Message>(&r)) {
        std::vector<std::uint8_t> again = rais::encode(*m);
        auto r2 = rais::decode(again.data(), again.size());
        auto* m2 = std::get_if<rais::Message>(&r2);
        if (!m2) std::abort();
        if (rais::encode(*m2) != again) std::abort();
    }
    return 0;
}
