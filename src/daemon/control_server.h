// ControlServer: raisd's control socket, a libqb IPC service named
// "rais-<group>" (abstract sockets: one per network namespace), run on the
// GLib main loop. Requests and responses are one JSON text each (see
// src/common/control_protocol.h); the handler answers synchronously, which
// holds for every command because the Member replies within the same step.
// The peer's credentials come from the kernel (SO_PEERCRED via libqb), never
// from the request.
#pragma once

#include <qb/qbipcs.h>

#include <functional>
#include <string>

#include "common/control_protocol.h"

namespace rais {

struct Peer {
    uid_t uid = 0;
    gid_t gid = 0;
    bool may_change = false;  // root or member of group haclient
};

class ControlServer {
public:
    using Handler = std::function<ControlResponse(const ControlRequest&, const Peer&)>;

    ControlServer(std::string group, Handler handler);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    bool open(std::string* error);

private:
    static int32_t on_accept(qb_ipcs_connection_t* c, uid_t uid, gid_t gid);
    static void on_destroyed(qb_ipcs_connection_t* c);
    static int32_t on_msg(qb_ipcs_connection_t* c, void* data, size_t size);
    static int32_t on_closed(qb_ipcs_connection_t* c);
    static void on_created(qb_ipcs_connection_t* c);

    std::string group_;
    Handler handler_;
    qb_ipcs_service_t* service_ = nullptr;  // owned; qb_ipcs_destroy in the destructor
};

}  // namespace rais
