// dnsupdate: drives DnsUpdater (src/daemon/outside/dns_updater.h) from the command
// line, for manual checks and the DNS tests against a real `named`.
//
//   dnsupdate --server ADDR[:PORT] --zone ZONE --name NAME [--ttl T] [--key FILE]
//             [--destroy-after MS | --destroy-in-done] COMMAND
//   commands:
//     read                        the A and AAAA records of NAME
//     set ADDR...                 read, then replace what the read found with ADDR... (none: remove all)
//     set-expect EXPECTED ADDR... replace, believing EXPECTED (comma-separated; "" or "-" for none) is there
//     read-twice                  read, and read again while the first runs (the second must fail: busy)
//     read-loop COUNT MS          COUNT reads with one updater, one every MS ms, one line each
//                                 ("HH:MM:SS.mmm ok|FAIL published|detail"); exit 0 when the last one worked
//   dnsupdate parse-key FILE      parse a BIND key file: prints "NAME ALGORITHM"
//
// Each operation prints
//   ok: yes|no
//   outcome: ok|prerequisite|rejected|no-answer|bad-answer|invalid
//   detail: ...
//   published: ADDR,ADDR | (none) | (unknown)
//   elapsed: 0.012 s
// --destroy-in-done destroys the updater from inside the (last) operation's
// callback, which the interface allows.
// --destroy-after MS destroys the updater MS ms after starting the command's
// first operation, waits 3 s more and prints "destroyed: done not called"
// (exit 0) or "destroyed: done called" (exit 1): the destructor's promise.
// Exit status: 0 when the (last) operation succeeded, 1 when it failed, 2 on
// usage or configuration errors (the message names the problem).
#include <glib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "daemon/outside/dns_updater.h"

namespace {

const char* outcome_name(rais::DnsOutcome o) {
    switch (o) {
    case rais::DnsOutcome::Ok: return "ok";
    case rais::DnsOutcome::Prerequisite: return "prerequisite";
    case rais::DnsOutcome::Rejected: return "rejected";
    case rais::DnsOutcome::NoAnswer: return "no-answer";
    case rais::DnsOutcome::BadAnswer: return "bad-answer";
    case rais::DnsOutcome::Invalid: return "invalid";
    }
    return "?";
}

std::string join(const std::set<std::string>& s) {
    std::string out;
    for (const auto& a : s) out += (out.empty() ? "" : ",") + a;
    return out.empty() ? "(none)" : out;
}

void print(const char* what, const rais::DnsResult& r, std::chrono::steady_clock::time_point t0) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("== %s\nok: %s\noutcome: %s\ndetail: %s\npublished: %s\nelapsed: %.3f s\n", what, r.ok ? "yes" : "no",
                outcome_name(r.outcome), r.detail.c_str(), r.published_known ? join(r.published).c_str() : "(unknown)",
                secs);
    std::fflush(stdout);
}

int usage() {
    std::fprintf(stderr,
                 "usage: dnsupdate --server ADDR[:PORT] --zone ZONE --name NAME [--ttl T] [--key FILE]\n"
                 "                 [--destroy-after MS | --destroy-in-done]\n"
                 "                 (read | set ADDR... | set-expect EXPECTED_CSV ADDR... | read-twice | read-loop COUNT MS)\n"
                 "       dnsupdate parse-key FILE\n");
    return 2;
}

