// QuorumWatch: corosync's quorum API (votequorum behind it), tracked for
// changes. Each notification carries the ring id it is about, so the Member
// trusts it only for the membership of that same ring (DESIGN §3): quorum
// and CPG events arrive in no fixed order.
#pragma once

#include <corosync/quorum.h>

#include <functional>
#include <string>

#include "core/member.h"

namespace rais {

class QuorumWatch {
public:
    struct Callbacks {
        std::function<void(const in::Quorum&)> quorum;
        std::function<void(const std::string& why)> lost;
    };
    explicit QuorumWatch(Callbacks cb) : cb_(std::move(cb)) {}
    ~QuorumWatch();
    QuorumWatch(const QuorumWatch&) = delete;
    QuorumWatch& operator=(const QuorumWatch&) = delete;

    bool open(std::string* error);

private:
    static void on_notify(quorum_handle_t, uint32_t quorate, struct quorum_ring_id ring, uint32_t n,
                          const uint32_t* members);
    static int on_fd(int fd, unsigned condition, void* self);

    Callbacks cb_;
    quorum_handle_t handle_ = 0;
    bool have_handle_ = false;
    unsigned fd_source_ = 0;
};

}  // namespace rais
