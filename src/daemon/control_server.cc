#include "daemon/control_server.h"

#include <glib-unix.h>
#include <glib.h>
#include <grp.h>
#include <pwd.h>
#include <qb/qbipc_common.h>
#include <qb/qbloop.h>

#include <cstring>
#include <map>
#include <memory>
#include <vector>

namespace rais {

namespace {

// libqb's poll callbacks carry no context pointer for dispatch_del(fd), so
// the fd -> source table is process-wide; raisd runs one service per process.
struct FdWatch {
    guint source = 0;
    void* data = nullptr;
    qb_ipcs_dispatch_fn_t fn = nullptr;
};
std::map<int32_t, FdWatch>& watches() {
    static std::map<int32_t, FdWatch> w;
    return w;
}

gboolean on_fd_ready(gint fd, GIOCondition cond, gpointer) {
    auto it = watches().find(fd);
    if (it == watches().end()) return G_SOURCE_REMOVE;
    FdWatch w = it->second;
    // G_IO_* and POLL* share their values on Linux.
    if (w.fn(fd, static_cast<int32_t>(cond), w.data) < 0) {
        auto again = watches().find(fd);
        if (again != watches().end() && again->second.source == w.source) watches().erase(again);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

int32_t dispatch_add(enum qb_loop_priority, int32_t fd, int32_t events, void* data, qb_ipcs_dispatch_fn_t fn) {
    auto& w = watches()[fd];
    if (w.source) g_source_remove(w.source);
    w.data = data;
    w.fn = fn;
    w.source = g_unix_fd_add(fd, static_cast<GIOCondition>(events), on_fd_ready, nullptr);
    return 0;
}

int32_t dispatch_del(int32_t fd) {
    auto it = watches().find(fd);
    if (it == watches().end()) return -EBADF;
    g_source_remove(it->second.source);
    watches().erase(it);
    return 0;
}

struct Job {
    void* data;
    qb_loop_job_dispatch_fn fn;
};

int32_t job_add(enum qb_loop_priority, void* data, qb_loop_job_dispatch_fn fn) {
    auto job = std::make_unique<Job>(Job{data, fn});
    g_idle_add_full(
        G_PRIORITY_DEFAULT,
        [](gpointer p) -> gboolean {
            static_cast<Job*>(p)->fn(static_cast<Job*>(p)->data);
            return G_SOURCE_REMOVE;
        },
        job.release(), [](gpointer p) { std::unique_ptr<Job> owned(static_cast<Job*>(p)); });
    return 0;
}

struct Conn {
    Peer peer;
};
std::map<qb_ipcs_connection_t*, Conn>& conns() {
    static std::map<qb_ipcs_connection_t*, Conn> c;
    return c;
}
ControlServer::Handler* g_handler = nullptr;

// Root, or a member of group haclient (primary or supplementary), may change
// things; everybody may look.
bool may_change(uid_t uid, gid_t gid) {
    if (uid == 0) return true;
    struct group* hac = getgrnam("haclient");
    if (!hac) return false;
    if (gid == hac->gr_gid) return true;
    struct passwd* pw = getpwuid(uid);
    if (!pw) return false;
    int n = 64;
    std::vector<gid_t> groups(static_cast<std::size_t>(n));
    if (getgrouplist(pw->pw_name, pw->pw_gid, groups.data(), &n) < 0) {
        groups.resize(static_cast<std::size_t>(n));
        getgrouplist(pw->pw_name, pw->pw_gid, groups.data(), &n);
    }
    for (int i = 0; i < n; i++)
        if (groups[static_cast<std::size_t>(i)] == hac->gr_gid) return true;
    return false;
}

}  // namespace

ControlServer::ControlServer(std::string group, Handler handler)
    : group_(std::move(group)), handler_(std::move(handler)) {}

ControlServer::~ControlServer() {
    if (service_) qb_ipcs_destroy(service_);
    if (g_handler == &handler_) g_handler = nullptr;
}

bool ControlServer::open(std::string* error) {
    static struct qb_ipcs_service_handlers handlers = {&ControlServer::on_accept, &ControlServer::on_created,
                                                       &ControlServer::on_msg, &ControlServer::on_closed,
                                                       &ControlServer::on_destroyed};
    static struct qb_ipcs_poll_handlers poll = {job_add, dispatch_add, dispatch_add, dispatch_del};
    g_handler = &handler_;
    std::string name = control_service_name(group_);
    service_ = qb_ipcs_create(name.c_str(), 0, QB_IPC_NATIVE, &handlers);
    if (!service_) {
        *error = "cannot create the control socket " + name;
        return false;
    }
    qb_ipcs_poll_handlers_set(service_, &poll);
    int32_t rc = qb_ipcs_run(service_);
    if (rc != 0) {
        *error = "cannot listen on the control socket " + name + ": " + std::strerror(-rc) +
                 " (is another raisd of group " + group_ + " running on this host?)";
        return false;
    }
    return true;
}

int32_t ControlServer::on_accept(qb_ipcs_connection_t* c, uid_t uid, gid_t gid) {
    Conn conn;
    conn.peer = Peer{uid, gid, may_change(uid, gid)};
    conns()[c] = conn;
    // Let anyone connect (status is public); mutating commands check peer.
    qb_ipcs_connection_auth_set(c, -1, -1, 0666);
    return 0;
}

void ControlServer::on_created(qb_ipcs_connection_t*) {}

int32_t ControlServer::on_closed(qb_ipcs_connection_t*) { return 0; }

void ControlServer::on_destroyed(qb_ipcs_connection_t* c) { conns().erase(c); }

int32_t ControlServer::on_msg(qb_ipcs_connection_t* c, void* data, size_t size) {
    const auto* hdr = static_cast<const struct qb_ipc_request_header*>(data);
    ControlResponse resp;
    if (size < sizeof *hdr || static_cast<std::size_t>(hdr->size) > size) {
        resp = {2, "", "raisd: malformed control request\n"};
    } else {
        std::string body(static_cast<const char*>(data) + sizeof *hdr, size - sizeof *hdr);
        std::string err;
        auto req = decode_request(body, &err);
        if (!req) {
            resp = {2, "", "raisd: bad control request: " + err + "\n"};
        } else if (g_handler) {
            auto it = conns().find(c);
            Peer peer = it == conns().end() ? Peer{} : it->second.peer;
            resp = (*g_handler)(*req, peer);
        }
    }
    std::string text = encode_response(resp);
    struct qb_ipc_response_header rh {};
    rh.id = kControlRequestId;
    rh.size = static_cast<int32_t>(sizeof rh + text.size());
    rh.error = 0;
    struct iovec iov[2] = {{&rh, sizeof rh}, {const_cast<char*>(text.data()), text.size()}};
    qb_ipcs_response_sendv(c, iov, 2);
    return 0;
}

}  // namespace rais
