#include "daemon/cluster/cpg_transport.h"

#include <glib-unix.h>
#include <glib.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

namespace rais {

namespace {
// corosync's success code is 1 (CS_OK), not 0.
bool ok(cs_error_t e) { return e == CS_OK; }

CpgTransport* self_of(cpg_handle_t h) {
    void* ctx = nullptr;
    cpg_context_get(h, &ctx);
    return static_cast<CpgTransport*>(ctx);
}

ChangeReason reason_of(uint32_t r) {
    switch (r) {
    case CPG_REASON_JOIN: return ChangeReason::Join;
    case CPG_REASON_LEAVE: return ChangeReason::Leave;
    case CPG_REASON_NODEDOWN: return ChangeReason::NodeDown;
    case CPG_REASON_NODEUP: return ChangeReason::NodeUp;
    case CPG_REASON_PROCDOWN: return ChangeReason::ProcDown;
    default: return ChangeReason::NodeDown;
    }
}
}  // namespace

CpgTransport::CpgTransport(std::string group, Callbacks cb) : group_(std::move(group)), cb_(std::move(cb)) {}

CpgTransport::~CpgTransport() {
    if (fd_source_) g_source_remove(fd_source_);
    if (retry_source_) g_source_remove(retry_source_);
    if (have_handle_) cpg_finalize(handle_);
}

bool CpgTransport::open(std::string* error) {
    cpg_model_v1_data_t model{};
    model.model = CPG_MODEL_V1;
    model.cpg_deliver_fn = &CpgTransport::on_deliver;
    model.cpg_confchg_fn = &CpgTransport::on_confchg;
    model.cpg_totem_confchg_fn = &CpgTransport::on_totem;
    model.flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF;
    cs_error_t e = cpg_model_initialize(&handle_, CPG_MODEL_V1, reinterpret_cast<cpg_model_data_t*>(&model), this);
    if (!ok(e)) {
        *error = "cannot connect to corosync (cpg_model_initialize: error " + std::to_string(e) +
                 "); is corosync running?";
        return false;
    }
    have_handle_ = true;
    unsigned int node = 0;
    if (ok(cpg_local_get(handle_, &node))) local_node_ = node;
    local_pid_ = static_cast<std::uint32_t>(getpid());
    struct cpg_name name {};
    std::string full = "rais:" + group_;
    if (full.size() >= sizeof name.value) {
        *error = "group name too long for a CPG group: " + group_;
        return false;
    }
    std::memcpy(name.value, full.data(), full.size());
    name.length = static_cast<uint32_t>(full.size());
    for (int tries = 0;; tries++) {
        e = cpg_join(handle_, &name);
        if (e != CS_ERR_TRY_AGAIN || tries > 50) break;
        g_usleep(100 * 1000);  // before the main loop runs; corosync asks us to wait
    }
    if (!ok(e)) {
        *error = "cannot join CPG group " + full + " (error " + std::to_string(e) + ")";
        return false;
    }
    joined_ = true;
    int fd = -1;
    if (!ok(cpg_fd_get(handle_, &fd))) {
        *error = "cpg_fd_get failed";
        return false;
    }
    fd_source_ = g_unix_fd_add(fd, static_cast<GIOCondition>(G_IO_IN | G_IO_HUP | G_IO_ERR),
                               reinterpret_cast<GUnixFDSourceFunc>(&CpgTransport::on_fd), this);
    return true;
}

void CpgTransport::leave() {
    if (!joined_ || failed_) return;
    flush();
    struct cpg_name name {};
    std::string full = "rais:" + group_;
    std::memcpy(name.value, full.data(), full.size());
    name.length = static_cast<uint32_t>(full.size());
    cpg_leave(handle_, &name);
    joined_ = false;
}

void CpgTransport::send(std::vector<std::uint8_t> bytes) {
    if (failed_) return;
    queue_.push_back(std::move(bytes));
    flush();
}

void CpgTransport::flush() {
    const bool waited = retry_pending_;
    retry_pending_ = false;
    while (!queue_.empty() && !failed_) {
        struct iovec iov {queue_.front().data(), queue_.front().size()};
        cs_error_t e = cpg_mcast_joined(handle_, CPG_TYPE_AGREED, &iov, 1);
        if (e == CS_ERR_TRY_AGAIN) {
            if (!retry_source_) retry_source_ = g_timeout_add(10, reinterpret_cast<GSourceFunc>(&CpgTransport::on_retry), this);
            retry_pending_ = true;
            return;
        }
        if (!ok(e)) {
            fail("cpg_mcast_joined failed (error " + std::to_string(e) + ")");
            return;
        }
        queue_.pop_front();
    }
    if (waited && queue_.empty() && cb_.drained) cb_.drained();
}

int CpgTransport::on_retry(void* p) {
    auto* self = static_cast<CpgTransport*>(p);
    self->retry_source_ = 0;
    self->flush();
    return G_SOURCE_REMOVE;
}

void CpgTransport::fail(const std::string& why) {
    if (failed_) return;
    failed_ = true;
    if (fd_source_) {
        g_source_remove(fd_source_);
        fd_source_ = 0;
    }
    if (cb_.lost) cb_.lost(why);
}

int CpgTransport::on_fd(int, unsigned condition, void* p) {
    auto* self = static_cast<CpgTransport*>(p);
    cs_error_t e = cpg_dispatch(self->handle_, CS_DISPATCH_ALL);
    if (!ok(e) && e != CS_ERR_TRY_AGAIN) {
        self->fd_source_ = 0;  // removed by returning G_SOURCE_REMOVE
        self->fail("lost the connection to corosync (cpg_dispatch: error " + std::to_string(e) + ")");
        return G_SOURCE_REMOVE;
    }
    if (condition & (G_IO_HUP | G_IO_ERR)) {
        self->fd_source_ = 0;
        self->fail("corosync closed the CPG connection");
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

void CpgTransport::on_deliver(cpg_handle_t h, const struct cpg_name*, uint32_t nodeid, uint32_t pid, void* msg,
                              size_t len) {
    CpgTransport* self = self_of(h);
    const auto* b = static_cast<const std::uint8_t*>(msg);
    if (self && self->cb_.deliver) self->cb_.deliver(Process{nodeid, pid}, std::vector<std::uint8_t>(b, b + len));
}

void CpgTransport::on_confchg(cpg_handle_t h, const struct cpg_name*, const struct cpg_address* members,
                              size_t n_members, const struct cpg_address* left, size_t n_left,
                              const struct cpg_address* joined, size_t n_joined) {
    CpgTransport* self = self_of(h);
    if (!self) return;
    in::Membership m;
    m.ring = self->ring_;
    m.nodes = self->nodes_;
    for (size_t i = 0; i < n_members; i++) m.members.push_back({members[i].nodeid, members[i].pid});
    for (size_t i = 0; i < n_left; i++) m.left.push_back({{left[i].nodeid, left[i].pid}, reason_of(left[i].reason)});
    for (size_t i = 0; i < n_joined; i++)
        m.joined.push_back({{joined[i].nodeid, joined[i].pid}, reason_of(joined[i].reason)});
    self->members_ = m.members;
    if (self->cb_.membership) self->cb_.membership(m);
}

void CpgTransport::on_totem(cpg_handle_t h, struct cpg_ring_id ring, uint32_t n, const uint32_t* nodes) {
    CpgTransport* self = self_of(h);
    if (!self) return;
    self->ring_ = ring.seq;
    self->nodes_.assign(nodes, nodes + n);
    if (self->cb_.log)
        self->cb_.log(LogLevel::Info, "totem ring " + std::to_string(ring.seq) + " with " + std::to_string(n) + " node(s)");
    // A ring change the group itself did not see still matters: quorum is
    // trusted only for the ring of the membership we hold.
    if (!self->members_.empty() && self->cb_.membership) {
        in::Membership m;
        m.ring = self->ring_;
        m.nodes = self->nodes_;
        m.members = self->members_;
        self->cb_.membership(m);
    }
}

}  // namespace rais
