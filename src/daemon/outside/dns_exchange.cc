#include "daemon/outside/dns_exchange.h"

#include "daemon/log.h"

namespace rais {

namespace {

std::set<std::string> ips_of(const std::set<ServiceAddress>& s) {
    std::set<std::string> out;
    for (const auto& a : s) out.insert(a.ip());
    return out;
}

std::string list_of(const std::set<std::string>& s) {
    std::string out;
    for (const auto& a : s) out += (out.empty() ? "" : " ") + a;
    return out.empty() ? "nothing" : out;
}

}  // namespace

DnsExchange::DnsExchange(const GroupConfig& running, Callbacks cb) : cfg_(running), cb_(std::move(cb)) {}

DnsExchange::~DnsExchange() {
    if (retry_) g_source_remove(retry_);
}

bool DnsExchange::configure(std::string* error) {
    updater_.reset();
    wanted_.reset();
    server_set_.reset();
    if (retry_) g_source_remove(retry_);
    retry_ = 0;
    if (cfg_.dns_server.empty()) return true;
    DnsTarget t{cfg_.dns_server, cfg_.dns_zone, cfg_.dns_owner(), cfg_.dns_ttl, cfg_.dns_key};
    std::string e;
    updater_ = DnsUpdater::create(t, &e);
    if (!updater_) {
        *error = "DNS: " + e;
        return false;
    }
    log_text(LogLevel::Info, "DNS: the leader keeps " + cfg_.dns_owner() + "." + cfg_.dns_zone + " at " +
                                 cfg_.dns_server + (cfg_.dns_key.empty() ? " (unsigned updates)" : " (TSIG)"));
    return true;
}

void DnsExchange::publish(const std::set<ServiceAddress>& wanted) {
    wanted_ = wanted;
    pump();
}

void DnsExchange::follow() {
    // Only the leader writes the zone; a new leader reads it first.
    if (!updater_) return;
    wanted_.reset();
    server_set_.reset();
}

void DnsExchange::pump() {
    if (!updater_ || updater_->busy() || retry_ || !wanted_ || !cb_.leading()) return;
    if (!server_set_) {
        updater_->read([this](const DnsResult& r) { done(true, r); });
        return;
    }
    std::set<std::string> want = ips_of(*wanted_);
    if (want == *server_set_) return;
    updater_->replace(*server_set_, want, [this](const DnsResult& r) { done(false, r); });
}

void DnsExchange::retry_later() {
    if (retry_) return;
    // Each try already waits up to 2 s for an answer: retrying 1 s later
    // costs the server nothing and catches up within ~2 s of its return.
    retry_ = g_timeout_add_seconds(
        1,
        [](gpointer p) -> gboolean {
            auto* self = static_cast<DnsExchange*>(p);
            self->retry_ = 0;
            self->pump();
            return G_SOURCE_REMOVE;
        },
        this);
}

void DnsExchange::done(bool read, const DnsResult& r) {
    last_ = Outcome{g_get_real_time(), std::string(read ? "read: " : "update: ") + (r.ok ? "ok" : "FAILED") + " (" +
                                           r.detail + ")"};
    // The server's addresses, as the configured ServiceAddresses they are.
    std::optional<std::set<ServiceAddress>> published;
    if (r.published_known) {
        std::set<ServiceAddress> s;
        for (const auto& pa : cfg_.addresses)
            if (r.published.count(pa.address.ip())) s.insert(pa.address);
        published = s;
        server_set_ = r.published;
    }
    if (r.ok) {
        prereq_failures_ = 0;
        cb_.result(in::DnsResult{true, read, r.detail, published});
        return pump();
    }
    if (!read && r.published_known && r.outcome == DnsOutcome::Prerequisite && ++prereq_failures_ <= 3) {
        // The zone was not what we believed (another writer, a lost
        // answer): retry at once from the fresh read.
        log_text(LogLevel::Notice, "DNS: " + r.detail + "; the server has " + list_of(r.published) +
                                       ", retrying from there");
        return pump();
    }
    server_set_.reset();  // read again before the next update
    cb_.result(in::DnsResult{false, read, r.detail, std::nullopt});
    retry_later();
}

}  // namespace rais
