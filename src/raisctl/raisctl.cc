// raisctl: the administrator's command line for rais service groups
// (DESIGN §5.2). `plan --view` is self-contained: it runs the core's planner
// on a described view. Every other command is sent to the group's raisd over
// its control socket (libqb IPC "rais-<group>"), which writes the answer;
// raisctl prints it and exits with the status raisd chose.
#include <glib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <qb/qbipc_common.h>
#include <qb/qbipcc.h>
#include <signal.h>
#include <sys/uio.h>

#include "common/control_protocol.h"
#include "common/group_name.h"
#include "core/address.h"
#include "core/glib_ptr.h"
#include "core/model.h"
#include "core/planner.h"
#include "core/random.h"
#include "core/view_json.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

// Overridable at build time so tests can point raisctl at a scratch
// directory without root.
#ifndef RAIS_RUNDIR
#define RAIS_RUNDIR "/run/rais"
#endif

namespace {

// DESIGN §5.2: 0 done, 1 failed, 2 usage, 3 no such group running here.
enum class Exit : int { Ok = 0, Failed = 1, Usage = 2, NoGroup = 3 };

// The synopsis alone goes with a usage error; --help adds the details.
constexpr const char* kSynopsis =
    "Usage:\n"
    "  raisctl [-g GROUP] status [--json]          leader, members, addresses, DNS, orphans\n"
    "  raisctl [-g GROUP] quiesce [NODE]           keep current addresses, take no new ones\n"
    "  raisctl [-g GROUP] unquiesce [NODE]\n"
    "  raisctl [-g GROUP] move ADDRESS NODE        planned move, no client-visible gap\n"
    "  raisctl [-g GROUP] move ADDRESS --unpin     let failback move ADDRESS again\n"
    "  raisctl [-g GROUP] events [--json]          recent events, newest last\n"
    "  raisctl [-g GROUP] plan --fail NODE...      what the leader would do if NODEs failed\n"
    "  raisctl plan --view FILE|- [--seed N]       the leader's decisions for a described view\n"
    "  raisctl --help | --version\n";

constexpr const char* kDetails =
    "\n"
    "-g GROUP may be left out when one group runs on this host. quiesce and\n"
    "unquiesce act on this host when NODE is left out. plan --view reads the view\n"
    "from FILE (- for standard input) and prints one JSON decision a line; --seed\n"
    "seeds placement=random (default 1).\n"
    "\n"
    "Every command but plan --view talks to raisd, which accepts only root and\n"
    "members of group haclient; raisctl refuses a control socket not served by root.\n"
    "\n"
    "Exit status: 0 done, 1 failed, 2 usage or bad input, 3 no such group running here.\n";

struct Options {
    std::optional<std::string> group;
    std::string command;
    std::vector<std::string> operands;
    bool json = false;
    bool unpin = false;
    bool fail = false;
    std::optional<std::string> view;
    std::optional<std::uint64_t> seed;
};

// What parse_args() decided beyond the options themselves.
enum class Parsed { Run, Help, Version, Bad };

void say(const std::string& msg) { std::fprintf(stderr, "raisctl: %s\n", msg.c_str()); }

Exit usage_error(const std::string& msg) {
    say(msg);
    std::fputs(kSynopsis, stderr);
    return Exit::Usage;
}

// raisd's own rule (common/group_name.h): a name raisd runs is always reachable.
bool valid_group(const std::string& g) { return rais::valid_group_name(g); }

// Splits "--opt=value" and "--opt value" (and "-gGROUP", "-g GROUP") alike.
// Returns false, with *why set, when a value is missing.
bool take_value(const std::vector<std::string>& args, std::size_t* i, const std::string& name,
                std::string* value, std::string* why) {
    const std::string& a = args[*i];
    if (a.size() > name.size() && a.compare(0, name.size(), name) == 0) {
        std::size_t skip = name.size() + (a[name.size()] == '=' ? 1 : 0);
        *value = a.substr(skip);
    } else if (*i + 1 < args.size()) {
        *value = args[++*i];
    } else {
        value->clear();
    }
    if (value->empty()) *why = "option " + name + " needs a value";
    return !value->empty();
}

// "--name", "--name=VALUE", and for a short option also "-nVALUE".
bool is_option(const std::string& a, const std::string& name) {
    if (a.compare(0, name.size(), name) != 0) return false;
    return a.size() == name.size() || name.size() == 2 || a[name.size()] == '=';
}

Parsed parse_args(const std::vector<std::string>& args, Options* o, std::string* why) {
    static const std::vector<std::string> commands = {"status", "quiesce", "unquiesce", "move",
                                                      "events", "plan"};
    bool options_done = false;
    for (std::size_t i = 0; i < args.size(); i++) {
        const std::string& a = args[i];
        if (options_done || a.empty() || a[0] != '-' || a == "-") {
            if (o->command.empty()) {
                bool known = false;
                for (const auto& c : commands) known = known || c == a;
                if (!known) {
                    *why = "unknown command '" + a + "'";
                    return Parsed::Bad;
                }
                o->command = a;
            } else {
                o->operands.push_back(a);
            }
            continue;
        }
        std::string value;
        if (a == "--") {
            options_done = true;
        } else if (a == "-h" || a == "--help") {
            return Parsed::Help;
        } else if (a == "--version") {
            return Parsed::Version;
        } else if (is_option(a, "-g") || is_option(a, "--group")) {
            if (!take_value(args, &i, is_option(a, "-g") ? "-g" : "--group", &value, why))
                return Parsed::Bad;
            if (!valid_group(value)) {
                *why = "'" + value + "' is not a group name (" + rais::kGroupNameRule + ")";
                return Parsed::Bad;
            }
            o->group = value;
        } else if (a == "--json") {
            o->json = true;
        } else if (a == "--unpin") {
            o->unpin = true;
        } else if (a == "--fail") {
            o->fail = true;
        } else if (is_option(a, "--view")) {
            if (!take_value(args, &i, "--view", &value, why)) return Parsed::Bad;
            o->view = value;
        } else if (is_option(a, "--seed")) {
            if (!take_value(args, &i, "--seed", &value, why)) return Parsed::Bad;
            guint64 seed = 0;
            GError* raw = nullptr;
            if (!g_ascii_string_to_unsigned(value.c_str(), 10, 0, G_MAXUINT64, &seed, &raw)) {
                rais::GErrorPtr err(raw);
                *why = "--seed: " + std::string(err->message);
                return Parsed::Bad;
            }
            o->seed = seed;
        } else {
            *why = "unknown option '" + a + "'";
            return Parsed::Bad;
        }
    }
    if (o->command.empty()) {
        *why = "no command given";
        return Parsed::Bad;
    }
    return Parsed::Run;
}

// Options that belong to one command only are refused elsewhere, so a typo
// such as `raisctl move ADDR NODE --json` is not silently ignored.
std::optional<std::string> check_args(const Options& o) {
    const std::string& c = o.command;
    if (o.json && c != "status" && c != "events") return "--json applies to status and events only";
    if (o.unpin && c != "move") return "--unpin applies to move only";
    if ((o.fail || o.view || o.seed) && c != "plan") return "--fail, --view and --seed apply to plan only";

    if (c == "status" || c == "events") {
        if (!o.operands.empty()) return c + " takes no operands, got '" + o.operands.front() + "'";
    } else if (c == "quiesce" || c == "unquiesce") {
        if (o.operands.size() > 1) return c + " takes at most one NODE";
    } else if (c == "move") {
        if (o.operands.size() > 2) return "move takes ADDRESS and NODE only, got '" + o.operands[2] + "'";
        if (o.operands.size() < (o.unpin ? 1u : 2u))
            return o.unpin ? "move --unpin needs ADDRESS" : "move needs ADDRESS and NODE";
        std::string why;
        // The prefix names nothing new (addresses are the same whatever
        // their prefix), so the operator need not repeat it.
        if (!rais::ServiceAddress::parse(o.operands[0], &why, false))
            return "'" + o.operands[0] + "' is not an address: " + why;
    } else if (c == "plan") {
        if (o.fail == o.view.has_value()) return "plan needs either --fail NODE... or --view FILE";
        if (o.fail && o.operands.empty()) return "plan --fail needs at least one NODE";
        if (o.view && !o.operands.empty()) return "plan --view takes no operands, got '" + o.operands.front() + "'";
    }
    return std::nullopt;
}

// ------------------------------------------------------------------ daemon

// raisd writes RAIS_RUNDIR/<group>.pid and listens on the libqb service
// "rais-<group>" (an abstract socket, so per network namespace).
bool pid_alive(const std::filesystem::path& pidfile) {
    std::FILE* f = std::fopen(pidfile.c_str(), "r");
    if (!f) return false;
    long pid = 0;
    bool ok = std::fscanf(f, "%ld", &pid) == 1 && pid > 0;
    std::fclose(f);
    return ok && (kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

struct Lookup {
    std::optional<std::string> group;
    Exit code = Exit::Ok;   // when no group: NoGroup, or Usage when -g is needed
    std::string message;
};

// The named group, or the only group running here.
Lookup find_group(const std::optional<std::string>& group) {
    const std::filesystem::path dir = RAIS_RUNDIR;
    if (group) return {*group, Exit::Ok, ""};
    std::vector<std::string> found;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const auto& p = it->path();
        if (p.extension() == ".pid" && pid_alive(p)) found.push_back(p.stem().string());
    }
    if (found.empty()) return {std::nullopt, Exit::NoGroup, "no service group running here"};
    if (found.size() > 1) {
        std::sort(found.begin(), found.end());
        std::string names;
        for (const auto& f : found) names += (names.empty() ? "" : ", ") + f;
        return {std::nullopt, Exit::Usage, "several groups run here (" + names + "): name one with -g GROUP"};
    }
    return {found.front(), Exit::Ok, ""};
}

struct IpccDeleter {
    void operator()(qb_ipcc_connection_t* c) const { qb_ipcc_disconnect(c); }
};

Exit untrusted(const std::string& name, long pid, long uid) {
    say("the control socket " + name + " is served by pid " + std::to_string(pid) + " (uid " + std::to_string(uid) +
        "), not by root: refusing to trust it");
    return Exit::Failed;
}

Exit run_daemon_command(const Options& o) {
    Lookup l = find_group(o.group);
    if (!l.group) {
        say(l.message);
        return l.code;
    }
    const std::string name = rais::control_service_name(*l.group);
    // Anyone may claim the name first. The kernel says who listens before
    // libqb's handshake, so a non-root listener is refused before it can
    // answer (or keep raisctl waiting for an answer).
    auto holder = rais::control_socket_owner(name);
    if (holder && holder->uid != 0) return untrusted(name, holder->pid, holder->uid);
    errno = 0;
    std::unique_ptr<qb_ipcc_connection_t, IpccDeleter> conn(
        qb_ipcc_connect(name.c_str(), rais::kControlMaxMessage));
    if (!conn) {
        int e = errno;
        if (e == EACCES) {
            say("raisd of group " + *l.group + " refused the connection: only root and members of group haclient " +
                "may use its control socket");
            return Exit::Failed;
        }
        if (e == EAGAIN && holder) {
            say("raisd of group " + *l.group + " refused the connection: this user holds as many connections as " +
                "it may; try again when they are closed");
            return Exit::Failed;
        }
        if (!holder) {
            say("no group " + *l.group + " running here");
            return Exit::NoGroup;
        }
        say("cannot connect to raisd of group " + *l.group + ": " + std::strerror(e));
        return Exit::Failed;
    }
    // And again from libqb's handshake, in case the name changed hands
    // between the two looks.
    pid_t server_pid = 0;
    uid_t server_uid = 0;
    gid_t server_gid = 0;
    if (qb_ipcc_auth_get(conn.get(), &server_pid, &server_uid, &server_gid) != 0) {
        say("cannot learn who serves the control socket " + name + ": refusing to trust it");
        return Exit::Failed;
    }
    if (server_uid != 0) return untrusted(name, server_pid, server_uid);
    // The server fixed the buffer; an answer fills at most all of it.
    int32_t bufsize = qb_ipcc_get_buffer_size(conn.get());
    if (bufsize <= static_cast<int32_t>(sizeof(struct qb_ipc_response_header))) {
        say("raisd of group " + *l.group + " offered an unusable buffer of " + std::to_string(bufsize) + " bytes");
        return Exit::Failed;
    }
    rais::ControlRequest req;
    req.command = o.command;
    if (o.json) req.args.push_back("--json");
    if (o.fail) req.args.push_back("--fail");
    for (const auto& op : o.operands) req.args.push_back(op);
    if (o.unpin) req.args.push_back("--unpin");
    std::string body = rais::encode_request(req);
    if (body.size() > rais::kControlMaxRequest)
        return usage_error("the request is " + std::to_string(body.size()) + " bytes; raisd takes at most " +
                           std::to_string(rais::kControlMaxRequest));
    struct qb_ipc_request_header hdr {};
    hdr.id = rais::kControlRequestId;
    hdr.size = static_cast<int32_t>(sizeof hdr + body.size());
    struct iovec iov[2] = {{&hdr, sizeof hdr}, {body.data(), body.size()}};
    std::vector<char> buf(static_cast<std::size_t>(bufsize));
    ssize_t n = qb_ipcc_sendv_recv(conn.get(), iov, 2, buf.data(), buf.size(), 30000);
    if (n < static_cast<ssize_t>(sizeof(struct qb_ipc_response_header))) {
        say("no answer from raisd of group " + *l.group + (n < 0 ? std::string(": ") + std::strerror(static_cast<int>(-n)) : ""));
        return Exit::Failed;
    }
    std::string text(buf.data() + sizeof(struct qb_ipc_response_header),
                     static_cast<std::size_t>(n) - sizeof(struct qb_ipc_response_header));
    std::string err;
    auto resp = rais::decode_response(text, &err);
    if (!resp) {
        say("garbled answer from raisd: " + err);
        return Exit::Failed;
    }
    std::fputs(resp->out.c_str(), stdout);
    std::fputs(resp->err.c_str(), stderr);
    return static_cast<Exit>(resp->exit);
}

// ------------------------------------------------------------------ plan --view

struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// Reads all of `path` ("-" is standard input). On failure returns nullopt
// with *why naming the file and the system's reason.
std::optional<std::string> read_all(const std::string& path, std::string* why) {
    FilePtr owned;
    std::FILE* f = stdin;
    const std::string name = path == "-" ? "standard input" : path;
    if (path != "-") {
        owned.reset(std::fopen(path.c_str(), "rb"));
        if (!owned) {
            *why = name + ": " + std::strerror(errno);
            return std::nullopt;
        }
        f = owned.get();
    }
    std::string text;
    char buf[65536];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    if (std::ferror(f)) {
        *why = name + ": " + std::strerror(errno);
        return std::nullopt;
    }
    return text;
}

Exit run_plan_view(const Options& o) {
    std::string why;
    auto text = read_all(*o.view, &why);
    if (!text) {
        say(why);
        return Exit::Usage;
    }
    rais::View view;
    if (auto err = rais::parse_view(*text, &view)) {
        say(err->message);
        return Exit::Usage;
    }
    rais::RandomSource random(o.seed.value_or(1));
    rais::Plan plan = rais::plan(view, random);
    for (const auto& note : plan.notes) say("note: " + note);
    for (const auto& d : plan.decisions) std::printf("%s\n", rais::decision_to_json(d).c_str());
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
        say(std::string("cannot write the decisions: ") + std::strerror(errno));
        return Exit::Failed;
    }
    return Exit::Ok;
}

Exit run(const std::vector<std::string>& args) {
    Options o;
    std::string why;
    switch (parse_args(args, &o, &why)) {
    case Parsed::Help:
        std::fputs(kSynopsis, stdout);
        std::fputs(kDetails, stdout);
        return Exit::Ok;
    case Parsed::Version:
        std::printf("raisctl (rais) %s\n", PACKAGE_VERSION);
        return Exit::Ok;
    case Parsed::Bad:
        return usage_error(why);
    case Parsed::Run:
        break;
    }
    if (auto bad = check_args(o)) return usage_error(*bad);
    if (o.command == "plan" && o.view) return run_plan_view(o);
    return run_daemon_command(o);
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    return static_cast<int>(run(args));
}
