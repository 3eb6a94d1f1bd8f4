// HealthTests rounds against real loopback servers (a thread each): the
// verdicts of tcp: and http: tests, a host name resolved without blocking
// the loop, and a hostile server that answers with an endless line, whose
// answer must be neither buffered nor waited for past its first bytes.

#include <arpa/inet.h>
#include <cppunit/TestFixture.h>
#include <cppunit/extensions/HelperMacros.h>
#include <glib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/service/health_tests.h"

using namespace rais;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

long peak_rss_kb() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    return -1;
}

// One connection served on 127.0.0.1 by a thread: reads the request, then
// sends `answer`, or endless bytes without a newline when `endless`.
class Server {
public:
    Server(std::string answer, bool endless) : answer_(std::move(answer)), endless_(endless) {
        fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CPPUNIT_ASSERT(fd_ >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CPPUNIT_ASSERT_EQUAL(0, bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a));
        CPPUNIT_ASSERT_EQUAL(0, listen(fd_, 4));
        socklen_t len = sizeof a;
        CPPUNIT_ASSERT_EQUAL(0, getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len));
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~Server() {
        shutdown(fd_, SHUT_RDWR);  // wakes accept
        thread_.join();
        close(fd_);
    }
    unsigned port() const { return port_; }
    std::size_t sent() const { return sent_; }

private:
    void serve() {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        timeval tv{5, 0};
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char buf[4096];
        (void)!recv(c, buf, sizeof buf, 0);
        if (endless_) {
            std::vector<char> junk(65536, 'A');
            for (;;) {
                ssize_t n = send(c, junk.data(), junk.size(), MSG_NOSIGNAL);
                if (n <= 0) break;
                sent_ += static_cast<std::size_t>(n);
            }
        } else {
            (void)!send(c, answer_.data(), answer_.size(), MSG_NOSIGNAL);
        }
        close(c);
    }

    std::string answer_;
    bool endless_;
    int fd_ = -1;
    unsigned port_ = 0;
    std::size_t sent_ = 0;
    std::thread thread_;
};

struct Verdict {
    bool got = false, ok = false;
    std::string detail;
    double seconds = 0;
};

// One round of `specs`; the first verdict.
Verdict first_verdict(const std::vector<std::string>& specs, unsigned interval_ms = 2000) {
    Verdict v;
    gint64 t0 = g_get_monotonic_time();
    HealthTests tests(
        specs, interval_ms,
        [&](bool ok, const std::string& detail) {
            if (v.got) return;
            v.got = true;
            v.ok = ok;
            v.detail = detail;
            v.seconds = static_cast<double>(g_get_monotonic_time() - t0) / 1e6;
        },
        [](LogLevel, const std::string&) {});
    tests.start();
    while (!v.got && g_get_monotonic_time() - t0 < 10 * G_USEC_PER_SEC) g_main_context_iteration(nullptr, TRUE);
    return v;
}

}  // namespace

class HealthRunTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(HealthRunTest);
    CPPUNIT_TEST(testHttpVerdicts);
    CPPUNIT_TEST(testTcpByName);
    CPPUNIT_TEST(testEndlessStatusLine);
    CPPUNIT_TEST_SUITE_END();

public:
    void testHttpVerdicts() {
        {
            Server s("HTTP/1.0 204 No Content\r\n\r\n", false);
            auto v = first_verdict({"http:http://127.0.0.1:" + std::to_string(s.port()) + "/health"});
            CPPUNIT_ASSERT(v.got);
            CPPUNIT_ASSERT_MESSAGE(v.detail, v.ok);
        }
        {
            Server s("HTTP/1.1 503 Busy\r\n\r\n", false);
            auto v = first_verdict({"http:http://127.0.0.1:" + std::to_string(s.port()) + "/"});
            CPPUNIT_ASSERT(v.got && !v.ok);
            CPPUNIT_ASSERT_MESSAGE(v.detail, contains(v.detail, "503"));
        }
        {
            Server s("HTTP/1.1 200 OK", false);  // no newline, then closed: the status line still counts
            auto v = first_verdict({"http:http://127.0.0.1:" + std::to_string(s.port()) + "/"});
            CPPUNIT_ASSERT_MESSAGE(v.detail, v.got && v.ok);
        }
        {
            Server s("", false);
            auto v = first_verdict({"http:http://127.0.0.1:" + std::to_string(s.port()) + "/"});
            CPPUNIT_ASSERT(v.got && !v.ok);
            CPPUNIT_ASSERT_MESSAGE(v.detail, contains(v.detail, "no answer"));
        }
    }

    void testTcpByName() {
        // "localhost" goes through the asynchronous resolver.
        Server s("", false);
        auto v = first_verdict({"tcp:localhost:" + std::to_string(s.port())});
        CPPUNIT_ASSERT(v.got);
        CPPUNIT_ASSERT_MESSAGE(v.detail, v.ok);
        unsigned closed = s.port();
        // The server is gone after this block; nothing listens there.
        {
            Server gone("", false);
            closed = gone.port();
        }
        v = first_verdict({"tcp:127.0.0.1:" + std::to_string(closed)});
        CPPUNIT_ASSERT(v.got && !v.ok);
    }

    // The finding's class: a peer that never ends its line was read (and
    // buffered) until the round's deadline.
    void testEndlessStatusLine() {
        long before = peak_rss_kb();
        Server s("", true);
        auto v = first_verdict({"http:http://127.0.0.1:" + std::to_string(s.port()) + "/"}, 5000);
        CPPUNIT_ASSERT(v.got && !v.ok);
        CPPUNIT_ASSERT_MESSAGE(v.detail, contains(v.detail, "not an HTTP answer"));
        CPPUNIT_ASSERT_MESSAGE(std::to_string(v.seconds) + " s", v.seconds < 2.0);  // the round's deadline is 4.5 s
        long growth = peak_rss_kb() - before;
        CPPUNIT_ASSERT_MESSAGE("peak RSS grew by " + std::to_string(growth) + " kB", growth < 20 * 1024);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(HealthRunTest);
