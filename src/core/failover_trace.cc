// FailoverTrace (see failover_trace.h).
#include "core/failover_trace.h"

#include <algorithm>
#include <cstdio>
#include <limits>

namespace rais {

const char* key_of(FailoverStep s) {
    switch (s) {
    case FailoverStep::Membership: return "membership";
    case FailoverStep::Totem: return "totem";
    case FailoverStep::Quorum: return "quorum";
    case FailoverStep::Fence: return "fence";
    case FailoverStep::Plan: return "plan";
    case FailoverStep::Sent: return "sent";
    case FailoverStep::Ordered: return "ordered";
    case FailoverStep::ProbeSent: return "probe_sent";
    case FailoverStep::ProbeSettled: return "probe_settled";
    case FailoverStep::Plumbed: return "plumbed";
    case FailoverStep::Announced: return "announced";
    case FailoverStep::Done: return "done";
    }
    return "?";
}

namespace {

std::string ms_text(const std::optional<double>& v) {
    if (!v) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%+.1fms", *v);
    return buf;
}

}  // namespace

std::string FailoverBreakdown::line() const {
    std::string o = "failover breakdown: departed=";
    for (std::size_t i = 0; i < departed.size(); ++i) o += (i ? "," : "") + departed[i];
    if (departed.empty()) o += "-";
    o += " ring=" + std::to_string(ring) + " addresses=" + std::to_string(addresses) +
         " failed=" + std::to_string(failed);
    for (std::size_t i = 0; i < kFailoverSteps; ++i)
        o += std::string(" ") + key_of(static_cast<FailoverStep>(i)) + "=" + ms_text(at[i]);
    o += " first_announced=" + ms_text(first_announced) + " first_done=" + ms_text(first_done);
    if (!complete) o += " incomplete";
    return o;
}

void FailoverTrace::membership(double now, std::uint64_t ring, const std::vector<std::string>& departed) {
    if (departed.empty()) {
        // The group's confchg carries the ring it was known in; the totem
        // confchg that follows names the new one, whose quorum is awaited.
        if (open_ && ring != cur_.ring && !cur_[FailoverStep::Totem]) {
            mark_first(now, FailoverStep::Totem);
            cur_.ring = ring;
            cur_.at[static_cast<std::size_t>(FailoverStep::Quorum)].reset();
            if (quorum_at_ && quorum_ring_ == ring) mark_first(*quorum_at_, FailoverStep::Quorum);
        }
        return;
    }
    if (open_) close(pending_.empty());
    open_ = true;
    origin_ = now;
    cur_ = FailoverBreakdown{};
    cur_.ring = ring;
    cur_.departed = departed;
    cur_.at[static_cast<std::size_t>(FailoverStep::Membership)] = 0.0;
    if (quorum_at_ && quorum_ring_ == ring)
        cur_.at[static_cast<std::size_t>(FailoverStep::Quorum)] = (*quorum_at_ - now) * 1000.0;
}

void FailoverTrace::quorum(double now, std::uint64_t ring, bool quorate) {
    if (!quorate) {
        quorum_ring_ = ring;
        quorum_at_.reset();
        return;
    }
    if (quorum_ring_ != ring || !quorum_at_) {
        quorum_ring_ = ring;
        quorum_at_ = now;
    }
    if (open_ && ring == cur_.ring) mark_first(*quorum_at_, FailoverStep::Quorum);
}

void FailoverTrace::fenced(double now) {
    if (open_) mark_first(now, FailoverStep::Fence);
}

void FailoverTrace::planned(double now) {
    if (!open_ || plan_at_) return;
    plan_at_ = now;
    mark_first(now, FailoverStep::Plan);
}

void FailoverTrace::sent(double now) {
    if (open_ && plan_at_) mark_first(now, FailoverStep::Sent);
}

void FailoverTrace::ordered(double now, const ServiceAddress& a) {
    if (!open_) return;
    mark_first(now, FailoverStep::Ordered);
    if (seen_.emplace(a, std::set<FailoverStep>{}).second) cur_.addresses++;
    pending_.insert(a);
}

void FailoverTrace::step(double now, const ServiceAddress& a, FailoverStep s) {
    if (!open_ || !pending_.count(a)) return;
    if (!seen_[a].insert(s).second) return;
    mark_last(now, s);
    if (s == FailoverStep::Announced && !cur_.first_announced) cur_.first_announced = (now - origin_) * 1000.0;
}

void FailoverTrace::done(double now, const ServiceAddress& a, bool ok) {
    if (!open_ || !pending_.erase(a)) return;
    if (ok) {
        mark_last(now, FailoverStep::Done);
        if (!cur_.first_done) cur_.first_done = (now - origin_) * 1000.0;
    } else {
        cur_.failed++;
    }
    if (pending_.empty()) close(true);
}

void FailoverTrace::tick(double now) {
    if (!open_) return;
    if (now - origin_ >= kMaxSpan) close(pending_.empty());
    else if (plan_at_ && seen_.empty() && now - *plan_at_ >= kQuietAfterPlan) close(true);
}

std::optional<double> FailoverTrace::next_wake() const {
    if (!open_) return std::nullopt;
    double at = origin_ + kMaxSpan;
    if (plan_at_ && seen_.empty()) at = std::min(at, *plan_at_ + kQuietAfterPlan);
    return at;
}

std::optional<FailoverBreakdown> FailoverTrace::take_closed() {
    std::optional<FailoverBreakdown> out;
    out.swap(closed_);
    return out;
}

void FailoverTrace::close(bool complete) {
    open_ = false;
    if (plan_at_ || !seen_.empty()) {
        cur_.complete = complete && pending_.empty();
        closed_ = cur_;
        last_ = cur_;
    }
    pending_.clear();
    seen_.clear();
    plan_at_.reset();
}

void FailoverTrace::mark_first(double now, FailoverStep s) {
    auto& v = cur_.at[static_cast<std::size_t>(s)];
    if (!v) v = (now - origin_) * 1000.0;
}

void FailoverTrace::mark_last(double now, FailoverStep s) {
    auto& v = cur_.at[static_cast<std::size_t>(s)];
    double ms = (now - origin_) * 1000.0;
    if (!v || ms > *v) v = ms;
}

}  // namespace rais
