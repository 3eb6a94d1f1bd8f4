#include "daemon/control/control_server.h"

#include <glib-unix.h>
#include <glib.h>
#include <grp.h>
#include <pwd.h>
#include <qb/qbipc_common.h>
#include <qb/qblog.h>
#include <qb/qbloop.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "daemon/log.h"

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

// Root, or a member of group haclient: primary group of the connecting
// process, or primary or supplementary group of the uid's account.
bool permitted(uid_t uid, gid_t gid) {
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
        if (getgrouplist(pw->pw_name, pw->pw_gid, groups.data(), &n) < 0) return false;
    }
    for (int i = 0; i < n; i++)
        if (groups[static_cast<std::size_t>(i)] == hac->gr_gid) return true;
    return false;
}

// libqb logs every connection refused in the accept callback, at error
// level, from within libqb ("Invalid IPC credentials", "Denied connection,
// is not ready"): one line per attempt of any local user. The server logs
// its refusals itself, once per uid, so these two lines are silenced; every
// other libqb message is left as it is.
void quiet_refusals(struct qb_log_callsite* cs) {
    static const char* const noisy[] = {"Invalid IPC credentials", "Denied connection, is not ready"};
    if (!cs->format) return;
    for (const char* n : noisy)
        if (std::strncmp(cs->format, n, std::strlen(n)) == 0) cs->targets = 0;
}

std::string describe_holder(const std::string& name, const SocketOwner& o, const std::string& group) {
    std::string text = "the control socket " + name + " is already held by pid " + std::to_string(o.pid) +
                       " (uid " + std::to_string(o.uid) + ")";
    if (o.uid == 0) return text + ": is another raisd of group " + group + " running on this host?";
    return text + ", which is not root: stop it; raisd will not start beside a process that could answer "
                  "raisctl in its name";
}

// Bounds the memory spent on "logged once" bookkeeping; only root can mint
// uids, so a real host stays far below it.
constexpr std::size_t kMaxLoggedRefusals = 4096;

}  // namespace

ControlServer::ControlServer(std::string group, Handler handler)
    : group_(std::move(group)), handler_(std::move(handler)) {}

ControlServer::~ControlServer() {
    if (!service_) return;
    // Connections torn down by qb_ipcs_destroy reach no member of a
    // server being destroyed.
    qb_ipcs_service_context_set(service_, nullptr);
    qb_ipcs_destroy(service_);
}

ControlServer* ControlServer::from(qb_ipcs_connection_t* c) {
    return static_cast<ControlServer*>(qb_ipcs_connection_service_context_get(c));
}

bool ControlServer::open(std::string* error) {
    static struct qb_ipcs_service_handlers handlers = {&ControlServer::on_accept, &ControlServer::on_created,
                                                       &ControlServer::on_msg, &ControlServer::on_closed,
                                                       &ControlServer::on_destroyed};
    static struct qb_ipcs_poll_handlers poll = {job_add, dispatch_add, dispatch_add, dispatch_del};
    std::string name = control_service_name(group_);
    // Ask the kernel who holds the name before claiming it: libqb's own
    // failure path says only EADDRINUSE, and must not be followed by
    // qb_ipcs_destroy (below).
    if (auto holder = control_socket_owner(name)) {
        *error = describe_holder(name, *holder, group_);
        return false;
    }
    qb_log_filter_fn_set(quiet_refusals);
    service_ = qb_ipcs_create(name.c_str(), 0, QB_IPC_NATIVE, &handlers);
    if (!service_) {
        *error = "cannot create the control socket " + name;
        return false;
    }
    qb_ipcs_service_context_set(service_, this);
    // A smaller buffer asked by a client is raised to this one; a larger one
    // is refused in on_accept.
    qb_ipcs_enforce_buffer_size(service_, kControlMaxMessage);
    qb_ipcs_poll_handlers_set(service_, &poll);
    int32_t rc = qb_ipcs_run(service_);
    if (rc != 0) {
        // qb_ipcs_run has dropped the service's only reference on failure:
        // destroying it again would fail libqb's assertion (ref_count > 0).
        service_ = nullptr;
        std::string why;
        if (auto holder = control_socket_owner(name, &why))
            *error = describe_holder(name, *holder, group_);
        else if (!why.empty())
            *error = "cannot listen on the control socket " + name + ": " + std::strerror(-rc) +
                     "; its holder cannot be asked who it is (" + why + ")";
        else
            *error = "cannot listen on the control socket " + name + ": " + std::strerror(-rc) +
                     " (is another raisd of group " + group_ + " running on this host?)";
        return false;
    }
    return true;
}

void ControlServer::refuse(Refusal why, uid_t uid, gid_t gid, const std::string& text) {
    if (logged_.count({why, uid}) || logged_.size() >= kMaxLoggedRefusals) return;
    logged_.insert({why, uid});
    log_text(LogLevel::Warning, "control socket: refused a connection of uid " + std::to_string(uid) + " (gid " +
                                    std::to_string(gid) + "): " + text +
                                    " (logged once for this uid; later refusals are not)");
}

