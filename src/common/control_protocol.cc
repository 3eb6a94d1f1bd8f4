#include "common/control_protocol.h"

#include <json-glib/json-glib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/glib_ptr.h"

namespace rais {

namespace {
std::string to_text(JsonBuilder* b) {
    GObjectPtr<JsonGenerator> gen(json_generator_new());
    JsonNode* root = json_builder_get_root(b);
    json_generator_set_root(gen.get(), root);
    json_node_free(root);
    GCharPtr text(json_generator_to_data(gen.get(), nullptr));
    return text.get();
}

JsonObject* parse_object(JsonParser* p, const std::string& json, std::string* error) {
    GError* e = nullptr;
    if (!json_parser_load_from_data(p, json.data(), static_cast<gssize>(json.size()), &e)) {
        GErrorPtr owned(e);
        *error = owned->message;
        return nullptr;
    }
    JsonNode* root = json_parser_get_root(p);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        *error = "not a JSON object";
        return nullptr;
    }
    return json_node_get_object(root);
}
}  // namespace

std::string control_service_name(const std::string& group) { return "rais-" + group; }

std::optional<std::string> json_bounds_error(std::string_view json, std::size_t max_bytes, int max_depth,
                                             const std::string& what) {
    if (json.size() > max_bytes)
        return what + " of " + std::to_string(json.size()) + " bytes exceeds the " + std::to_string(max_bytes) +
               "-byte limit";
    int depth = 0;
    bool in_string = false, escaped = false;
    for (char c : json) {
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return what + " nests arrays and objects deeper than " + std::to_string(max_depth) + " levels";
        } else if ((c == ']' || c == '}') && depth > 0) {
            // An unbalanced closer is the parser's to report.
            depth--;
        }
    }
    return std::nullopt;
}

std::optional<SocketOwner> control_socket_owner(const std::string& name, std::string* error) {
    auto fail = [error](const std::string& why) -> std::optional<SocketOwner> {
        if (error) *error = why;
        return std::nullopt;
    };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return fail(std::string("socket: ") + std::strerror(errno));
    // libqb's abstract address: a NUL, the name, NULs to the end of sun_path,
    // and the whole structure as the length.
    struct sockaddr_un a {};
    a.sun_family = AF_UNIX;
    std::size_t n = std::min(name.size(), sizeof a.sun_path - 2);
    std::memcpy(a.sun_path + 1, name.data(), n);
    std::optional<SocketOwner> owner;
    std::string why;
    if (connect(fd, reinterpret_cast<struct sockaddr*>(&a), sizeof a) == 0) {
        struct ucred cred {};
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof cred)
            owner = SocketOwner{cred.pid, cred.uid, cred.gid};
        else
            why = std::string("SO_PEERCRED: ") + std::strerror(errno);
    } else if (errno != ECONNREFUSED && errno != ENOENT) {
        // EAGAIN: somebody listens but its backlog is full.
        why = std::string("connect: ") + std::strerror(errno);
    }
    close(fd);
    if (!owner && !why.empty()) return fail(why);
    return owner;
}

std::string encode_request(const ControlRequest& r) {
    GObjectPtr<JsonBuilder> b(json_builder_new());
    json_builder_begin_object(b.get());
    json_builder_set_member_name(b.get(), "command");
    json_builder_add_string_value(b.get(), r.command.c_str());
    json_builder_set_member_name(b.get(), "args");
    json_builder_begin_array(b.get());
    for (const auto& a : r.args) json_builder_add_string_value(b.get(), a.c_str());
    json_builder_end_array(b.get());
    json_builder_end_object(b.get());
    return to_text(b.get());
}

std::optional<ControlRequest> decode_request(const std::string& json, std::string* error) {
    if (auto bad = json_bounds_error(json, kControlMaxRequest, kControlMaxDepth, "request")) {
        *error = *bad;
        return std::nullopt;
    }
    GObjectPtr<JsonParser> p(json_parser_new());
    JsonObject* o = parse_object(p.get(), json, error);
    if (!o) return std::nullopt;
    ControlRequest r;
    JsonNode* cmd = json_object_get_member(o, "command");
    if (!cmd || json_node_get_value_type(cmd) != G_TYPE_STRING) {
        *error = "request without a command";
        return std::nullopt;
    }
    r.command = json_node_get_string(cmd);
    if (JsonNode* args = json_object_get_member(o, "args")) {
        if (!JSON_NODE_HOLDS_ARRAY(args)) {
            *error = "args is not an array";
            return std::nullopt;
        }
        JsonArray* a = json_node_get_array(args);
        for (guint i = 0; i < json_array_get_length(a); i++) {
            JsonNode* n = json_array_get_element(a, i);
            if (json_node_get_value_type(n) != G_TYPE_STRING) {
                *error = "args must be strings";
                return std::nullopt;
            }
            r.args.push_back(json_node_get_string(n));
        }
    }
    return r;
}

std::string encode_response(const ControlResponse& r) {
    GObjectPtr<JsonBuilder> b(json_builder_new());
    json_builder_begin_object(b.get());
    json_builder_set_member_name(b.get(), "exit");
    json_builder_add_int_value(b.get(), r.exit);
    json_builder_set_member_name(b.get(), "stdout");
    json_builder_add_string_value(b.get(), r.out.c_str());
    json_builder_set_member_name(b.get(), "stderr");
    json_builder_add_string_value(b.get(), r.err.c_str());
    json_builder_end_object(b.get());
    return to_text(b.get());
}

std::optional<ControlResponse> decode_response(const std::string& json, std::string* error) {
    if (auto bad = json_bounds_error(json, kControlMaxMessage, kControlMaxDepth, "answer")) {
        *error = *bad;
        return std::nullopt;
    }
    GObjectPtr<JsonParser> p(json_parser_new());
    JsonObject* o = parse_object(p.get(), json, error);
    if (!o) return std::nullopt;
    ControlResponse r;
    r.exit = static_cast<int>(json_object_get_int_member_with_default(o, "exit", 1));
    r.out = json_object_get_string_member_with_default(o, "stdout", "");
    r.err = json_object_get_string_member_with_default(o, "stderr", "");
    return r;
}

}  // namespace rais
