// controltest: raisd's real ControlServer with a trivial handler on a GLib
// main loop (no corosync), and the hostile clients tests/daemon/control-tests
// points at it.
//
//   controltest serve GROUP             serve rais-GROUP until SIGTERM; logs to stderr
//   controltest client GROUP [OPTIONS]  one request, printed like raisctl, exit = the answer's
//       --buffer BYTES     ask libqb for this buffer (default kControlMaxMessage)
//       --deep N           args nested N arrays deep
//       --bytes N          a request padded to N bytes
//       --claim BYTES      a request header claiming BYTES (the body stays small)
//       --hold N SECONDS   open N connections, say how many got in, keep them SECONDS
//       --peer             print who serves the socket (libqb's handshake) and the buffer
//   controltest squat-full GROUP        listen on the name with a full backlog, accept nobody
//
// The handler: status answers "ok"; `plan --fail N` answers N bytes of
// stdout, `plan --fail max` an answer of exactly kControlMaxAnswer bytes and
// `plan --fail max+1` one byte more.
// Exit status of client: the answer's, or 1 (refused: "refused: REASON"), 4 (no answer).
#include <glib-unix.h>
#include <glib.h>
#include <qb/qbipc_common.h>
#include <qb/qbipcc.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/control_protocol.h"
#include "daemon/control/control_server.h"
#include "daemon/log.h"

using namespace rais;

