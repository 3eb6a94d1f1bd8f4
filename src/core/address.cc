#include "core/address.h"

#include <arpa/inet.h>

#include <cstring>

namespace rais {

std::optional<ServiceAddress> ServiceAddress::parse(const std::string& text, std::string* why,
                                                    bool require_prefix) {
    auto fail = [&](const std::string& w) -> std::optional<ServiceAddress> {
        if (why) *why = w;
        return std::nullopt;
    };
    ServiceAddress a;
    std::string ip = text;
    std::optional<unsigned long> prefix;
    auto slash = text.find('/');
    if (slash != std::string::npos) {
        ip = text.substr(0, slash);
        std::string p = text.substr(slash + 1);
        if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos)
            return fail("prefix length '" + p + "' is not a number");
        prefix = std::stoul(p);
    } else if (require_prefix) {
        return fail("missing /PREFIX");
    }
    if (ip.find(':') != std::string::npos) {
        a.family_ = Family::V6;
        if (inet_pton(AF_INET6, ip.c_str(), a.bytes_.data()) != 1)
            return fail("'" + ip + "' is not an IPv6 address");
        a.prefix_ = prefix.value_or(128);
        if (a.prefix_ > 128) return fail("IPv6 prefix length " + std::to_string(a.prefix_) + " exceeds 128");
    } else {
        a.family_ = Family::V4;
        if (inet_pton(AF_INET, ip.c_str(), a.bytes_.data()) != 1)
            return fail("'" + ip + "' is not an IPv4 address");
        a.prefix_ = prefix.value_or(32);
        if (a.prefix_ > 32) return fail("IPv4 prefix length " + std::to_string(a.prefix_) + " exceeds 32");
    }
    if (a.prefix_ == 0) return fail("prefix length 0 is not a service address");
    return a;
}

std::optional<ServiceAddress> ServiceAddress::from_bytes(const std::uint8_t* bytes, std::size_t len,
                                                         unsigned prefix) {
    ServiceAddress a;
    if (len == 4 && prefix >= 1 && prefix <= 32) {
        a.family_ = Family::V4;
    } else if (len == 16 && prefix >= 1 && prefix <= 128) {
        a.family_ = Family::V6;
    } else {
        return std::nullopt;
    }
    std::memcpy(a.bytes_.data(), bytes, len);
    a.prefix_ = prefix;
    return a;
}

std::string ServiceAddress::ip() const {
    char buf[INET6_ADDRSTRLEN] = {0};
    inet_ntop(family_ == Family::V4 ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof buf);
    return buf;
}

std::string ServiceAddress::str() const { return ip() + "/" + std::to_string(prefix_); }

}  // namespace rais
