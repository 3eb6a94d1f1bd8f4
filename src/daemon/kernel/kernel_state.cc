// The kernel's address table (see kernel_state.h).

#include "daemon/kernel/kernel_state.h"

#include <algorithm>
#include <cmath>

namespace rais::kernel {

bool covers(const ServiceAddress& net, const ServiceAddress& a) {
    if (net.family() != a.family()) return false;
    unsigned bits = net.prefix();
    const std::uint8_t* x = net.bytes();
    const std::uint8_t* y = a.bytes();
    for (unsigned i = 0; i < bits / 8; ++i)
        if (x[i] != y[i]) return false;
    unsigned rest = bits % 8;
    if (rest == 0) return true;
    std::uint8_t mask = static_cast<std::uint8_t>(0xFFu << (8 - rest));
    return (x[bits / 8] & mask) == (y[bits / 8] & mask);
}

std::uint32_t lifetime_secs(double s) {
    if (!(s > 1)) return 1;  // also NaN
    if (s >= static_cast<double>(kInfiniteLifetime - 1)) return kInfiniteLifetime - 1;
    return static_cast<std::uint32_t>(std::ceil(s));
}

void AddressTable::load(std::vector<AddrRecord> records) {
    by_ip_.clear();
    for (auto& r : records) {
        r.gen = ++gen_;
        by_ip_[r.addr].push_back(r);
    }
}

AddrRecord AddressTable::apply(AddrRecord r, bool add) {
    r.gen = ++gen_;
    auto& v = by_ip_[r.addr];
    auto it = std::find_if(v.begin(), v.end(), [&](const AddrRecord& x) {
        return x.ifindex == r.ifindex && x.addr.prefix() == r.addr.prefix();
    });
    if (add) {
        if (it != v.end())
            *it = r;
        else
            v.push_back(r);
    } else if (it != v.end()) {
        v.erase(it);
    }
    if (v.empty()) by_ip_.erase(r.addr);
    return r;
}

const AddrRecord* AddressTable::find_record(const ServiceAddress& a, int ifindex, bool match_prefix) const {
    auto it = by_ip_.find(a);
    if (it == by_ip_.end()) return nullptr;
    for (const auto& r : it->second)
        if (r.ifindex == ifindex && (!match_prefix || r.addr.prefix() == a.prefix())) return &r;
    return nullptr;
}

const AddrRecord* AddressTable::find_any(const ServiceAddress& a) const {
    auto it = by_ip_.find(a);
    if (it == by_ip_.end()) return nullptr;
    for (const auto& r : it->second)
        if (!r.dadfailed()) return &r;
    return nullptr;
}

const AddrRecord* AddressTable::find_permanent(const ServiceAddress& a, bool in_service) const {
    auto it = by_ip_.find(a);
    if (it == by_ip_.end()) return nullptr;
    for (const auto& r : it->second)
        if (r.permanent() && (!in_service || !r.dadfailed())) return &r;
    return nullptr;
}

const AddrRecord* AddressTable::find_ours(const ServiceAddress& a, int ifindex) const {
    auto it = by_ip_.find(a);
    if (it == by_ip_.end()) return nullptr;
    for (const auto& r : it->second) {
        if (r.permanent()) continue;
        if (ifindex ? r.ifindex == ifindex : !r.dadfailed()) return &r;
    }
    return nullptr;
}

const AddrRecord* AddressTable::narrowest_cover(const ServiceAddress& a) const {
    const AddrRecord* best = nullptr;
    for (const auto& [ip, records] : by_ip_)
        for (const auto& r : records) {
            if (r.dadfailed()) continue;
            if (covers(r.addr, a) && (!best || r.addr.prefix() > best->addr.prefix())) best = &r;
        }
    return best;
}

const AddrRecord* AddressTable::permanent_in_subnet(const ServiceAddress& subnet, int ifindex) const {
    for (const auto& [ip, records] : by_ip_)
        for (const auto& o : records)
            if (o.ifindex == ifindex && o.permanent() && o.addr.family() == Family::V4 &&
                o.addr.prefix() == subnet.prefix() && covers(subnet, o.addr))
                return &o;
    return nullptr;
}

}  // namespace rais::kernel
