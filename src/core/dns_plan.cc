#include "core/dns_plan.h"

#include <algorithm>
#include <map>

#include "core/text.h"

namespace rais {

namespace {
std::string pct(double v) { return format_number("%.0f%%", v); }
}  // namespace

std::string dns_list(const std::set<ServiceAddress>& s) {
    std::string out;
    for (const auto& a : s) out += (out.empty() ? "" : " ") + a.ip();
    return out.empty() ? "(none)" : out;
}

std::string dns_changes(const std::set<ServiceAddress>& from, const std::set<ServiceAddress>& to,
                        const std::map<ServiceAddress, std::string>& reasons) {
    std::string out;
    auto why = [&](const ServiceAddress& a) {
        auto it = reasons.find(a);
        return it == reasons.end() ? std::string("no longer configured") : it->second;
    };
    for (const auto& a : to)
        if (!from.count(a)) out += (out.empty() ? "" : "; ") + ("+" + a.ip() + " (" + why(a) + ")");
    for (const auto& a : from)
        if (!to.count(a)) out += (out.empty() ? "" : "; ") + ("-" + a.ip() + " (" + why(a) + ")");
    return out;
}

DnsPlan plan_dns(const View& view, const std::set<ServiceAddress>& previous) {
    const GroupConfig& cfg = view.config;
    const double high = cfg.high_water, low = cfg.low_water, delta = high - low;
    std::map<std::string, const HostView*> members;
    for (const auto& h : view.hosts)
        if (!h.departed) members[h.node] = &h;

    DnsPlan p;
    // Why each configured address is not a candidate, for the change log.
    std::map<ServiceAddress, std::string> excluded;
    for (const auto& pa : cfg.addresses) {
        auto pref = members.find(pa.node);
        const HostView* holder = nullptr;
        for (const auto& h : view.hosts) {
            const Holding* x = h.departed ? nullptr : h.holding(pa.address);
            if (x && x->state == AddressState::Online) holder = &h;
        }
        if (pref == members.end()) excluded[pa.address] = pa.node + " is not a member (orphaned)";
        else if (!pref->second->ok) excluded[pa.address] = pa.node + " fails its health tests";
        else if (pref->second->quiesced) excluded[pa.address] = pa.node + " is quiesced";
        else if (pref->second->stopping) excluded[pa.address] = pa.node + " is stopping";
        else if (!holder) excluded[pa.address] = "not served";
        if (excluded.count(pa.address)) continue;

        DnsEntry e;
        e.address = pa.address;
        e.node = holder->node;
        e.util = holder->utilization();
        bool was = previous.count(pa.address) > 0;
        if (e.util > high) {
            e.weighted = e.util + delta;
        } else if (e.util > low) {
            e.weighted = was ? e.util : e.util + delta;
        } else {
            e.weighted = e.util;
        }
        p.entries.push_back(e);
    }
    std::sort(p.entries.begin(), p.entries.end(), [](const DnsEntry& a, const DnsEntry& b) {
        return a.weighted != b.weighted ? a.weighted < b.weighted : a.address < b.address;
    });
    bool floor_applies = p.entries.size() > cfg.min_addresses;
    for (std::size_t i = 0; i < p.entries.size(); i++) {
        DnsEntry& e = p.entries[i];
        bool was = previous.count(e.address) > 0;
        std::string where = e.util > high  ? "above high water " + pct(high)
                            : e.util > low ? std::string("between the water marks, ") +
                                                 (was ? "advertised before" : "not advertised before")
                                           : "below low water " + pct(low);
        std::string load = e.node + " at " + pct(e.util) + " is " + where;
        bool within_floor = !floor_applies || i < cfg.min_addresses;
        e.advertised = within_floor || e.weighted <= high;
        e.why = load;
        if (within_floor && e.weighted > high)
            e.why += "; kept: the zone keeps at least " + std::to_string(cfg.min_addresses) + " address(es)";
        if (e.advertised) p.advertised.insert(e.address);
    }
    for (const auto& e : p.entries) p.reasons[e.address] = e.why;
    for (const auto& [a, why] : excluded) p.reasons[a] = why;
    p.changed = p.advertised != previous;
    if (p.changed) {
        std::string c = dns_changes(previous, p.advertised, p.reasons);
        for (std::size_t from = 0; from < c.size();) {
            std::size_t end = c.find("; ", from);
            p.changes.push_back(c.substr(from, end == std::string::npos ? std::string::npos : end - from));
            from = end == std::string::npos ? c.size() : end + 2;
        }
    }
    return p;
}

}  // namespace rais
