// ServiceAddress: one IPv4 or IPv6 service address with its prefix length.
//
// Part of the pure core: parsing and formatting only, no I/O. An address is
// identified by its family and bytes; the prefix travels with it (it is what
// gets plumbed) but two entries differing only in prefix name the same
// address, so equality and ordering ignore it.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace rais {

enum class Family : std::uint8_t { V4 = 4, V6 = 6 };

class ServiceAddress {
public:
    ServiceAddress() = default;

    // Parses "A.B.C.D/P" or "X:Y::Z/P". With require_prefix false a missing
    // prefix means a host route (/32 or /128). On failure returns nullopt and
    // fills *why with a short explanation.
    static std::optional<ServiceAddress> parse(const std::string& text, std::string* why = nullptr,
                                               bool require_prefix = true);
    // Builds from raw bytes (4 or 16 of them), as decoded off the wire.
    static std::optional<ServiceAddress> from_bytes(const std::uint8_t* bytes, std::size_t len,
                                                    unsigned prefix);

    Family family() const { return family_; }
    unsigned prefix() const { return prefix_; }
    const std::uint8_t* bytes() const { return bytes_.data(); }
    std::size_t size() const { return family_ == Family::V4 ? 4 : 16; }

    std::string ip() const;   // without prefix
    std::string str() const;  // "ip/prefix"

    bool operator==(const ServiceAddress& o) const { return family_ == o.family_ && bytes_ == o.bytes_; }
    bool operator!=(const ServiceAddress& o) const { return !(*this == o); }
    bool operator<(const ServiceAddress& o) const {
        return family_ != o.family_ ? family_ < o.family_ : bytes_ < o.bytes_;
    }

private:
    Family family_ = Family::V4;
    unsigned prefix_ = 32;
    std::array<std::uint8_t, 16> bytes_{};
};

}  // namespace rais
