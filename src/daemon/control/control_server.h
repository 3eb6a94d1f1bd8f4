// ControlServer: raisd's control socket, a libqb IPC service named
// "rais-<group>" (abstract sockets: one per network namespace), run on the
// GLib main loop. Requests and responses are one JSON text each (see
// src/common/control_protocol.h); the handler answers synchronously, which
// holds for every command because the Member replies within the same step.
// The peer's credentials come from the kernel (SO_PASSCRED via libqb), never
// from the request.
//
// Invariants (every local process is hostile until the kernel says otherwise):
//  - only root and members of group haclient (primary or supplementary)
//    connect; anyone else is refused in the accept callback, before libqb
//    creates any shared memory, and each refused uid is logged once;
//  - every connection's buffer is kControlMaxMessage, fixed here, so no
//    client decides how much of /dev/shm a connection takes, and a non-root
//    uid holds at most kMaxConnectionsPerUid connections at once;
//  - a request is measured and its nesting scanned before it is parsed; a
//    bad one is answered with exit 2 and a one-line reason;
//  - every request gets an answer: one too long for the buffer is replaced
//    by an error naming its size;
//  - the name is checked before it is claimed: a name held by another
//    process fails open() with a message naming that process.
#pragma once

#include <qb/qbipcs.h>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "common/control_protocol.h"

namespace rais {

struct Peer {
    uid_t uid = 0;
    gid_t gid = 0;
    bool may_change = false;  // root or member of group haclient: every peer that got in
};

class ControlServer {
public:
    using Handler = std::function<ControlResponse(const ControlRequest&, const Peer&)>;

    // Concurrent connections of one non-root uid; root is not limited, so a
    // member of haclient cannot lock the agent's monitor out.
    static constexpr int kMaxConnectionsPerUid = 8;

    ControlServer(std::string group, Handler handler);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    bool open(std::string* error);

private:
    struct Conn {
        Peer peer;
        pid_t pid = 0;
        bool send_failure_logged = false;
    };
    enum class Refusal { NotPermitted, TooMany, BufferSize };

    static ControlServer* from(qb_ipcs_connection_t* c);
    static int32_t on_accept(qb_ipcs_connection_t* c, uid_t uid, gid_t gid);
    static void on_destroyed(qb_ipcs_connection_t* c);
    static int32_t on_msg(qb_ipcs_connection_t* c, void* data, size_t size);
    static int32_t on_closed(qb_ipcs_connection_t* c);
    static void on_created(qb_ipcs_connection_t* c);

    int32_t accept(qb_ipcs_connection_t* c, uid_t uid, gid_t gid);
    void refuse(Refusal why, uid_t uid, gid_t gid, const std::string& text);
    ControlResponse answer(qb_ipcs_connection_t* c, const void* data, std::size_t size);
    void send(qb_ipcs_connection_t* c, ControlResponse resp);

    std::string group_;
    Handler handler_;
    std::map<qb_ipcs_connection_t*, Conn> conns_;
    std::map<uid_t, int> per_uid_;                 // live connections of each non-root uid
    std::set<std::pair<Refusal, uid_t>> logged_;   // refusals already logged (bounded)
    qb_ipcs_service_t* service_ = nullptr;         // owned; qb_ipcs_destroy in the destructor
};

}  // namespace rais
