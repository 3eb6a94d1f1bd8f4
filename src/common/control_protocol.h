// ControlProtocol: what raisctl and raisd say over the control socket.
// One JSON object each way, after libqb's request/response header:
//   request  {"command": "status", "args": ["--json"], "node": "n2"}
//   response {"exit": 0, "stdout": "...", "stderr": "..."}
// raisctl prints stdout and stderr as given and exits with "exit", so every
// message users see is written in one place: the daemon.
//
// Invariants: both ends treat the other's bytes as hostile. A text is
// measured and its nesting scanned (json_bounds_error) before any JSON
// parser sees it, since json-glib recurses once per level. raisd fixes the
// IPC buffer at kControlMaxMessage for every connection, whatever the client
// asks, and raisctl sizes its receive buffer from what the connection says.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rais {

constexpr int kControlRequestId = 1;
// The libqb buffer of every connection (each of its three shared-memory
// rings is this big), fixed by the server.
constexpr std::size_t kControlMaxMessage = 4 * 1024 * 1024;
// A request's JSON text. raisctl's requests are a few hundred bytes.
constexpr std::size_t kControlMaxRequest = 64 * 1024;
// Arrays and objects inside one another; requests and answers use 2.
constexpr int kControlMaxDepth = 8;
// An answer's JSON text: the buffer less room for libqb's response header
// and its ring buffer's chunk bookkeeping. A longer answer is replaced by an
// error saying so, never dropped.
constexpr std::size_t kControlMaxAnswer = kControlMaxMessage - 64 * 1024;

struct ControlRequest {
    std::string command;              // status, quiesce, unquiesce, move, events, plan
    std::vector<std::string> args;    // the command's own arguments
};

struct ControlResponse {
    int exit = 0;                     // 0 done, 1 failed, 2 usage (DESIGN §5.2)
    std::string out, err;
};

std::string control_service_name(const std::string& group);  // "rais-<group>"

// nullopt when `json` has at most `max_bytes` bytes and nests arrays and
// objects at most `max_depth` deep; otherwise a one-line reason that calls
// the text `what`. One pass, no recursion: safe on any input of any size.
std::optional<std::string> json_bounds_error(std::string_view json, std::size_t max_bytes, int max_depth,
                                             const std::string& what = "text");

// The process listening on the abstract socket a libqb service `name` uses,
// as the kernel recorded it when that process called listen() (SO_PEERCRED):
// nothing is read from or written to the socket, so a hostile listener can
// neither lie nor make the caller wait. nullopt when nobody listens there
// (or the listener cannot be reached; *error then says why, if given).
struct SocketOwner {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
};
std::optional<SocketOwner> control_socket_owner(const std::string& name, std::string* error = nullptr);
std::string encode_request(const ControlRequest& r);
// Refuses, without parsing, a text over kControlMaxRequest or nested deeper
// than kControlMaxDepth.
std::optional<ControlRequest> decode_request(const std::string& json, std::string* error);
std::string encode_response(const ControlResponse& r);
// Refuses, without parsing, a text over kControlMaxMessage or nested deeper
// than kControlMaxDepth.
std::optional<ControlResponse> decode_response(const std::string& json, std::string* error);

}  // namespace rais