namespace {

struct IpccDeleter {
    void operator()(qb_ipcc_connection_t* c) const { qb_ipcc_disconnect(c); }
};
using Conn = std::unique_ptr<qb_ipcc_connection_t, IpccDeleter>;

struct LoopDeleter {
    void operator()(GMainLoop* l) const { g_main_loop_unref(l); }
};

ControlResponse handle(const ControlRequest& r, const Peer& peer) {
    if (r.command == "status")
        return {0, "ok uid " + std::to_string(peer.uid) + " gid " + std::to_string(peer.gid) + "\n", ""};
    if (r.command == "plan" && r.args.size() == 2 && r.args[0] == "--fail") {
        const std::string& n = r.args[1];
        std::size_t size = 0;
        if (n == "max" || n == "max+1") {
            // The answer's text is the stdout plus a fixed frame.
            std::size_t frame = encode_response({0, "", ""}).size();
            size = kControlMaxAnswer - frame + (n == "max+1" ? 1 : 0);
        } else {
            size = std::strtoull(n.c_str(), nullptr, 10);
        }
        return {0, std::string(size, 'x'), ""};
    }
    return {2, "", "controltest: unknown command " + r.command + "\n"};
}

int serve(const std::string& group) {
    log_setup(group, true, "", false);
    std::unique_ptr<GMainLoop, LoopDeleter> loop(g_main_loop_new(nullptr, FALSE));
    ControlServer server(group, handle);
    std::string err;
    if (!server.open(&err)) {
        std::fprintf(stderr, "controltest: %s\n", err.c_str());
        return 1;
    }
    auto quit = [](gpointer l) -> gboolean {
        g_main_loop_quit(static_cast<GMainLoop*>(l));
        return G_SOURCE_REMOVE;
    };
    g_unix_signal_add(SIGTERM, quit, loop.get());
    g_unix_signal_add(SIGINT, quit, loop.get());
    std::printf("serving %s\n", control_service_name(group).c_str());
    std::fflush(stdout);
    g_main_loop_run(loop.get());
    return 0;
}

Conn connect_to(const std::string& group, std::size_t buffer, int* error) {
    errno = 0;
    Conn c(qb_ipcc_connect(control_service_name(group).c_str(), buffer));
    *error = errno;
    return c;
}

int hold(const std::string& group, std::size_t buffer, int n, int seconds) {
    std::vector<Conn> held;
    std::string first_error;
    for (int i = 0; i < n; i++) {
        int e = 0;
        Conn c = connect_to(group, buffer, &e);
        if (c) held.push_back(std::move(c));
        else if (first_error.empty()) first_error = std::strerror(e);
    }
    std::printf("connected %zu of %d%s%s\n", held.size(), n, first_error.empty() ? "" : "; refused: ",
                first_error.c_str());
    std::fflush(stdout);
    sleep(static_cast<unsigned>(seconds));
    return 0;
}

int client(const std::string& group, const std::vector<std::string>& opts) {
    std::size_t buffer = kControlMaxMessage;
    long deep = 0, bytes = 0, claim = -1, hold_n = 0, hold_s = 0;
    bool peer = false;
    for (std::size_t i = 0; i < opts.size(); i++) {
        const std::string& o = opts[i];
        auto next = [&]() -> long { return i + 1 < opts.size() ? std::strtol(opts[++i].c_str(), nullptr, 10) : 0; };
        if (o == "--buffer") buffer = static_cast<std::size_t>(next());
        else if (o == "--deep") deep = next();
        else if (o == "--bytes") bytes = next();
        else if (o == "--claim") claim = next();
        else if (o == "--hold") hold_n = next(), hold_s = next();
        else if (o == "--peer") peer = true;
        else {
            std::fprintf(stderr, "controltest: unknown option %s\n", o.c_str());
            return 2;
        }
    }
    if (hold_n > 0) return hold(group, buffer, static_cast<int>(hold_n), static_cast<int>(hold_s));
    int e = 0;
    Conn c = connect_to(group, buffer, &e);
    if (!c) {
        std::printf("refused: %s\n", std::strerror(e));
        return 1;
    }
    if (peer) {
        pid_t pid = 0;
        uid_t uid = 0;
        gid_t gid = 0;
        if (qb_ipcc_auth_get(c.get(), &pid, &uid, &gid) != 0) return 4;
        std::printf("server pid %ld uid %ld buffer %d\n", static_cast<long>(pid), static_cast<long>(uid),
                    qb_ipcc_get_buffer_size(c.get()));
        return 0;
    }
    std::string body;
    if (deep > 0) {
        body = "{\"command\":\"status\",\"args\":";
        body += std::string(static_cast<std::size_t>(deep), '[') + std::string(static_cast<std::size_t>(deep), ']');
        body += "}";
    } else {
        body = "{\"command\":\"status\",\"args\":[\"";
        std::size_t frame = body.size() + 3;
        if (static_cast<std::size_t>(bytes) > frame) body += std::string(static_cast<std::size_t>(bytes) - frame, 'y');
        body += "\"]}";
    }
    struct qb_ipc_request_header hdr {};
    hdr.id = kControlRequestId;
    hdr.size = claim >= 0 ? static_cast<int32_t>(claim) : static_cast<int32_t>(sizeof hdr + body.size());
    struct iovec iov[2] = {{&hdr, sizeof hdr}, {body.data(), body.size()}};
    int32_t size = qb_ipcc_get_buffer_size(c.get());
    std::vector<char> buf(static_cast<std::size_t>(size > 0 ? size : 0));
    ssize_t n = qb_ipcc_sendv_recv(c.get(), iov, 2, buf.data(), buf.size(), 10000);
    if (n < static_cast<ssize_t>(sizeof(struct qb_ipc_response_header))) {
        std::printf("no answer: %s\n", n < 0 ? std::strerror(static_cast<int>(-n)) : "short");
        return 4;
    }
    std::string text(buf.data() + sizeof(struct qb_ipc_response_header),
                     static_cast<std::size_t>(n) - sizeof(struct qb_ipc_response_header));
    std::string err;
    auto resp = decode_response(text, &err);
    if (!resp) {
        std::printf("garbled answer: %s\n", err.c_str());
        return 4;
    }
    std::fputs(resp->out.c_str(), stdout);
    std::fputs(resp->err.c_str(), stderr);
    return resp->exit;
}

// A listener that never accepts, its backlog full: the kernel cannot say
// who it is to a connecting prober, and libqb's bind still fails.
int squat_full(const std::string& group) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a {};
    a.sun_family = AF_UNIX;
    std::string name = control_service_name(group);
    std::memcpy(a.sun_path + 1, name.data(), name.size());
    if (fd < 0 || bind(fd, reinterpret_cast<struct sockaddr*>(&a), sizeof a) != 0 || listen(fd, 0) != 0) {
        std::perror("controltest: squat-full");
        return 1;
    }
    std::vector<int> fillers;
    for (int i = 0; i < 16; i++) {
        int f = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (connect(f, reinterpret_cast<struct sockaddr*>(&a), sizeof a) != 0) {
            close(f);
            break;
        }
        fillers.push_back(f);
    }
    std::printf("squatting %s with %zu pending\n", name.c_str(), fillers.size());
    std::fflush(stdout);
    pause();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() >= 2 && args[0] == "serve") return serve(args[1]);
    if (args.size() >= 2 && args[0] == "client") return client(args[1], {args.begin() + 2, args.end()});
    if (args.size() >= 2 && args[0] == "squat-full") return squat_full(args[1]);
    std::fprintf(stderr, "usage: controltest serve|client|squat-full GROUP [OPTIONS]\n");
    return 2;
}
