// Control protocol tests: the bounds checked before any JSON parser sees a
// request or an answer (size and nesting, scanned in one pass), at and just
// past each limit; brackets inside strings and escaped quotes do not count;
// decode_request and decode_response refuse what is out of bounds without
// parsing it, so 200,000 levels of nesting (which made json-glib recurse
// raisd off its stack) come back as a one-line reason; and a request made
// by encode_request always decodes to itself.

#include <cppunit/TestFixture.h>
#include <cppunit/extensions/HelperMacros.h>

#include <optional>
#include <string>

#include "common/control_protocol.h"

using namespace rais;

namespace {

std::string nested(std::size_t depth, char open = '[', char close = ']') {
    return std::string(depth, open) + std::string(depth, close);
}

// {"command":"status","args":<depth - 1 arrays>}: `depth` levels in all.
std::string request_nested(std::size_t depth) {
    return "{\"command\":\"status\",\"args\":" + nested(depth - 1) + "}";
}

bool has(const std::optional<std::string>& s, const std::string& part) {
    return s && s->find(part) != std::string::npos;
}

}  // namespace

class ControlBoundsTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ControlBoundsTest);
    CPPUNIT_TEST(testSizeLimitIsInclusive);
    CPPUNIT_TEST(testDepthLimitIsInclusive);
    CPPUNIT_TEST(testObjectsAndArraysCountAlike);
    CPPUNIT_TEST(testBracketsInStringsDoNotCount);
    CPPUNIT_TEST(testEscapedQuoteKeepsTheString);
    CPPUNIT_TEST(testUnbalancedClosersDoNotUnderflow);
    CPPUNIT_TEST(testReasonNamesTheText);
    CPPUNIT_TEST_SUITE_END();

public:
    void testSizeLimitIsInclusive() {
        std::string text(100, ' ');
        CPPUNIT_ASSERT(!json_bounds_error(text, 100, 8));
        auto e = json_bounds_error(text + " ", 100, 8);
        CPPUNIT_ASSERT_EQUAL(std::string("text of 101 bytes exceeds the 100-byte limit"), e.value_or("(none)"));
    }

    void testDepthLimitIsInclusive() {
        CPPUNIT_ASSERT(!json_bounds_error(nested(8), 1000, 8));
        auto e = json_bounds_error(nested(9), 1000, 8);
        CPPUNIT_ASSERT_EQUAL(std::string("text nests arrays and objects deeper than 8 levels"), e.value_or("(none)"));
        // Depth is nesting, not the number of containers side by side.
        std::string wide;
        for (int i = 0; i < 1000; i++) wide += "[[]],";
        CPPUNIT_ASSERT(!json_bounds_error("[" + wide + "[]]", 100000, 3));
    }

    void testObjectsAndArraysCountAlike() {
        CPPUNIT_ASSERT(has(json_bounds_error("{\"a\":[{\"b\":[{}]}]}", 1000, 4), "deeper than 4"));
        CPPUNIT_ASSERT(!json_bounds_error("{\"a\":[{\"b\":[{}]}]}", 1000, 5));
    }

    void testBracketsInStringsDoNotCount() {
        std::string s = "{\"args\":[\"" + nested(50) + nested(50, '{', '}') + "\"]}";
        CPPUNIT_ASSERT(!json_bounds_error(s, 10000, 2));
    }

    void testEscapedQuoteKeepsTheString() {
        // \" does not end the string, so the brackets after it are text;
        // \\ does end an escape, so the quote after it closes the string.
        CPPUNIT_ASSERT(!json_bounds_error("[\"\\\"[[[[\"]", 1000, 1));
        CPPUNIT_ASSERT(has(json_bounds_error("[\"\\\\\",[[[]]]]", 1000, 3), "deeper than 3"));
    }

    void testUnbalancedClosersDoNotUnderflow() {
        // Closers first must not bank depth for the openers that follow.
        CPPUNIT_ASSERT(has(json_bounds_error(std::string(100, ']') + nested(9), 1000, 8), "deeper than 8"));
    }

    void testReasonNamesTheText() {
        CPPUNIT_ASSERT(has(json_bounds_error(nested(3), 1000, 2, "request"), "request nests"));
        CPPUNIT_ASSERT(has(json_bounds_error(nested(3), 2, 8, "answer"), "answer of 6 bytes"));
    }
};

class ControlDecodeTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ControlDecodeTest);
    CPPUNIT_TEST(testRoundTrip);
    CPPUNIT_TEST(testDeepRequestIsRefusedUnparsed);
    CPPUNIT_TEST(testRequestDepthAtTheLimit);
    CPPUNIT_TEST(testRequestSizeAtTheLimit);
    CPPUNIT_TEST(testDeepAnswerIsRefusedUnparsed);
    CPPUNIT_TEST(testOversizedAnswerIsRefused);
    CPPUNIT_TEST(testAnswerLimitLeavesRoomForLibqb);
    CPPUNIT_TEST_SUITE_END();

public:
    void testRoundTrip() {
        ControlRequest r{"move", {"192.0.2.10", "n2", "\"[{"}};
        std::string err;
        auto back = decode_request(encode_request(r), &err);
        CPPUNIT_ASSERT_MESSAGE(err, back.has_value());
        CPPUNIT_ASSERT_EQUAL(r.command, back->command);
        CPPUNIT_ASSERT(r.args == back->args);
    }

    void testDeepRequestIsRefusedUnparsed() {
        // The attack: 400 KB nested 200,000 deep. json-glib would recurse
        // 200,000 times; the bounds refuse it on size first, and a small
        // deep one on depth.
        std::string err;
        CPPUNIT_ASSERT(!decode_request(request_nested(200001), &err));  // args 200,000 deep
        CPPUNIT_ASSERT_EQUAL(std::string("request of 400028 bytes exceeds the 65536-byte limit"), err);
        CPPUNIT_ASSERT(!decode_request(request_nested(30000), &err));
        CPPUNIT_ASSERT_EQUAL(std::string("request nests arrays and objects deeper than 8 levels"), err);
    }

    void testRequestDepthAtTheLimit() {
        std::string err;
        // Eight levels pass the bound and reach the parser (which then
        // finds args that are not strings); nine do not.
        CPPUNIT_ASSERT(!decode_request(request_nested(kControlMaxDepth), &err));
        CPPUNIT_ASSERT_EQUAL(std::string("args must be strings"), err);
        CPPUNIT_ASSERT(!decode_request(request_nested(kControlMaxDepth + 1), &err));
        CPPUNIT_ASSERT(err.find("deeper than 8 levels") != std::string::npos);
    }

    void testRequestSizeAtTheLimit() {
        const std::string head = "{\"command\":\"status\",\"args\":[\"", tail = "\"]}";
        std::string at = head + std::string(kControlMaxRequest - head.size() - tail.size(), 'y') + tail;
        CPPUNIT_ASSERT_EQUAL(kControlMaxRequest, at.size());
        std::string err;
        auto r = decode_request(at, &err);
        CPPUNIT_ASSERT_MESSAGE(err, r.has_value());
        CPPUNIT_ASSERT(!decode_request(head + "y" + at.substr(head.size()), &err));
        CPPUNIT_ASSERT_EQUAL(std::string("request of 65537 bytes exceeds the 65536-byte limit"), err);
    }

    void testDeepAnswerIsRefusedUnparsed() {
        std::string err;
        CPPUNIT_ASSERT(!decode_response("{\"exit\":0,\"x\":" + nested(100000) + "}", &err));
        CPPUNIT_ASSERT_EQUAL(std::string("answer nests arrays and objects deeper than 8 levels"), err);
    }

    void testOversizedAnswerIsRefused() {
        std::string err;
        std::string big = "{\"exit\":0,\"stdout\":\"" + std::string(kControlMaxMessage, 'x') + "\"}";
        CPPUNIT_ASSERT(!decode_response(big, &err));
        CPPUNIT_ASSERT(err.find("exceeds the 4194304-byte limit") != std::string::npos);
        auto ok = decode_response(encode_response({3, "out", "err"}), &err);
        CPPUNIT_ASSERT_MESSAGE(err, ok.has_value());
        CPPUNIT_ASSERT_EQUAL(3, ok->exit);
    }

    void testAnswerLimitLeavesRoomForLibqb() {
        // The largest answer plus libqb's header must fit the buffer with
        // room for the ring buffer's chunk bookkeeping (control-tests sends
        // one of exactly kControlMaxAnswer bytes through real libqb).
        CPPUNIT_ASSERT(kControlMaxAnswer + 4096 <= kControlMaxMessage);
        CPPUNIT_ASSERT(kControlMaxRequest < kControlMaxAnswer);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ControlBoundsTest);
CPPUNIT_TEST_SUITE_REGISTRATION(ControlDecodeTest);
