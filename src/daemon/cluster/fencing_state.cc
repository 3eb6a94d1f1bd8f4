#include "daemon/cluster/fencing_state.h"

#include <cctype>
#include <sstream>
#include <vector>

namespace rais {

StonithState next_stonith_state(const StonithState& prev, StonithAnswer answer, bool value, const std::string& detail) {
    StonithState next = prev;
    switch (answer) {
    case StonithAnswer::Value:
        next.enabled = value;
        next.detail = detail;
        break;
    case StonithAnswer::NotInstalled:
        next.enabled = false;
        next.detail = detail;
        break;
    case StonithAnswer::Failed:
        // Unknown is not off: the value stays, only the words say why.
        next.detail = detail + (prev.enabled ? std::string("; keeping the last answer, stonith-enabled=") +
                                                   (*prev.enabled ? "true" : "false")
                                             : std::string("; no answer yet, so departed hosts wait for a fence"));
        break;
    }
    return next;
}

in::FencingMode fencing_mode(Fencing configured, const StonithState& stonith, std::optional<bool> two_node) {
    in::FencingMode m;
    m.two_node = two_node.value_or(true);
    switch (configured) {
    case Fencing::Off:
        m.active = false;
        m.why = "fencing=off";
        break;
    case Fencing::Require:
        m.active = true;
        m.why = "fencing=require";
        break;
    case Fencing::Auto:
        m.active = stonith.enabled.value_or(true);
        m.why = "fencing=auto and " + stonith.detail;
        break;
    }
    if (!m.active && m.two_node)
        m.why += two_node ? "; corosync two_node: both halves of a split stay quorate, so a departed peer's "
                            "addresses are not taken without a fence"
                          : "; corosync's two_node is unknown (counted as set), so a departed peer's addresses "
                            "are not taken without a fence";
    return m;
}

std::optional<bool> corosync_conf_two_node(const std::string& text) {
    // corosync.conf: "name {" opens a section, "}" closes it, "key: value"
    // sets a key, '#' starts a comment line. Only top-level quorum counts.
    std::vector<std::string> path;
    std::optional<bool> two_node;
    std::istringstream in(text);
    std::string line;
    auto trim = [](std::string s) {
        std::size_t b = 0, e = s.size();
        while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
        while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
        return s.substr(b, e - b);
    };
    while (std::getline(in, line)) {
        std::string l = trim(line);
        if (l.empty() || l[0] == '#') continue;
        if (l.back() == '{') {
            path.push_back(trim(l.substr(0, l.size() - 1)));
            continue;
        }
        if (l == "}") {
            if (path.empty()) return std::nullopt;
            path.pop_back();
            continue;
        }
        auto colon = l.find(':');
        if (colon == std::string::npos) continue;
        if (path.size() == 1 && path[0] == "quorum" && trim(l.substr(0, colon)) == "two_node") {
            std::string v = trim(l.substr(colon + 1));
            two_node = v == "1" || v == "yes" || v == "on" || v == "true";
        }
    }
    if (!path.empty()) return std::nullopt;
    return two_node.value_or(false);
}

}  // namespace rais
