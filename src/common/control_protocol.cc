#include "common/control_protocol.h"

#include <json-glib/json-glib.h>

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