std::set<std::string> split_csv(const std::string& s) {
    std::set<std::string> out;
    if (s == "-") return out;
    std::size_t start = 0;
    while (start <= s.size()) {
        auto comma = s.find(',', start);
        std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (!item.empty()) out.insert(item);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    rais::DnsTarget target;
    long destroy_after = -1;
    bool destroy_in_done = false;
    std::vector<std::string> rest;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](std::string* out) {
            if (i + 1 >= argc) return false;
            *out = argv[++i];
            return true;
        };
        std::string v;
        if (a == "--server" && value(&v)) target.server = v;
        else if (a == "--zone" && value(&v)) target.zone = v;
        else if (a == "--name" && value(&v)) target.name = v;
        else if (a == "--key" && value(&v)) target.key_file = v;
        else if (a == "--ttl" && value(&v)) target.ttl = static_cast<unsigned>(std::strtoul(v.c_str(), nullptr, 10));
        else if (a == "--destroy-after" && value(&v)) destroy_after = std::strtol(v.c_str(), nullptr, 10);
        else if (a == "--destroy-in-done") destroy_in_done = true;
        else if (a.size() > 2 && a.compare(0, 2, "--") == 0) return usage();
        else {
            for (; i < argc; ++i) rest.push_back(argv[i]);
        }
    }
    if (rest.empty()) return usage();
    const std::string command = rest[0];

    if (command == "parse-key") {
        if (rest.size() != 2) return usage();
        gchar* raw = nullptr;
        gsize len = 0;
        if (!g_file_get_contents(rest[1].c_str(), &raw, &len, nullptr)) {
            std::fprintf(stderr, "dnsupdate: cannot read %s\n", rest[1].c_str());
            return 2;
        }
        std::string text(raw, len);
        g_free(raw);
        std::string error;
        auto key = rais::parse_bind_key(text, &error);
        if (!key) {
            std::printf("error: %s: %s\n", rest[1].c_str(), error.c_str());
            return 1;
        }
        std::printf("%s %s\n", key->name.c_str(), key->algorithm.c_str());
        return 0;
    }

    std::string error;
    auto updater = rais::DnsUpdater::create(target, &error);
    if (!updater) {
        std::fprintf(stderr, "dnsupdate: %s\n", error.c_str());
        return 2;
    }
    std::printf("target: %s at %s\n", updater->owner().c_str(), updater->server().c_str());

    GMainLoop* loop = g_main_loop_new(nullptr, FALSE);
    int status = 1;
    bool done_called = false;
    auto t0 = std::chrono::steady_clock::now();
    std::set<std::string> addresses;   // of `set`: used after the read, from its callback
    auto finish = [&](const char* what, const rais::DnsResult& r) {
        done_called = true;
        print(what, r, t0);
        status = r.ok ? 0 : 1;
        if (destroy_in_done) {
            updater.reset();
            std::printf("destroyed the updater inside done\n");
        }
        g_main_loop_quit(loop);
    };

    if (command == "read" && rest.size() == 1) {
        updater->read([&](const rais::DnsResult& r) { finish("read", r); });
    } else if (command == "read-twice" && rest.size() == 1) {
        int pending = 2;
        bool first_ok = false, second_refused = false;
        updater->read([&](const rais::DnsResult& r) {
            print("read (first)", r, t0);
            first_ok = r.ok;
            if (--pending == 0) g_main_loop_quit(loop);
        });
        std::printf("busy after the first read(): %s\n", updater->busy() ? "yes" : "no");
        updater->read([&](const rais::DnsResult& r) {
            print("read (second, while busy)", r, t0);
            second_refused = !r.ok && r.outcome == rais::DnsOutcome::Invalid;
            if (--pending == 0) g_main_loop_quit(loop);
        });
        done_called = true;
        g_main_loop_run(loop);
        std::printf("busy at the end: %s\n", updater->busy() ? "yes" : "no");
        g_main_loop_unref(loop);
        return first_ok && second_refused && !updater->busy() ? 0 : 1;
    } else if (command == "read-loop" && rest.size() == 3) {
        struct Loop {
            rais::DnsUpdater* updater;
            GMainLoop* loop;
            long left, ms;
            int* status;
            static void next(Loop* l) {
                l->updater->read([l](const rais::DnsResult& r) {
                    GDateTime* now = g_date_time_new_now_local();
                    gchar* when = g_date_time_format(now, "%H:%M:%S.%f");
                    std::printf("%.12s %s %s\n", when, r.ok ? "ok" : "FAIL", r.ok ? join(r.published).c_str() : r.detail.c_str());
                    std::fflush(stdout);
                    g_free(when);
                    g_date_time_unref(now);
                    *l->status = r.ok ? 0 : 1;
                    if (--l->left <= 0) {
                        g_main_loop_quit(l->loop);
                        return;
                    }
                    g_timeout_add(static_cast<guint>(l->ms), [](gpointer p) -> gboolean {
                        next(static_cast<Loop*>(p));
                        return G_SOURCE_REMOVE;
                    }, l);
                });
            }
        };
        Loop l{updater.get(), loop, std::strtol(rest[1].c_str(), nullptr, 10), std::strtol(rest[2].c_str(), nullptr, 10), &status};
        Loop::next(&l);
        g_main_loop_run(loop);
        g_main_loop_unref(loop);
        return status;
    } else if (command == "set") {
        addresses.insert(rest.begin() + 1, rest.end());
        updater->read([&](const rais::DnsResult& r) {
            print("read", r, t0);
            if (!r.ok) {
                done_called = true;
                status = 1;
                g_main_loop_quit(loop);
                return;
            }
            t0 = std::chrono::steady_clock::now();
            updater->replace(r.published, addresses, [&](const rais::DnsResult& r2) { finish("replace", r2); });
        });
    } else if (command == "set-expect" && rest.size() >= 2) {
        addresses.insert(rest.begin() + 2, rest.end());
        updater->replace(split_csv(rest[1]), addresses, [&](const rais::DnsResult& r) { finish("replace", r); });
    } else {
        g_main_loop_unref(loop);
        return usage();
    }

    if (destroy_after >= 0) {
        g_timeout_add(static_cast<guint>(destroy_after), [](gpointer p) -> gboolean {
            static_cast<std::unique_ptr<rais::DnsUpdater>*>(p)->reset();
            std::printf("destroyed the updater\n");
            std::fflush(stdout);
            return G_SOURCE_REMOVE;
        }, &updater);
        g_timeout_add(static_cast<guint>(destroy_after) + 3000, [](gpointer l) -> gboolean {
            g_main_loop_quit(static_cast<GMainLoop*>(l));
            return G_SOURCE_REMOVE;
        }, loop);
        g_main_loop_run(loop);
        g_main_loop_unref(loop);
        std::printf("destroyed: done %s\n", done_called ? "called" : "not called");
        return done_called ? 1 : 0;
    }
    g_main_loop_run(loop);
    g_main_loop_unref(loop);
    return status;
}
