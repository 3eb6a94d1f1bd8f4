#include "daemon/validate.h"

#include <corosync/cmap.h>
#include <glib.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/glib_ptr.h"
#include "daemon/outside/dns_updater.h"
#include "daemon/cluster/fencing_state.h"
#include "daemon/service/health_tests.h"
#include "daemon/service/load_meter.h"
#include "daemon/outside/trap_sender.h"

namespace rais {

namespace {

std::optional<bool> two_node_from_cmap() {
    cmap_handle_t h;
    if (cmap_initialize(&h) != CS_OK) return std::nullopt;
    std::optional<bool> result;
    // Any integer type: corosync stores it as u8, an older or hand-set key
    // may be another width.
    union {
        std::uint64_t u64;
        char bytes[16];
    } value{};
    std::size_t len = sizeof value;
    cmap_value_types_t type{};
    cs_error_t e = cmap_get(h, "quorum.two_node", &value, &len, &type);
    if (e == CS_ERR_NOT_EXIST) {
        result = false;
    } else if (e == CS_OK) {
        switch (type) {
        case CMAP_VALUETYPE_INT8: case CMAP_VALUETYPE_UINT8: {
            std::uint8_t v;
            std::memcpy(&v, &value, 1);
            result = v != 0;
            break;
        }
        case CMAP_VALUETYPE_INT16: case CMAP_VALUETYPE_UINT16: {
            std::uint16_t v;
            std::memcpy(&v, &value, 2);
            result = v != 0;
            break;
        }
        case CMAP_VALUETYPE_INT32: case CMAP_VALUETYPE_UINT32: {
            std::uint32_t v;
            std::memcpy(&v, &value, 4);
            result = v != 0;
            break;
        }
        case CMAP_VALUETYPE_INT64: case CMAP_VALUETYPE_UINT64:
            result = value.u64 != 0;
            break;
        case CMAP_VALUETYPE_STRING:
            result = std::string(value.bytes, strnlen(value.bytes, std::min(len, sizeof value))) == "1";
            break;
        default:
            break;   // not a type corosync gives it: unknown
        }
    }
    cmap_finalize(h);
    return result;
}

std::optional<std::string> executable(Param p, const std::string& path) {
    if (access(path.c_str(), X_OK) != 0)
        return param_message(p, "'" + path + "' is not an executable file (" + std::strerror(errno) + ")");
    return std::nullopt;
}

}  // namespace

// two_node_from_cmap() in a child process: libqb's IPC client logs through
// qb_log, and one qb_log call before raisd's qb_log_init leaves all of
// raisd's later logging silent (found by tests/daemon/reload-tests).
static std::optional<bool> two_node_from_cmap_in_child() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return std::nullopt;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return std::nullopt;
    }
    if (pid == 0) {
        close(fds[0]);
        auto v = two_node_from_cmap();
        char c = !v ? 'u' : *v ? '1' : '0';
        ssize_t n = write(fds[1], &c, 1);
        _exit(n == 1 ? 0 : 1);
    }
    close(fds[1]);
    char c = 'u';
    while (read(fds[0], &c, 1) < 0 && errno == EINTR) {
    }
    close(fds[0]);
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    if (c == '1') return true;
    if (c == '0') return false;
    return std::nullopt;
}

std::optional<bool> read_two_node(bool before_logging) {
    if (auto v = before_logging ? two_node_from_cmap_in_child() : two_node_from_cmap()) return v;
    const char* env = std::getenv("COROSYNC_MAIN_CONFIG_FILE");
    std::string path = env && *env ? env : "/etc/corosync/corosync.conf";
    gchar* raw = nullptr;
    gsize len = 0;
    if (!g_file_get_contents(path.c_str(), &raw, &len, nullptr)) return std::nullopt;
    GCharPtr text(raw);
    return corosync_conf_two_node(std::string(text.get(), len));
}

std::string param_message(Param p, const std::string& what) {
    return std::string("parameter '") + name(p) + "': " + what;
}

std::optional<ConfigProblem> validate_config(const GroupConfig& cfg, std::optional<bool> two_node) {
    auto invalid = [](std::string m) { return ConfigProblem{kExitInvalid, std::move(m)}; };
    auto missing = [](std::string m) { return ConfigProblem{kExitNotInstalled, std::move(m)}; };

    // ---- group-wide (6)
    if (auto e = LoadMeter::check(cfg.load, cfg.capacity, cfg.nic)) return invalid(*e);
    if (auto e = HealthTests::check(cfg.tests)) return invalid(*e);
    if (cfg.fencing == Fencing::Off && two_node.value_or(false))
        return invalid(param_message(Param::Fencing, "'off' is refused in a corosync two_node cluster: both halves of a "
                       "split stay quorate, so without fencing both would serve the same addresses (use "
                       "fencing=auto or require, with working fencing)"));
    std::optional<DnsCheck> dns;
    if (!cfg.dns_server.empty()) {
        dns = DnsUpdater::check(DnsTarget{cfg.dns_server, cfg.dns_zone, cfg.dns_owner(), cfg.dns_ttl, cfg.dns_key});
        if (dns && !dns->host_local) return invalid("parameter '" + dns->key + "': " + dns->message);
    }
    if (!cfg.snmp_traps.empty()) {
        if (cfg.snmp_community.empty())
            return invalid(param_message(Param::SnmpCommunity, std::string("empty; SNMPv2c traps need a community "
                                                                           "(the default is '") +
                                                                   spec(Param::SnmpCommunity).default_text + "')"));
        if (auto e = TrapSender::check(cfg.snmp_traps, cfg.snmp_community))
            return invalid(param_message(Param::SnmpTraps, *e));
    }

    // ---- this host (5)
    if (!cfg.nic.empty() && if_nametoindex(cfg.nic.c_str()) == 0)
        return missing(param_message(Param::Nic, "no interface '" + cfg.nic + "' on this host"));
    if (!cfg.hook.empty())
        if (auto e = executable(Param::Hook, cfg.hook)) return missing(*e);
    if (cfg.load.rfind("exec:", 0) == 0)
        if (auto e = executable(Param::Load, cfg.load.substr(5))) return missing(*e);
    for (const auto& t : cfg.tests)
        if (t.rfind("exec:", 0) == 0)
            if (auto e = executable(Param::Tests, t.substr(5))) return missing(*e);
    if (!cfg.dns_key.empty() && cfg.dns_server.empty() && access(cfg.dns_key.c_str(), R_OK) != 0)
        return missing(param_message(Param::DnsKey, "cannot read '" + cfg.dns_key + "' (" + std::strerror(errno) + ")"));
    if (dns) return missing("parameter '" + dns->key + "': " + dns->message);
    return std::nullopt;
}

std::optional<ConfigProblem> validate_trap_hosts(const GroupConfig& cfg) {
    if (cfg.snmp_traps.empty()) return std::nullopt;
    std::vector<std::string> peers;
    std::string err;
    if (!TrapSender::resolve_targets(cfg.snmp_traps, &peers, &err))
        return ConfigProblem{kExitNotInstalled, param_message(Param::SnmpTraps, err + " (on this host)")};
    return std::nullopt;
}

}  // namespace rais
