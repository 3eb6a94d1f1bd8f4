#include "daemon/cluster/quorum_watch.h"

#include <glib-unix.h>
#include <glib.h>

namespace rais {

QuorumWatch::~QuorumWatch() {
    if (fd_source_) g_source_remove(fd_source_);
    if (have_handle_) quorum_finalize(handle_);
}

bool QuorumWatch::open(std::string* error) {
    quorum_model_v1_data_t model{};
    model.model = QUORUM_MODEL_V1;
    model.quorum_notify_fn = &QuorumWatch::on_notify;
    uint32_t type = 0;
    cs_error_t e = quorum_model_initialize(&handle_, QUORUM_MODEL_V1, reinterpret_cast<quorum_model_data_t*>(&model),
                                           &type, this);
    if (e != CS_OK) {
        *error = "cannot connect to corosync's quorum service (error " + std::to_string(e) + ")";
        return false;
    }
    have_handle_ = true;
    if (type != QUORUM_SET) {
        *error = "corosync has no quorum provider configured (quorum { provider: corosync_votequorum })";
        return false;
    }
    int fd = -1;
    if (quorum_fd_get(handle_, &fd) != CS_OK) {
        *error = "quorum_fd_get failed";
        return false;
    }
    if (quorum_trackstart(handle_, CS_TRACK_CHANGES | CS_TRACK_CURRENT) != CS_OK) {
        *error = "quorum_trackstart failed";
        return false;
    }
    fd_source_ = g_unix_fd_add(fd, static_cast<GIOCondition>(G_IO_IN | G_IO_HUP | G_IO_ERR),
                               reinterpret_cast<GUnixFDSourceFunc>(&QuorumWatch::on_fd), this);
    return true;
}

void QuorumWatch::on_notify(quorum_handle_t h, uint32_t quorate, struct quorum_ring_id ring, uint32_t, const uint32_t*) {
    const void* ctx = nullptr;
    quorum_context_get(h, &ctx);
    auto* self = static_cast<QuorumWatch*>(const_cast<void*>(ctx));
    if (self && self->cb_.quorum) self->cb_.quorum(in::Quorum{ring.seq, quorate != 0});
}

int QuorumWatch::on_fd(int, unsigned condition, void* p) {
    auto* self = static_cast<QuorumWatch*>(p);
    cs_error_t e = quorum_dispatch(self->handle_, CS_DISPATCH_ALL);
    if ((e != CS_OK && e != CS_ERR_TRY_AGAIN) || (condition & (G_IO_HUP | G_IO_ERR))) {
        self->fd_source_ = 0;
        if (self->cb_.lost) self->cb_.lost("lost the connection to corosync's quorum service");
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

}  // namespace rais
