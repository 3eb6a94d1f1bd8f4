#include "core/dns_leader.h"

#include <optional>
#include <utility>

#include "core/dns_plan.h"

namespace rais {

void DnsLeader::plan(const View& v, Effects& fx) {
    if (v.config.dns_server.empty()) return;
    bool first = !leading_;
    leading_ = true;
    DnsPlan z = plan_dns(v, prev_);
    why_ = z.reasons;
    // A new leader publishes at once (the shell reads the server's RRset
    // first and converges it); afterwards only changes go out.
    if (!z.changed && !first) return;
    if (first) confirmed_.clear();
    prev_ = z.advertised;
    if (z.changed) {
        changes_ = z.changes;
        std::string why;
        for (const auto& c : z.changes) why += (why.empty() ? "" : "; ") + c;
        fx.push_back(out::Log{LogLevel::Notice, "DNS: the zone should advertise " + dns_list(z.advertised) +
                                                      (why.empty() ? "" : ": " + why)});
    }
    fx.push_back(out::DnsPublish{z.advertised});
}

void DnsLeader::on_result(double now, const in::DnsResult& r, const GroupConfig& cfg, const std::string& self,
                          Effects& fx) {
    if (!leading_) return;
    auto emit = [&](EventKind k, std::string why) {
        fx.push_back(out::Emit{Event{k, now, cfg.group, self, std::nullopt, std::move(why)}});
    };
    if (!r.ok) {
        // One event per outage (and per new kind of failure), not one per retry.
        std::string what = std::string(r.read ? "reading" : "updating") + " the zone at " + cfg.dns_server +
                           " failed: " + r.detail;
        if (what != failing_) emit(EventKind::DnsFailed, what);
        failing_ = what;
        return;
    }
    if (!failing_.empty())
        fx.push_back(out::Log{LogLevel::Notice, "DNS: the server at " + cfg.dns_server + " answers again"});
    failing_.clear();
    if (r.read) {
        // The server's RRset seeds the hysteresis of a new leader.
        if (r.published) prev_ = confirmed_ = *r.published;
        return;
    }
    std::set<ServiceAddress> now_there = r.published ? *r.published : prev_;
    if (now_there == confirmed_) return;
    emit(EventKind::DnsUpdate, cfg.dns_owner() + "." + cfg.dns_zone + " now " + dns_list(now_there) + ": " +
                                   dns_changes(confirmed_, now_there, why_));
    confirmed_ = now_there;
}

}  // namespace rais
