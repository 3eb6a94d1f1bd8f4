// DnsPlan: the patent's DNS thread (Fig. 6C) made exact by DESIGN §5.4 —
// which of the group's addresses the DNS zone advertises, so that new
// clients go to hosts that should get them.
//
// Candidates: an address that is served (online) and whose preferred host
// is a live member that is OK, not quiesced and not stopping; its
// utilization is that of the host serving it (load x 100 / capacity, as the
// water marks). Weighted utilization, delta = high - low:
//   util > high                     util + delta
//   low < util <= high              util if advertised last round, else util + delta
//   util <= low                     util
// With more candidates than min_addresses: sort by weighted utilization
// (then address), and drop those past the first min_addresses whose
// weighted utilization exceeds high water. The zone changes only when the
// set differs from the last one.
//
// Pure: no I/O, no clock. Every change carries a reason.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/model.h"

namespace rais {

struct DnsEntry {
    ServiceAddress address;
    std::string node;              // the host serving it
    double util = 0, weighted = 0;
    bool advertised = false;
    std::string why;               // why it is in or out
};

struct DnsPlan {
    std::set<ServiceAddress> advertised;
    std::vector<DnsEntry> entries;          // every candidate, in sorted order
    bool changed = false;                   // advertised differs from `previous`
    std::vector<std::string> changes;       // "+198.18.0.101 (...)" / "-198.18.0.103 (...)", with reasons
    std::map<ServiceAddress, std::string> reasons;  // every configured address: why it is in or out
};

// "+A (why); -B (why)": how `to` differs from `from`, with the plan's reasons.
std::string dns_changes(const std::set<ServiceAddress>& from, const std::set<ServiceAddress>& to,
                        const std::map<ServiceAddress, std::string>& reasons);

DnsPlan plan_dns(const View& view, const std::set<ServiceAddress>& previous);

// "198.18.0.101 2001:2::1": the addresses without prefixes, as DNS records carry them.
std::string dns_list(const std::set<ServiceAddress>& s);

}  // namespace rais