int32_t ControlServer::on_accept(qb_ipcs_connection_t* c, uid_t uid, gid_t gid) {
    ControlServer* self = from(c);
    return self ? self->accept(c, uid, gid) : -EACCES;
}

int32_t ControlServer::accept(qb_ipcs_connection_t* c, uid_t uid, gid_t gid) {
    if (!permitted(uid, gid)) {
        refuse(Refusal::NotPermitted, uid, gid, "only root and members of group haclient may connect");
        return -EACCES;
    }
    if (uid != 0 && per_uid_[uid] >= kMaxConnectionsPerUid) {
        refuse(Refusal::TooMany, uid, gid,
               "it already holds " + std::to_string(kMaxConnectionsPerUid) + " connections, the limit per user");
        return -EAGAIN;
    }
    // libqb takes the larger of the client's size and ours; nothing else
    // stops a client from sizing its shared memory rings at will.
    int32_t size = qb_ipcs_connection_get_buffer_size(c);
    if (size < 0 || static_cast<std::size_t>(size) != kControlMaxMessage) {
        refuse(Refusal::BufferSize, uid, gid,
               "it asked for a " + std::to_string(size) + "-byte buffer; the server's is " +
                   std::to_string(kControlMaxMessage));
        return -EACCES;
    }
    Conn conn;
    conn.peer = Peer{uid, gid, true};
    struct qb_ipcs_connection_stats st {};
    if (qb_ipcs_connection_stats_get(c, &st, 0) == 0) conn.pid = st.client_pid;
    conns_[c] = conn;
    if (uid != 0) per_uid_[uid]++;
    // The shared memory files belong to the peer's uid and gid, so it alone
    // (and root) can map them.
    qb_ipcs_connection_auth_set(c, uid, gid, 0600);
    return 0;
}

void ControlServer::on_created(qb_ipcs_connection_t*) {}

int32_t ControlServer::on_closed(qb_ipcs_connection_t*) { return 0; }

// libqb calls this for refused connections too: only those accepted are
// on the books.
void ControlServer::on_destroyed(qb_ipcs_connection_t* c) {
    ControlServer* self = from(c);
    if (!self) return;
    auto it = self->conns_.find(c);
    if (it == self->conns_.end()) return;
    uid_t uid = it->second.peer.uid;
    self->conns_.erase(it);
    auto n = self->per_uid_.find(uid);
    if (n != self->per_uid_.end() && --n->second <= 0) self->per_uid_.erase(n);
}

int32_t ControlServer::on_msg(qb_ipcs_connection_t* c, void* data, size_t size) {
    ControlServer* self = from(c);
    if (!self) return 0;
    self->send(c, self->answer(c, data, size));
    return 0;
}

ControlResponse ControlServer::answer(qb_ipcs_connection_t* c, const void* data, std::size_t size) {
    const auto* hdr = static_cast<const struct qb_ipc_request_header*>(data);
    // `size` is the header's own claim (libqb passes hdr->size on): bound it
    // before reading that many bytes.
    if (size < sizeof *hdr) return {2, "", "raisd: malformed control request\n"};
    std::size_t body_size = size - sizeof *hdr;
    if (body_size > kControlMaxRequest)
        return {2, "", "raisd: request of " + std::to_string(body_size) + " bytes exceeds the " +
                           std::to_string(kControlMaxRequest) + "-byte limit\n"};
    std::string body(static_cast<const char*>(data) + sizeof *hdr, body_size);
    std::string err;
    auto req = decode_request(body, &err);
    if (!req) return {2, "", "raisd: bad control request: " + err + "\n"};
    auto it = conns_.find(c);
    if (it == conns_.end()) return {1, "", "raisd: unknown connection\n"};
    return handler_(*req, it->second.peer);
}

void ControlServer::send(qb_ipcs_connection_t* c, ControlResponse resp) {
    std::string text = encode_response(resp);
    if (text.size() > kControlMaxAnswer) {
        std::string why = "answer of " + std::to_string(text.size()) + " bytes exceeds the " +
                          std::to_string(kControlMaxAnswer) + "-byte limit";
        log_text(LogLevel::Warning, "control socket: " + why + "; the client gets this error instead");
        text = encode_response({1, "", "raisd: " + why + "\n"});
    }
    struct qb_ipc_response_header rh {};
    rh.id = kControlRequestId;
    rh.size = static_cast<int32_t>(sizeof rh + text.size());
    rh.error = 0;
    struct iovec iov[2] = {{&rh, sizeof rh}, {const_cast<char*>(text.data()), text.size()}};
    ssize_t rc = qb_ipcs_response_sendv(c, iov, 2);
    if (rc >= 0) return;
    // The response ring is full: the client sends without reading its
    // answers. Logged once per connection; the client's own timeout ends it.
    auto it = conns_.find(c);
    if (it == conns_.end() || it->second.send_failure_logged) return;
    it->second.send_failure_logged = true;
    log_text(LogLevel::Warning, "control socket: cannot answer pid " + std::to_string(it->second.pid) + " (uid " +
                                    std::to_string(it->second.peer.uid) + "): " +
                                    std::strerror(static_cast<int>(-rc)));
}

}  // namespace rais
