// ControlProtocol: what raisctl and raisd say over the control socket.
// One JSON object each way, after libqb's request/response header:
//   request  {"command": "status", "args": ["--json"], "node": "n2"}
//   response {"exit": 0, "stdout": "...", "stderr": "..."}
// raisctl prints stdout and stderr as given and exits with "exit", so every
// message users see is written in one place: the daemon.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace rais {

constexpr int kControlRequestId = 1;
constexpr std::size_t kControlMaxMessage = 4 * 1024 * 1024;

struct ControlRequest {
    std::string command;              // status, quiesce, unquiesce, move, events, plan
    std::vector<std::string> args;    // the command's own arguments
};

struct ControlResponse {
    int exit = 0;                     // 0 done, 1 failed, 2 usage (DESIGN §5.2)
    std::string out, err;
};

std::string control_service_name(const std::string& group);  // "rais-<group>"
std::string encode_request(const ControlRequest& r);
std::optional<ControlRequest> decode_request(const std::string& json, std::string* error);
std::string encode_response(const ControlResponse& r);
std::optional<ControlResponse> decode_response(const std::string& json, std::string* error);

}  // namespace rais
