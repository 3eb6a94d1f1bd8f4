// Daemon: raisd's shell around one Member (DESIGN §2). One GLib main loop
// carries the CPG and quorum fds, the netlink sockets, the control socket,
// the Member's timer and the signals. Every input goes through feed(),
// every effect through apply(); nothing else touches the Member, so the
// core sees exactly the sequence of events this host saw. The Daemon wires
// the adapters to the Member and applies its effects; what it shows is
// rendered by core/status_view, the DNS exchange is outside/dns_exchange's.
#pragma once

#include <glib.h>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "common/control_protocol.h"
#include "core/config.h"
#include "core/failover_trace.h"
#include "core/member.h"
#include "core/status_view.h"
#include "daemon/kernel/address_backend.h"
#include "daemon/control/control_server.h"
#include "daemon/cluster/cpg_transport.h"
#include "daemon/outside/dns_exchange.h"
#include "daemon/service/health_tests.h"
#include "daemon/service/load_meter.h"
#include "daemon/outside/notifier.h"
#include "daemon/cluster/pacemaker.h"
#include "daemon/cluster/quorum_watch.h"

namespace rais {

// Reads raisd's key file ([group] section, keys = agent parameters). On
// error returns a message naming the file, the key and the problem.
std::optional<std::string> load_config_file(const std::string& path, GroupConfig* out);

struct DaemonOptions {
    std::string config_path;
    std::string run_dir = "/run/rais";   // pid, quiesce flag
    std::string node_name;                // override of the cluster node name
};

class Daemon {
public:
    Daemon(DaemonOptions opts, GroupConfig cfg);
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Runs until a graceful stop completes or corosync goes away; returns
    // the exit status (0 clean, 1 failure).
    int run();

private:
    double now() const;
    void feed(const Input& in);
    void apply(Effects fx);
    // One per effect type (apply() visits the variant: a new type that has
    // no overload here does not compile).
    void effect(out::Send& s);
    void effect(const out::Plumb& p);
    void effect(const out::Unplumb& u);
    void effect(const out::Refresh& r);
    void effect(const out::Emit& e);
    void effect(const out::DnsPublish& d);
    void effect(const out::Log& l);
    void effect(const out::PersistQuiesce& q);
    void effect(const out::Reply& r);
    void effect(const out::Exit& x);
    void arm_timer();
    void observe(const Input& in);
    std::string node_name(std::uint32_t id);
    void report_failover();
    static FailoverStep failover_step(AcquireStep s);
    AddressBackendOptions backend_options() const;
    void quit(int code);
    void on_corosync_lost(const std::string& why);
    void reload();
    void refuse_reload(const std::string& why);
    void commit_reload(const GroupConfig& next, const std::vector<std::string>& snmp_peers);
    ControlResponse handle(const ControlRequest& r, const Peer& peer);
    ControlResponse status(bool json);
    ControlResponse events(bool json);
    ControlResponse plan_fail(const std::vector<std::string>& nodes);
    std::string resolve_node_name();
    // corosync's nodelist (node id, name): Pacemaker and pcs know nodes by these names.
    std::vector<std::pair<std::uint32_t, std::string>> nodelist() const;
    void on_stonith_enabled(std::optional<bool> enabled, const std::string& detail);
    void update_fencing_mode();
    void publish_attributes();
    void start_health_tests();
    bool start_dns(std::string* err);
    void start_load_meter();
    std::vector<ServiceAddress> held_addresses() const;
    bool start_notifier(std::string* err, const std::vector<std::string>& snmp_peers = {});
    std::string quiesce_path() const;
    std::string pid_path() const;

    DaemonOptions opts_;
    GroupConfig cfg_;
    std::unique_ptr<GMainLoop, void (*)(GMainLoop*)> loop_;
    std::unique_ptr<CpgTransport> cpg_;
    std::unique_ptr<QuorumWatch> quorum_;
    std::unique_ptr<AddressBackend> backend_;
    std::unique_ptr<ControlServer> control_;
    std::unique_ptr<Member> member_;
    std::unique_ptr<LoadMeter> load_;
    std::unique_ptr<PacemakerLink> pacemaker_;
    std::unique_ptr<HealthTests> health_;
    bool last_test_ok_ = true;
    std::unique_ptr<Notifier> notifier_;
    std::unique_ptr<DnsExchange> dns_;            // reads cfg_: declared after it
    std::optional<bool> stonith_enabled_;          // the cluster's property; nullopt: not known
    std::string stonith_detail_ = "Pacemaker has not answered yet";
    std::optional<bool> two_node_;                 // corosync's quorum.two_node; nullopt: not known (counts as set)
    // Reloads (SIGHUP): every completed attempt counts, applied or refused;
    // the generation counts applied ones; the error is the last attempt's
    // ("" when it was applied). raisctl status --json shows them, so the
    // agent's reload-agent can tell a refusal from a success.
    std::uint64_t reload_attempts_ = 0;
    std::uint64_t config_generation_ = 1;
    std::string reload_error_;
    std::unique_ptr<TrapResolution> reload_resolution_;   // a reload waiting for its trap hosts to resolve
    std::deque<LoggedEvent> events_;
    std::string quiesce_error_;                   // the flag's last write or removal failed ("" = fine)
    std::optional<ControlResponse> reply_;        // set by out::Reply during a command
    guint timer_ = 0;
    guint info_idle_ = 0;
    std::vector<std::uint8_t> pending_info_;      // the newest Info, sent once the loop is idle
    guint signal_sources_[3] = {0, 0, 0};
    int exit_code_ = 0;
    bool quitting_ = false;
    bool lost_ = false;                           // corosync went away: release and leave
    std::size_t releasing_on_exit_ = 0;
    std::uint64_t plan_seed_ = 1;
    std::map<std::uint32_t, std::string> node_names_;   // node_name()'s cache
    FailoverTrace trace_;                         // the failover under way on this host, and the last one
};

}  // namespace rais
