#include "daemon/daemon.h"

#include <corosync/cmap.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>
#include <variant>

#include "core/glib_ptr.h"
#include "core/planner.h"
#include "core/text.h"
#include "core/view_json.h"
#include "daemon/cluster/fencing_state.h"
#include "daemon/log.h"
#include "daemon/validate.h"

namespace rais {

namespace {

constexpr std::size_t kEventRing = 1000;

struct KeyFileDeleter {
    void operator()(GKeyFile* k) const { g_key_file_free(k); }
};
struct StrvDeleter {
    void operator()(gchar** v) const { g_strfreev(v); }
};

std::string wall_time(gint64 us) {
    GDateTime* dt = g_date_time_new_from_unix_local(us / G_USEC_PER_SEC);
    if (!dt) return "?";
    GCharPtr s(g_date_time_format(dt, "%Y-%m-%d %H:%M:%S"));
    g_date_time_unref(dt);
    char ms[8];
    std::snprintf(ms, sizeof ms, ".%03d", static_cast<int>((us / 1000) % 1000));
    return std::string(s.get()) + ms;
}

std::string errno_text(const std::string& path, const char* step) {
    return path + ": " + step + std::strerror(errno);
}

// Replaces `path` with `text` so that a crash or a full disk leaves the old
// file or the new one, never a torn or empty one: a temporary file in the
// same directory, written, fsynced, renamed over `path`, and the directory
// fsynced so the rename itself survives a power loss. Returns what failed
// ("PATH: writing: No space left on device"); no temporary file stays behind.
std::optional<std::string> replace_file(const std::string& path, const std::string& text) {
    std::string tmp = path + ".XXXXXX";
    int fd = g_mkstemp_full(tmp.data(), O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) return errno_text(path, "creating a temporary file beside it: ");
    std::optional<std::string> err;
    for (std::size_t done = 0; !err && done < text.size();) {
        ssize_t n = write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno != EINTR) err = errno_text(path, "writing: ");
        if (n > 0) done += static_cast<std::size_t>(n);
    }
    if (!err && fsync(fd) != 0) err = errno_text(path, "fsync: ");
    if (close(fd) != 0 && !err) err = errno_text(path, "writing: ");
    if (!err && rename(tmp.c_str(), path.c_str()) != 0) err = errno_text(path, "renaming the temporary file over it: ");
    if (err) {
        unlink(tmp.c_str());
        return err;
    }
    GCharPtr dir(g_path_get_dirname(path.c_str()));
    int dfd = open(dir.get(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) err = errno_text(path, "fsync of its directory: ");
    if (dfd >= 0) close(dfd);
    return err;
}

}  // namespace

std::optional<std::string> load_config_file(const std::string& path, GroupConfig* out) {
    std::unique_ptr<GKeyFile, KeyFileDeleter> kf(g_key_file_new());
    GError* e = nullptr;
    if (!g_key_file_load_from_file(kf.get(), path.c_str(), G_KEY_FILE_NONE, &e)) {
        GErrorPtr owned(e);
        return path + ": " + owned->message;
    }
    gsize ngroups = 0;
    std::unique_ptr<gchar*, StrvDeleter> groups(g_key_file_get_groups(kf.get(), &ngroups));
    for (gsize i = 0; i < ngroups; i++)
        if (std::strcmp(groups.get()[i], kConfigSection) != 0)
            return path + ": unknown section [" + groups.get()[i] + "] (only [" + kConfigSection + "] is read)";
    if (!g_key_file_has_group(kf.get(), kConfigSection)) return path + ": no [" + kConfigSection + "] section";
    gsize nkeys = 0;
    std::unique_ptr<gchar*, StrvDeleter> keys(g_key_file_get_keys(kf.get(), kConfigSection, &nkeys, nullptr));
    std::vector<std::pair<std::string, std::string>> pairs;
    for (gsize i = 0; i < nkeys; i++) {
        GError* ve = nullptr;
        GCharPtr v(g_key_file_get_string(kf.get(), kConfigSection, keys.get()[i], &ve));
        if (!v) {
            GErrorPtr owned(ve);
            return path + ": key '" + keys.get()[i] + "': " + owned->message;
        }
        pairs.emplace_back(keys.get()[i], v.get());
    }
    GroupConfig cfg;
    if (auto err = parse_config(pairs, &cfg)) return path + ": " + err->message;
    if (cfg.group.empty())
        return path + ": parameter '" + name(Param::Group) + "' is required (the service group's name)";
    *out = std::move(cfg);
    return std::nullopt;
}

Daemon::Daemon(DaemonOptions opts, GroupConfig cfg)
    : opts_(std::move(opts)), cfg_(std::move(cfg)), loop_(g_main_loop_new(nullptr, FALSE), g_main_loop_unref) {
    plan_seed_ = static_cast<std::uint64_t>(g_get_real_time()) ^ static_cast<std::uint64_t>(getpid());
    DnsExchange::Callbacks dcb;
    dcb.leading = [this] { return member_ && member_->is_leader(); };
    dcb.result = [this](const in::DnsResult& r) { feed(r); };
    dns_ = std::make_unique<DnsExchange>(cfg_, std::move(dcb));
}

Daemon::~Daemon() {
    if (timer_) g_source_remove(timer_);
    if (info_idle_) g_source_remove(info_idle_);
    for (guint s : signal_sources_)
        if (s) g_source_remove(s);
}

double Daemon::now() const { return static_cast<double>(g_get_monotonic_time()) / 1e6; }

std::string Daemon::quiesce_path() const { return opts_.run_dir + "/" + cfg_.group + ".quiesced"; }
std::string Daemon::pid_path() const { return opts_.run_dir + "/" + cfg_.group + ".pid"; }

std::vector<std::pair<std::uint32_t, std::string>> Daemon::nodelist() const {
    // name, else ring0_addr, as Pacemaker names nodes.
    std::vector<std::pair<std::uint32_t, std::string>> nodes;
    cmap_handle_t h;
    if (cmap_initialize(&h) != CS_OK) return nodes;
    for (int i = 0; i < 1024; i++) {
        std::string base = "nodelist.node." + std::to_string(i) + ".";
        std::uint32_t id = 0;
        if (cmap_get_uint32(h, (base + "nodeid").c_str(), &id) != CS_OK) break;
        char* v = nullptr;
        if (cmap_get_string(h, (base + "name").c_str(), &v) == CS_OK ||
            cmap_get_string(h, (base + "ring0_addr").c_str(), &v) == CS_OK) {
            nodes.emplace_back(id, v);
            std::free(v);
        }
    }
    cmap_finalize(h);
    return nodes;
}

std::string Daemon::resolve_node_name() {
    if (!opts_.node_name.empty()) return opts_.node_name;
    std::uint32_t local = cpg_ ? cpg_->local_node() : 0;
    for (const auto& [id, name] : nodelist())
        if (id == local) return name;
    // The host name only as a last resort.
    return g_get_host_name();
}

int Daemon::run() {
    if (g_mkdir_with_parents(opts_.run_dir.c_str(), 0750) != 0) {
        log_text(LogLevel::Error, "cannot create " + opts_.run_dir + ": " + std::strerror(errno));
        return 1;
    }
    std::string err;
    AddressBackend::Callbacks bcb;
    bcb.done = [this](const ServiceAddress& a, bool acquire, bool ok, const std::string& detail) {
        if (releasing_on_exit_ > 0 && !acquire) {
            if (--releasing_on_exit_ == 0) quit(1);
            return;
        }
        if (acquire) trace_.done(now(), a, ok);
        feed(in::ActionDone{a, acquire, ok, detail});
    };
    bcb.step = [this](const ServiceAddress& a, AcquireStep s, double at) {
        trace_.step(at, a, failover_step(s));
        report_failover();
    };
    bcb.lost = [this](const ServiceAddress& a, const std::string& why) { feed(in::AddressLost{a, why}); };
    // A group address the administrator configured permanently appeared or
    // went away (rule 4.10): the core treats it as held, never ours to move.
    bcb.fixed = [this](const ServiceAddress& a, bool present) { feed(in::Fixed{a, present}); };
    bcb.log = log_text;
    backend_ = AddressBackend::create(backend_options(), bcb, &err);
    if (!backend_) {
        log_text(LogLevel::Error, "address backend: " + err);
        return 1;
    }

    CpgTransport::Callbacks ccb;
    ccb.membership = [this](const in::Membership& m) { feed(m); };
    ccb.deliver = [this](const Process& from, std::vector<std::uint8_t> bytes) {
        feed(in::Delivered{from, std::move(bytes)});
    };
    ccb.lost = [this](const std::string& why) { on_corosync_lost(why); };
    ccb.log = log_text;
    ccb.drained = [this] { trace_.sent(now()); };
    cpg_ = std::make_unique<CpgTransport>(cfg_.group, ccb);
    if (!cpg_->open(&err)) {
        log_text(LogLevel::Error, err);
        return 1;
    }

    control_ = std::make_unique<ControlServer>(
        cfg_.group, [this](const ControlRequest& r, const Peer& p) { return handle(r, p); });
    if (!control_->open(&err)) {
        log_text(LogLevel::Error, err);
        return 1;
    }

    MemberSetup s;
    s.config = cfg_;
    s.self = {cpg_->local_node(), cpg_->local_pid()};
    s.name = resolve_node_name();
    // fencing=auto honours the cluster's stonith-enabled once Pacemaker
    // answers; until then departures wait (the safe side), and a host with
    // no Pacemaker answers "off" within a moment.
    s.fencing_active = cfg_.fencing != Fencing::Off;
    if (cfg_.fencing == Fencing::Auto)
        log_text(LogLevel::Info, "fencing=auto: asking Pacemaker whether the cluster fences (stonith-enabled)");
    s.quiesced = g_file_test(quiesce_path().c_str(), G_FILE_TEST_EXISTS);
    std::vector<ServiceAddress> group;
    for (const auto& p : cfg_.addresses) group.push_back(p.address);
    s.found = backend_->present(group);
    s.fixed = backend_->permanent(group);  // and watches the group from now on
    for (const auto& a : s.fixed)
        log_text(LogLevel::Notice, a.str() + " is a permanent address on this host (configured by the "
                                             "administrator): raisd will neither move nor remove it");
    s.seed = plan_seed_;
    log_text(LogLevel::Notice, "starting: node " + s.name + " (id " + std::to_string(s.self.node) + "), pid " +
                                   std::to_string(s.self.pid) + ", " + std::to_string(cfg_.addresses.size()) +
                                   " address(es), digest " + cfg_.digest().substr(0, 12) +
                                   (s.quiesced ? ", quiesced" : ""));
    member_ = std::make_unique<Member>(s);
    apply(member_->start(now()));
    update_fencing_mode();   // corosync's two_node, before any departure
    start_load_meter();

    start_health_tests();
    if (!start_dns(&err)) {
        log_text(LogLevel::Error, err);
        return 1;
    }
    if (!start_notifier(&err)) {
        log_text(LogLevel::Error, err);
        return 1;
    }

    PacemakerLink::Callbacks pcb;
    pcb.fenced = [this](const std::string& target, const std::string&) {
        std::uint32_t id = 0;
        for (const auto& [nid, name] : nodelist())
            if (name == target) id = nid;
        feed(in::Fenced{id, target});
    };
    pcb.stonith_enabled = [this](std::optional<bool> enabled, const std::string& detail) {
        on_stonith_enabled(enabled, detail);
    };
    pcb.log = log_text;
    pacemaker_ = std::make_unique<PacemakerLink>(cfg_.group, true, pcb);
    pacemaker_->start();

    QuorumWatch::Callbacks qcb;
    qcb.quorum = [this](const in::Quorum& q) { feed(q); };
    qcb.lost = [this](const std::string& why) { on_corosync_lost(why); };
    quorum_ = std::make_unique<QuorumWatch>(qcb);
    if (!quorum_->open(&err)) {
        log_text(LogLevel::Error, err);
        return 1;
    }

    if (auto e = replace_file(pid_path(), std::to_string(getpid()) + "\n"))
        log_text(LogLevel::Error, "pid file not written: " + *e);
    auto on_term = [](gpointer p) -> gboolean {
        auto* self = static_cast<Daemon*>(p);
        log_text(LogLevel::Notice, "SIGTERM: graceful stop");
        self->feed(in::Command{CommandKind::Stop, "", std::nullopt});
        return G_SOURCE_CONTINUE;
    };
    signal_sources_[0] = g_unix_signal_add(SIGTERM, on_term, this);
    signal_sources_[1] = g_unix_signal_add(SIGINT, on_term, this);
    signal_sources_[2] = g_unix_signal_add(
        SIGHUP,
        [](gpointer p) -> gboolean {
            static_cast<Daemon*>(p)->reload();
            return G_SOURCE_CONTINUE;
        },
        this);
    arm_timer();
    g_main_loop_run(loop_.get());
    if (cpg_) cpg_->leave();
    unlink(pid_path().c_str());
    return exit_code_;
}

void Daemon::quit(int code) {
    if (quitting_) return;
    quitting_ = true;
    exit_code_ = code;
    g_main_loop_quit(loop_.get());
}

void Daemon::on_corosync_lost(const std::string& why) {
    if (lost_) return;
    lost_ = true;
    log_text(LogLevel::Error, why + "; releasing every address and exiting");
    if (!member_) return quit(1);
    for (const auto& [a, st] : member_->held()) {
        (void)st;
        releasing_on_exit_++;
        backend_->release(a);
    }
    if (releasing_on_exit_ == 0) quit(1);
    // Never hang on a release that does not complete.
    g_timeout_add_seconds(
        5,
        [](gpointer p) -> gboolean {
            static_cast<Daemon*>(p)->quit(1);
            return G_SOURCE_REMOVE;
        },
        this);
}

void Daemon::reload() {
    // A reload this daemon cannot honour is refused whole: the running
    // configuration stays, the error is logged and shown by status --json
    // (the agent's reload-agent reads it). The checks are raisd --check's.
    reload_resolution_.reset();   // a newer SIGHUP supersedes one still resolving
    GroupConfig next;
    if (auto err = load_config_file(opts_.config_path, &next)) return refuse_reload(*err);
    const ParamSet changed = cfg_.diff(next);
    for (Param p : restart_only_params())
        if (changed.has(p)) return refuse_reload(quoted_names(restart_only_params()) + " change only with a restart");
    if (auto t = read_two_node()) two_node_ = t;
    if (auto p = validate_config(next, two_node_)) return refuse_reload(p->message);
    if (!changed.any({Param::SnmpTraps, Param::SnmpCommunity}) || next.snmp_traps.empty())
        return commit_reload(next, {});
    // New trap hosts: resolved off the loop, then applied or refused.
    reload_resolution_ = TrapResolution::start(
        next.snmp_traps, [this, next](bool ok, const std::vector<std::string>& peers, const std::string& error) {
            auto self_owned = std::move(reload_resolution_);   // ends with this call (allowed from `done`)
            if (!ok) return refuse_reload(param_message(Param::SnmpTraps, error + " (on this host)"));
            commit_reload(next, peers);
        });
}

void Daemon::refuse_reload(const std::string& why) {
    reload_attempts_++;
    reload_error_ = why;
    log_text(LogLevel::Error, "SIGHUP: not reloaded: " + why + "; the running configuration (digest " +
                                  cfg_.digest().substr(0, 12) + ") stays");
}

void Daemon::commit_reload(const GroupConfig& next, const std::vector<std::string>& snmp_peers) {
    const ParamSet changed = cfg_.diff(next);
    bool tests_changed = changed.any({Param::Tests, Param::TestInterval});
    bool dns_changed = changed.any({Param::DnsServer, Param::DnsZone, Param::DnsName, Param::DnsTtl, Param::DnsKey});
    bool snmp_changed = changed.any({Param::SnmpTraps, Param::SnmpCommunity});
    bool load_changed = changed.any({Param::Load, Param::Capacity, Param::Interval});
    std::set<ServiceAddress> before;  // for the permanent-address watch below
    for (const auto& p : cfg_.addresses) before.insert(p.address);
    cfg_ = next;
    reload_attempts_++;
    config_generation_++;
    reload_error_.clear();
    log_text(LogLevel::Notice, "SIGHUP: reloaded (generation " + std::to_string(config_generation_) + ", digest " +
                                   cfg_.digest().substr(0, 12) + ")");
    feed(in::Reload{next});
    {
        // Watch the new group; of its new addresses, the permanent ones are
        // fixed from the start (changes of the others come through bcb.fixed).
        std::vector<ServiceAddress> group;
        for (const auto& p : cfg_.addresses) group.push_back(p.address);
        for (const auto& a : backend_->permanent(group))
            if (!before.count(a)) feed(in::Fixed{a, true});
    }
    update_fencing_mode();
    std::string err;
    if (tests_changed) start_health_tests();
    // Validated like the start; a failure now means a file changed since.
    if (dns_changed && !start_dns(&err)) log_text(LogLevel::Error, "SIGHUP: " + err + "; DNS updates stop");
    if (load_changed) start_load_meter();
    if (changed.any({Param::ArpProbeMs, Param::AnnounceInterval, Param::Hook})) backend_->reconfigure(backend_options());
    if (snmp_changed && !start_notifier(&err, snmp_peers))
        log_text(LogLevel::Error, "SIGHUP: " + err + "; no SNMP traps");
}

std::vector<ServiceAddress> Daemon::held_addresses() const {
    std::vector<ServiceAddress> held;
    if (member_)
        for (const auto& [a, st] : member_->held()) held.push_back(a);
    return held;
}

void Daemon::start_load_meter() {
    load_ = std::make_unique<LoadMeter>(
        cfg_.load, cfg_.capacity, cfg_.nic, cfg_.interval_ms, [this](double load, double cap) { feed(in::LoadSample{load, cap}); },
        log_text);
    load_->set_addresses(held_addresses());
    load_->start();
}

bool Daemon::start_dns(std::string* err) { return dns_->configure(err); }

void Daemon::start_health_tests() {
    health_.reset();
    if (cfg_.tests.empty()) return;
    health_ = std::make_unique<HealthTests>(
        cfg_.tests, cfg_.test_interval_ms,
        [this](bool ok, const std::string& detail) {
            if (!ok && last_test_ok_) log_text(LogLevel::Warning, "health test failed: " + detail);
            if (ok && !last_test_ok_) log_text(LogLevel::Info, "health tests pass");
            last_test_ok_ = ok;
            feed(in::TestResult{ok, detail});
        },
        log_text);
    health_->start();
}

bool Daemon::start_notifier(std::string* err, const std::vector<std::string>& snmp_peers) {
    Notifier::Options o;
    o.snmp_peers = snmp_peers;
    o.group = cfg_.group;
    o.node = member_ ? member_->name() : "";
    o.node_id = cpg_ ? cpg_->local_node() : 0;
    o.snmp_traps = cfg_.snmp_traps;
    o.snmp_community = cfg_.snmp_community;
    auto n = Notifier::create(o, log_text,
                              err);
    if (!n) return false;
    notifier_ = std::move(n);
    return true;
}

void Daemon::on_stonith_enabled(std::optional<bool> enabled, const std::string& detail) {
    // PacemakerLink keeps the last real answer across failed queries:
    // nullopt here only means "no answer yet", which counts as on.
    stonith_enabled_ = enabled;
    stonith_detail_ = detail;
    update_fencing_mode();
}

void Daemon::update_fencing_mode() {
    if (auto t = read_two_node()) two_node_ = t;   // a failed read keeps the last answer
    StonithState st;
    st.enabled = stonith_enabled_;
    st.detail = stonith_detail_;
    feed(fencing_mode(cfg_.fencing, st, two_node_));
}

void Daemon::publish_attributes() {
    if (!pacemaker_ || !member_ || quitting_) return;
    std::string addresses;
    for (const auto& [a, st] : member_->held())
        if (st == AddressState::Online) addresses += (addresses.empty() ? "" : " ") + a.str();
    const char* role = member_->is_leader()                  ? "leader"
                       : member_->quiesced()                 ? "quiesced"
                       : cfg_.is_spare(member_->name())      ? "spare"
                                                             : "member";
    pacemaker_->publish("addresses", addresses);
    pacemaker_->publish("util", format_number("%.0f", member_->utilization()));
    pacemaker_->publish("role", role);
}

AddressBackendOptions Daemon::backend_options() const {
    AddressBackendOptions bo;
    bo.nic = cfg_.nic;
    bo.arp_probe_ms = cfg_.arp_probe_ms;
    bo.announce_interval = cfg_.announce_interval;
    bo.hook = cfg_.hook;
    return bo;
}

FailoverStep Daemon::failover_step(AcquireStep s) {
    switch (s) {
    case AcquireStep::ProbeSent: return FailoverStep::ProbeSent;
    case AcquireStep::ProbeSettled: return FailoverStep::ProbeSettled;
    case AcquireStep::Plumbed: return FailoverStep::Plumbed;
    case AcquireStep::Announced: return FailoverStep::Announced;
    }
    return FailoverStep::Done;
}

// What the failover trace learns from an input before the Member sees it.
void Daemon::observe(const Input& in) {
    double t = now();
    if (auto* m = std::get_if<in::Membership>(&in)) {
        std::vector<std::string> departed;
        for (const auto& [p, why] : m->left)
            if (why == ChangeReason::NodeDown || why == ChangeReason::ProcDown) departed.push_back(node_name(p.node));
        trace_.membership(t, m->ring, departed);
    } else if (auto* q = std::get_if<in::Quorum>(&in)) {
        trace_.quorum(t, q->ring, q->quorate);
    } else if (std::holds_alternative<in::Fenced>(in)) {
        trace_.fenced(t);
    } else if (std::holds_alternative<in::Tick>(in)) {
        trace_.tick(t);
    }
}

// corosync's name of a node (cached: the nodelist changes only with a
// corosync reload, so cmap is read again only for an id not seen yet, never
// on every membership change).
std::string Daemon::node_name(std::uint32_t id) {
    auto it = node_names_.find(id);
    if (it == node_names_.end()) {
        for (const auto& [n, name] : nodelist()) node_names_[n] = name;
        it = node_names_.find(id);
        if (it == node_names_.end()) return "node" + std::to_string(id);   // not cached: a reload may name it
    }
    return it->second;
}

// A closed failover breakdown goes to the log and, as a `failover` event,
// to raisctl events, the alert agents and the traps.
void Daemon::report_failover() {
    auto b = trace_.take_closed();
    if (!b || !member_) return;
    std::string departed;
    for (const auto& d : b->departed) departed += (departed.empty() ? "" : ",") + d;
    Event ev;
    ev.kind = EventKind::Failover;
    ev.time = now();
    ev.group = cfg_.group;
    ev.node = departed;
    ev.reason = b->line() + " (ms after the departure confchg on " + member_->name() + ")";
    effect(out::Emit{ev});
}

void Daemon::feed(const Input& in) {
    if (!member_ || lost_) return;
    observe(in);
    apply(member_->step(now(), in));
    report_failover();
    arm_timer();
    publish_attributes();
    if (!member_->is_leader()) dns_->follow();
    if (load_) load_->set_addresses(held_addresses());
}

void Daemon::arm_timer() {
    if (!member_ || quitting_) return;
    if (timer_) g_source_remove(timer_);
    double wake = member_->next_wake();
    if (auto t = trace_.next_wake()) wake = std::min(wake, *t);
    double wait = wake - now();
    guint ms = wait <= 0 ? 0 : static_cast<guint>(std::ceil(wait * 1000));
    timer_ = g_timeout_add(ms, [](gpointer p) -> gboolean {
        auto* self = static_cast<Daemon*>(p);
        self->timer_ = 0;
        self->feed(in::Tick{});
        return G_SOURCE_REMOVE;
    }, this);
}

void Daemon::apply(Effects fx) {
    for (auto& e : fx) std::visit([this](auto& x) { effect(x); }, e);
}

void Daemon::effect(out::Send& s) {
    if (!s.snapshot) {
        if (s.assignment) trace_.planned(now());
        cpg_->send(std::move(s.bytes));
        // Queued behind corosync's TRY_AGAIN: "sent" comes with the drain.
        if (s.assignment && cpg_->queued() == 0) trace_.sent(now());
        return;
    }
    // An Info is a full snapshot that replaces the one before: when one
    // batch of CPG deliveries (256 Acquires, say) changes our state 256
    // times, send the last state once, after the batch, instead of 256
    // growing snapshots.
    pending_info_ = std::move(s.bytes);
    if (!info_idle_)
        info_idle_ = g_idle_add([](gpointer p) -> gboolean {
            auto* self = static_cast<Daemon*>(p);
            self->info_idle_ = 0;
            if (self->cpg_ && !self->pending_info_.empty()) self->cpg_->send(std::move(self->pending_info_));
            self->pending_info_.clear();
            return G_SOURCE_REMOVE;
        }, this);
}

void Daemon::effect(const out::Plumb& p) {
    trace_.ordered(now(), p.address);
    backend_->acquire(p.address, p.probe, p.lifetime);
}
void Daemon::effect(const out::Unplumb& u) { backend_->release(u.address); }
void Daemon::effect(const out::Refresh& r) { backend_->refresh(r.addresses, r.lifetime); }
void Daemon::effect(const out::DnsPublish& d) { dns_->publish(d.addresses); }
void Daemon::effect(const out::Log& l) { log_text(l.level, l.text); }

void Daemon::effect(const out::Emit& em) {
    const Event& ev = em.event;
    log_text(LogLevel::Notice, std::string("event ") + to_string(ev.kind) + " " + (ev.node.empty() ? "-" : ev.node) +
                                   " " + (ev.address ? ev.address->str() : "-") + ": " + ev.reason);
    gint64 wall = g_get_real_time();
    events_.push_back({ev, wall});
    if (events_.size() > kEventRing) events_.pop_front();
    if (notifier_) notifier_->notify(ev, wall);
}

void Daemon::effect(const out::PersistQuiesce& q) {
    // The flag is what a restart reads back (MemberSetup::quiesced): a
    // failure to keep it is an operator's problem, shown in the log and by
    // `raisctl status` until a later write succeeds.
    std::optional<std::string> err;
    if (q.quiesced) err = replace_file(quiesce_path(), "quiesced\n");
    else if (unlink(quiesce_path().c_str()) != 0 && errno != ENOENT)
        err = errno_text(quiesce_path(), "removing: ");
    quiesce_error_ = err.value_or("");
    if (err)
        log_text(LogLevel::Error, std::string("quiesce flag not ") + (q.quiesced ? "written" : "removed") + ": " +
                                      *err + "; a restart of raisd will " + (q.quiesced ? "not " : "") +
                                      "come back quiesced");
}

void Daemon::effect(const out::Reply& r) {
    reply_ = ControlResponse{r.ok ? 0 : 1, r.ok ? r.message + "\n" : "", r.ok ? "" : "raisctl: " + r.message + "\n"};
}

void Daemon::effect(const out::Exit& x) {
    log_text(LogLevel::Notice, "exiting: " + x.why);
    if (cpg_) cpg_->leave();
    quit(x.code);
}

// ---------------------------------------------------------------- control

ControlResponse Daemon::handle(const ControlRequest& r, const Peer& peer) {
    auto usage = [](const std::string& m) { return ControlResponse{2, "", "raisctl: " + m + "\n"}; };
    bool json = false;
    std::vector<std::string> words;
    for (const auto& a : r.args) {
        if (a == "--json") json = true;
        else words.push_back(a);
    }
    if (r.command == "status") return status(json);
    if (r.command == "events") return events(json);
    if (r.command == "plan") return plan_fail(words);

    static const std::set<std::string> mutating = {"quiesce", "unquiesce", "move"};
    if (!mutating.count(r.command)) return usage("unknown command '" + r.command + "'");
    if (!peer.may_change)
        return ControlResponse{1, "", "raisctl: permission denied: '" + r.command +
                                          "' needs root or membership of group haclient (uid " +
                                          std::to_string(peer.uid) + ")\n"};
    in::Command c;
    if (r.command == "quiesce" || r.command == "unquiesce") {
        c.kind = r.command == "quiesce" ? CommandKind::Quiesce : CommandKind::Unquiesce;
        if (!words.empty()) c.node = words[0];
    } else {
        bool unpin = false;
        std::vector<std::string> pos;
        for (const auto& w : words) {
            if (w == "--unpin") unpin = true;
            else pos.push_back(w);
        }
        if (pos.empty()) return usage("move needs ADDRESS [NODE]");
        std::string why;
        auto a = ServiceAddress::parse(pos[0], &why, false);
        if (!a) return usage("move: " + why);
        // Addresses may be given without their prefix: find the configured one.
        for (const auto& p : cfg_.addresses)
            if (p.address == *a) a = p.address;
        c.address = *a;
        if (unpin) {
            c.kind = CommandKind::Unpin;
        } else {
            if (pos.size() < 2) return usage("move needs ADDRESS NODE");
            c.kind = CommandKind::Move;
            c.node = pos[1];
        }
    }
    reply_.reset();
    feed(c);
    if (!reply_) return ControlResponse{1, "", "raisctl: raisd gave no answer\n"};
    ControlResponse resp = *reply_;
    reply_.reset();
    return resp;
}

ControlResponse Daemon::status(bool json) {
    double t = now();
    MemberStatus st = member_->status(t);
    View v = member_->view(t);
    ShellStatus shell;
    shell.reload_attempts = reload_attempts_;
    shell.config_generation = config_generation_;
    shell.reload_error = reload_error_;
    if (const auto& last = dns_->last()) shell.dns_last = wall_time(last->wall_us) + " " + last->text;
    shell.quiesce_error = quiesce_error_;
    shell.last_failover = trace_.last();
    StatusInput in{st, v, cfg_, shell, t};
    return ControlResponse{0, json ? status_json(in) : status_text(in), ""};
}

ControlResponse Daemon::events(bool json) {
    return ControlResponse{0, json ? events_json(events_) : events_text(events_, wall_time), ""};
}

ControlResponse Daemon::plan_fail(const std::vector<std::string>& words) {
    std::vector<std::string> nodes;
    for (std::size_t i = 0; i < words.size(); i++) {
        if (words[i] == "--fail") continue;
        nodes.push_back(words[i]);
    }
    if (nodes.empty()) return ControlResponse{2, "", "raisctl: plan --fail needs at least one NODE\n"};
    View v = member_->view(now());
    for (const auto& n : nodes) {
        auto it = std::find_if(v.hosts.begin(), v.hosts.end(), [&](const HostView& h) { return h.node == n; });
        if (it == v.hosts.end())
            return ControlResponse{2, "", "raisctl: '" + n + "' is not a member of group " + cfg_.group + "\n"};
        v.hosts.erase(it);
    }
    RandomSource random(plan_seed_);
    Plan p = plan(v, random);
    std::string o, e;
    for (const auto& d : p.decisions) o += decision_to_json(d) + "\n";
    for (const auto& n : p.notes) e += "raisctl: note: " + n + "\n";
    return ControlResponse{0, o, e};
}

}  // namespace rais
