#include "daemon/service/health_tests.h"

#include <gio/gio.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "core/glib_ptr.h"
#include "daemon/child_process.h"

namespace rais {

namespace {

constexpr unsigned kMaxRoundMs = 10000;
// Only the status line is read; a server sending an endless line is not
// buffered beyond this.
constexpr std::size_t kMaxStatusLine = 512;

enum class Kind { Tcp, Http, Exec };

struct Spec {
    Kind kind;
    std::string text;      // as configured, for messages
    std::string host;      // tcp, http
    unsigned port = 0;     // tcp, http
    std::string path;      // http path, exec program
};

std::optional<unsigned> parse_port(const std::string& s) {
    if (s.empty() || s.size() > 5 || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    unsigned long v = std::strtoul(s.c_str(), nullptr, 10);
    if (v == 0 || v > 65535) return std::nullopt;
    return static_cast<unsigned>(v);
}

// "HOST:PORT", "[V6]:PORT" or "PORT" (host 127.0.0.1)
bool split_host_port(const std::string& s, std::string* host, unsigned* port, const std::string& default_host) {
    std::string h = default_host, p = s;
    if (!s.empty() && s[0] == '[') {
        auto close = s.find(']');
        if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
        h = s.substr(1, close - 1);
        p = s.substr(close + 2);
    } else if (auto colon = s.rfind(':'); colon != std::string::npos) {
        h = s.substr(0, colon);
        p = s.substr(colon + 1);
    }
    auto port_v = parse_port(p);
    if (!port_v || h.empty()) return false;
    *host = h;
    *port = *port_v;
    return true;
}

std::optional<Spec> parse_spec(const std::string& t, std::string* why) {
    Spec s;
    s.text = t;
    if (t.rfind("tcp:", 0) == 0) {
        s.kind = Kind::Tcp;
        if (!split_host_port(t.substr(4), &s.host, &s.port, "127.0.0.1")) {
            *why = "expected tcp:PORT or tcp:HOST:PORT";
            return std::nullopt;
        }
        return s;
    }
    if (t.rfind("http:", 0) == 0) {
        s.kind = Kind::Http;
        auto target = parse_http_url(t.substr(5));
        if (!target) {
            *why = "expected http:http://HOST[:PORT]/PATH (plain HTTP only)";
            return std::nullopt;
        }
        s.host = target->host;
        s.port = target->port;
        s.path = target->path;
        return s;
    }
    if (t.rfind("exec:", 0) == 0 && t.size() > 5) {
        s.kind = Kind::Exec;
        s.path = t.substr(5);
        return s;
    }
    *why = "expected tcp:PORT, http:URL or exec:PATH";
    return std::nullopt;
}

}  // namespace

std::optional<HttpTarget> parse_http_url(const std::string& url) {
    const std::string scheme = "http://";
    if (url.compare(0, scheme.size(), scheme) != 0) return std::nullopt;
    std::string rest = url.substr(scheme.size());
    HttpTarget t;
    auto slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    if (slash != std::string::npos) t.path = rest.substr(slash);
    if (authority.empty()) return std::nullopt;
    bool has_port = authority.back() != ']' && authority.find(':') != std::string::npos &&
                    (authority[0] == '[' || authority.find(':') == authority.rfind(':'));
    if (has_port) {
        if (!split_host_port(authority, &t.host, &t.port, "")) return std::nullopt;
    } else if (authority[0] == '[') {
        if (authority.back() != ']' || authority.size() < 3) return std::nullopt;
        t.host = authority.substr(1, authority.size() - 2);
    } else {
        if (authority.find(':') != std::string::npos) return std::nullopt;  // bare IPv6 needs brackets
        t.host = authority;
    }
    if (t.path.find_first_of(" \r\n") != std::string::npos) return std::nullopt;
    return t;
}

std::optional<int> parse_http_status(const std::string& line) {
    // HTTP/1.x NNN reason
    if (line.compare(0, 5, "HTTP/") != 0) return std::nullopt;
    auto sp = line.find(' ');
    if (sp == std::string::npos || sp + 4 > line.size()) return std::nullopt;
    std::string code = line.substr(sp + 1, 3);
    if (code.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    if (sp + 4 < line.size() && line[sp + 4] != ' ' && line[sp + 4] != '\r') return std::nullopt;
    return std::atoi(code.c_str());
}

std::optional<std::string> HealthTests::check(const std::vector<std::string>& specs) {
    for (const auto& t : specs) {
        std::string why;
        if (!parse_spec(t, &why)) return "parameter 'tests': cannot run '" + t + "': " + why;
    }
    return std::nullopt;
}

// ------------------------------------------------------------------ rounds

namespace {

struct Probe {
    Spec spec;
    bool done = false, ok = false;
    std::string why;
    std::unique_ptr<ChildProcess> child;
    GObjectPtr<GSocketClient> client;
    GObjectPtr<GSocketConnection> conn;
    std::string request;
    std::string head;                 // the answer's first bytes, up to kMaxStatusLine
};

struct Round {
    GObjectPtr<GCancellable> cancel{g_cancellable_new()};
    std::vector<Probe> probes;
    std::size_t pending = 0;
    ~Round() { g_cancellable_cancel(cancel.get()); }
};

// What a GIO callback carries: the round may be gone by the time it runs.
struct ProbeRef {
    std::weak_ptr<Round> round;
    std::size_t index = 0;
    HealthTests::Impl* owner = nullptr;
    // A read's buffer: it lives as long as the read, even past its round.
    std::vector<char> chunk = {};
};

}  // namespace

struct HealthTests::Impl {
    std::vector<Spec> specs;
    unsigned interval_ms = 1000;
    Sink sink;
    Log log;
    guint timer = 0, deadline = 0;
    std::shared_ptr<Round> round;

    ~Impl() {
        if (timer) g_source_remove(timer);
        if (deadline) g_source_remove(deadline);
    }

    unsigned round_ms() const { return std::clamp(interval_ms * 9 / 10, 100u, kMaxRoundMs); }

    void start_round() {
        if (round) return;  // never two at once; the deadline ends every round
        auto r = std::make_shared<Round>();
        for (const auto& s : specs) {
            Probe p;
            p.spec = s;
            r->probes.push_back(std::move(p));
        }
        r->pending = r->probes.size();
        round = r;
        deadline = g_timeout_add(
            round_ms(),
            [](gpointer p) -> gboolean {
                auto* self = static_cast<Impl*>(p);
                self->deadline = 0;
                self->end_round();
                return G_SOURCE_REMOVE;
            },
            this);
        for (std::size_t i = 0; i < r->probes.size(); i++) {
            if (!round || round != r) return;  // a synchronous failure ended it
            run(r, i);
        }
    }

    void run(const std::shared_ptr<Round>& r, std::size_t i) {
        Probe& p = r->probes[i];
        switch (p.spec.kind) {
        case Kind::Exec: {
            ChildOptions o;
            o.timeout_ms = round_ms();
            std::weak_ptr<Round> weak = r;
            p.child = std::make_unique<ChildProcess>(
                std::vector<std::string>{p.spec.path}, o, [this, weak, i](const ChildResult& res) {
                    auto rr = weak.lock();
                    if (!rr) return;
                    std::string why = res.status() + (res.output.empty() ? "" : ": " + res.output.substr(0, 200));
                    finish(rr, i, res.ok(), why);
                });
            return;
        }
        case Kind::Tcp:
        case Kind::Http: {
            p.client.reset(g_socket_client_new());
            // Straight to the host: an http_proxy in raisd's environment must
            // not turn a test of this host into a test of the proxy.
            g_socket_client_set_enable_proxy(p.client.get(), FALSE);
            auto ref = std::make_unique<ProbeRef>(ProbeRef{r, i, this});
            g_socket_client_connect_to_host_async(p.client.get(), p.spec.host.c_str(),
                                                  static_cast<guint16>(p.spec.port), r->cancel.get(), on_connected,
                                                  ref.release());  // owned by on_connected
            return;
        }
        }
    }

    static void on_connected(GObject* src, GAsyncResult* res, gpointer data) {
        std::unique_ptr<ProbeRef> ref(static_cast<ProbeRef*>(data));
        GError* err = nullptr;
        GObjectPtr<GSocketConnection> conn(g_socket_client_connect_to_host_finish(G_SOCKET_CLIENT(src), res, &err));
        GErrorPtr errp(err);
        auto r = ref->round.lock();
        if (!r) return;
        Impl* self = ref->owner;
        Probe& p = r->probes[ref->index];
        if (!conn) return self->finish(r, ref->index, false, std::string("connect: ") + errp->message);
        if (p.spec.kind == Kind::Tcp) return self->finish(r, ref->index, true, "");
        // http: send the request, then read the status line.
        p.conn = std::move(conn);
        std::string host = p.spec.host.find(':') != std::string::npos ? "[" + p.spec.host + "]" : p.spec.host;
        p.request = "GET " + p.spec.path + " HTTP/1.0\r\nHost: " + host + "\r\nUser-Agent: raisd\r\nConnection: close\r\n\r\n";
        GOutputStream* out = g_io_stream_get_output_stream(G_IO_STREAM(p.conn.get()));
        g_output_stream_write_all_async(out, p.request.data(), p.request.size(), G_PRIORITY_DEFAULT, r->cancel.get(),
                                        on_written, ref.release());
    }

    static void on_written(GObject* src, GAsyncResult* res, gpointer data) {
        std::unique_ptr<ProbeRef> ref(static_cast<ProbeRef*>(data));
        GError* err = nullptr;
        gboolean ok = g_output_stream_write_all_finish(G_OUTPUT_STREAM(src), res, nullptr, &err);
        GErrorPtr errp(err);
        auto r = ref->round.lock();
        if (!r) return;
        Impl* self = ref->owner;
        Probe& p = r->probes[ref->index];
        if (!ok) return self->finish(r, ref->index, false, std::string("sending the request: ") + errp->message);
        read_more(r, p, std::move(ref));
    }

    static void read_more(const std::shared_ptr<Round>& r, Probe& p, std::unique_ptr<ProbeRef> ref) {
        ref->chunk.resize(kMaxStatusLine - p.head.size());
        GInputStream* in = g_io_stream_get_input_stream(G_IO_STREAM(p.conn.get()));
        char* buf = ref->chunk.data();
        std::size_t size = ref->chunk.size();
        g_input_stream_read_async(in, buf, size, G_PRIORITY_DEFAULT, r->cancel.get(), on_read, ref.release());
    }

    static void on_read(GObject* src, GAsyncResult* res, gpointer data) {
        std::unique_ptr<ProbeRef> ref(static_cast<ProbeRef*>(data));
        GError* err = nullptr;
        gssize n = g_input_stream_read_finish(G_INPUT_STREAM(src), res, &err);
        GErrorPtr errp(err);
        auto r = ref->round.lock();
        if (!r) return;
        Impl* self = ref->owner;
        Probe& p = r->probes[ref->index];
        if (n < 0)
            return self->finish(r, ref->index, false,
                                std::string("reading the answer: ") + (errp ? errp->message : "error"));
        p.head.append(ref->chunk.data(), static_cast<std::size_t>(n));
        auto eol = p.head.find('\n');
        if (eol == std::string::npos && n > 0 && p.head.size() < kMaxStatusLine)
            return read_more(r, p, std::move(ref));
        if (p.head.empty()) return self->finish(r, ref->index, false, "no answer");
        std::string line = p.head.substr(0, eol);
        GCharPtr valid(g_utf8_make_valid(line.data(), static_cast<gssize>(line.size())));
        std::string first = g_strstrip(valid.get());
        auto status = parse_http_status(first);
        if (!status) return self->finish(r, ref->index, false, "not an HTTP answer: '" + first.substr(0, 80) + "'");
        bool pass = *status >= 200 && *status < 400;
        self->finish(r, ref->index, pass, pass ? "" : "answered '" + first.substr(0, 80) + "'");
    }

    void finish(const std::shared_ptr<Round>& r, std::size_t i, bool ok, const std::string& why) {
        Probe& p = r->probes[i];
        if (p.done) return;
        p.done = true;
        p.ok = ok;
        p.why = why;
        // Close the connection now: a test must not hold sockets open.
        p.conn.reset();
        if (--r->pending == 0 && round == r) end_round();
    }

    void end_round() {
        std::shared_ptr<Round> r = std::move(round);
        round.reset();
        if (deadline) {
            g_source_remove(deadline);
            deadline = 0;
        }
        if (!r) return;
        bool ok = true;
        std::string detail;
        for (auto& p : r->probes) {
            if (!p.done) {
                p.ok = false;
                p.why = "timed out after " + std::to_string(round_ms()) + " ms";
            }
            if (!p.ok) {
                ok = false;
                if (!detail.empty()) detail += "; ";
                detail += p.spec.text + ": " + p.why;
            }
        }
        // Destroying the round cancels what still runs and kills children.
        r.reset();
        sink(ok, ok ? "health tests pass" : detail);
    }
};

HealthTests::HealthTests(std::vector<std::string> specs, unsigned interval_ms, Sink sink, Log log)
    : impl_(std::make_unique<Impl>()) {
    for (const auto& t : specs) {
        std::string why;
        if (auto s = parse_spec(t, &why)) impl_->specs.push_back(*s);
    }
    impl_->interval_ms = std::max(interval_ms, 100u);
    impl_->sink = std::move(sink);
    impl_->log = std::move(log);
}

HealthTests::~HealthTests() = default;

void HealthTests::start() {
    Impl* i = impl_.get();
    if (i->specs.empty()) return;
    i->start_round();
    i->timer = g_timeout_add(
        i->interval_ms,
        [](gpointer p) -> gboolean {
            static_cast<Impl*>(p)->start_round();
            return G_SOURCE_CONTINUE;
        },
        i);
}

}  // namespace rais
