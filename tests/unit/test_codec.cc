// Codec tests: every message type round-trips (IPv4 and IPv6), two golden
// encodings pin the wire format down, and the decoder refuses - without
// crashing - anything truncated, corrupted or semantically invalid. A
// foreign-endian sender (flag bit 0) decodes to the same message.
//
// With RAIS_WRITE_CORPUS=DIR set, testWriteFuzzCorpus writes the sample
// messages to DIR as the fuzzer's seed corpus (tests/fuzz/corpus/).

#include <cppunit/TestFixture.h>
#include <cppunit/extensions/HelperMacros.h>
#include <glib.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "core/codec.h"
#include "core/glib_ptr.h"

using namespace rais;

namespace {

// The wire format, restated here on purpose: a change to it must show up as
// a failing test, not follow silently from the codec's own constants.
constexpr std::size_t kHeader = 8;
constexpr std::uint8_t kInfo = 1, kAcquire = 2, kRelease = 3, kRequest = 4;
// Wire types: each kind's fields, then the extension dictionary (codec.h).
const char* const kInfoType = "(tusbbbddsua(ayyy)a(ayyu)a(ayyu)a{sv})";
const char* const kAcquireType = "(uu(ayy)bsa{sv})";
const char* const kReleaseType = "(uu(ayy)sa{sv})";
const char* const kRequestType = "(uyua(ayy)a{sv})";
const char* const kBatchType = "(uuasa(y(ayy)bq)a{sv})";
const std::uint8_t kNativeFlag = G_BYTE_ORDER == G_BIG_ENDIAN ? 1 : 0;

using Bytes = std::vector<std::uint8_t>;

ServiceAddress addr(const std::string& text) {
    auto a = ServiceAddress::parse(text);
    CPPUNIT_ASSERT_MESSAGE("test bug: bad address " + text, a.has_value());
    return *a;
}

std::string hex(const Bytes& b) {
    static const char digits[] = "0123456789abcdef";
    std::string s;
    for (auto c : b) {
        s += digits[c >> 4];
        s += digits[c & 15];
    }
    return s;
}

Bytes unhex(const std::string& s) {
    Bytes b;
    for (std::size_t i = 0; i + 1 < s.size(); i += 2) b.push_back(static_cast<std::uint8_t>(std::stoul(s.substr(i, 2), nullptr, 16)));
    return b;
}

// The golden messages.
AcquireMsg goldenAcquire() {
    AcquireMsg m;
    m.leader = 1;
    m.dest = 4;
    m.address = addr("198.18.0.102/24");
    m.handover = true;
    m.reason = "n2 left; hot spare n4 takes over";
    return m;
}

InfoMsg goldenInfo() {
    InfoMsg m;
    m.seq = 42;
    m.node = 1;
    m.name = "n1";
    m.ok = true;
    m.quiesced = false;
    m.stopping = false;
    m.load = 12.5;
    m.capacity = 100;
    m.digest = "0123456789abcdef";
    m.cmd_seen = 3;
    m.serving = {{addr("198.18.0.101/24"), AddressState::Online}, {addr("2001:2::101/64"), AddressState::Acquiring}};
    m.orphans = {{addr("198.18.0.102/24"), 1500}};
    m.pins = {{addr("198.18.0.103/24"), 4}};
    return m;
}

// Every kind, both families, every optional part present and absent.
std::vector<std::pair<std::string, Message>> samples() {
    std::vector<std::pair<std::string, Message>> out;
    out.emplace_back("golden-acquire", goldenAcquire());
    out.emplace_back("golden-info", goldenInfo());

    InfoMsg bare;
    bare.node = 7;
    bare.name = "n7";
    out.emplace_back("info-empty", bare);

    InfoMsg v6;
    v6.seq = ~std::uint64_t{0};
    v6.node = 0xfffffffe;
    v6.name = "node-with-a-longer-name.example";
    v6.ok = false;
    v6.quiesced = true;
    v6.stopping = true;
    v6.load = 0.125;
    v6.capacity = 0;
    v6.digest = std::string(64, 'f');
    v6.cmd_seen = 0xffffffff;
    v6.serving = {{addr("2001:2::1/64"), AddressState::Online},
                  {addr("2001:2::2/128"), AddressState::Releasing},
                  {addr("198.18.0.9/32"), AddressState::Acquiring}};
    v6.orphans = {{addr("2001:2::3/64"), 0}, {addr("198.18.0.10/24"), 0xffffffff}};
    v6.pins = {{addr("2001:2::4/64"), 2}};
    out.emplace_back("info-v6", v6);

    AcquireMsg a6;
    a6.leader = 2;
    a6.dest = 3;
    a6.address = addr("2001:2::102/64");
    a6.handover = false;
    a6.reason = "";
    out.emplace_back("acquire-v6", a6);

    ReleaseMsg r4;
    r4.leader = 1;
    r4.dest = 4;
    r4.address = addr("198.18.0.101/24");
    r4.reason = "failback: preferred host n1 is back; n4 releases first";
    out.emplace_back("release-v4", r4);

    ReleaseMsg r6;
    r6.leader = 1;
    r6.dest = 2;
    r6.address = addr("2001:2::200/48");
    r6.reason = "2001:2::200/48 is not one of the group's addresses";
    out.emplace_back("release-v6", r6);

    RequestMsg q;
    q.from = 3;
    q.kind = RequestKind::Quiesce;
    q.target = 2;
    out.emplace_back("request-quiesce", q);

    // Several commands to one host: reasons are shared on the wire.
    BatchMsg b;
    b.leader = 1;
    b.dest = 4;
    b.items = {{true, addr("198.18.0.102/24"), false, "n2 is not a member; hot spare n4 is least loaded"},
               {true, addr("2001:2::102/64"), true, "n2 is not a member; hot spare n4 is least loaded"},
               {false, addr("198.18.0.103/24"), false, "duplicate: preferred host n3 keeps it"}};
    out.emplace_back("batch", b);

    RequestMsg u = q;
    u.kind = RequestKind::Unquiesce;
    out.emplace_back("request-unquiesce", u);

    RequestMsg mv;
    mv.from = 2;
    mv.kind = RequestKind::Move;
    mv.target = 4;
    mv.address = {addr("198.18.0.101/24")};
    out.emplace_back("request-move", mv);

    RequestMsg up;
    up.from = 2;
    up.kind = RequestKind::Unpin;
    up.address = {addr("2001:2::101/64")};
    out.emplace_back("request-unpin-v6", up);
    return out;
}

std::string describe(const Message& m) {
    static const char* const names[] = {"Info", "Acquire", "Release", "Request"};
    return names[m.index()];
}

void assertSame(const ServiceAddress& want, const ServiceAddress& got) {
    CPPUNIT_ASSERT_EQUAL(want.str(), got.str());
    CPPUNIT_ASSERT(want.family() == got.family());
}

void assertSame(const std::vector<std::pair<ServiceAddress, std::uint32_t>>& want,
                const std::vector<std::pair<ServiceAddress, std::uint32_t>>& got) {
    CPPUNIT_ASSERT_EQUAL(want.size(), got.size());
    for (std::size_t i = 0; i < want.size(); i++) {
        assertSame(want[i].first, got[i].first);
        CPPUNIT_ASSERT_EQUAL(want[i].second, got[i].second);
    }
}

void assertSame(const Message& want, const Message& got) {
    CPPUNIT_ASSERT_EQUAL_MESSAGE("message kind", want.index(), got.index());
    if (const auto* wi = std::get_if<InfoMsg>(&want)) {
        const auto& g = std::get<InfoMsg>(got);
        CPPUNIT_ASSERT_EQUAL(wi->seq, g.seq);
        CPPUNIT_ASSERT_EQUAL(wi->node, g.node);
        CPPUNIT_ASSERT_EQUAL(wi->name, g.name);
        CPPUNIT_ASSERT_EQUAL(wi->ok, g.ok);
        CPPUNIT_ASSERT_EQUAL(wi->quiesced, g.quiesced);
        CPPUNIT_ASSERT_EQUAL(wi->stopping, g.stopping);
        CPPUNIT_ASSERT_EQUAL(wi->load, g.load);
        CPPUNIT_ASSERT_EQUAL(wi->capacity, g.capacity);
        CPPUNIT_ASSERT_EQUAL(wi->digest, g.digest);
        CPPUNIT_ASSERT_EQUAL(wi->cmd_seen, g.cmd_seen);
        CPPUNIT_ASSERT_EQUAL(wi->serving.size(), g.serving.size());
        for (std::size_t i = 0; i < wi->serving.size(); i++) {
            assertSame(wi->serving[i].address, g.serving[i].address);
            CPPUNIT_ASSERT(wi->serving[i].state == g.serving[i].state);
        }
        assertSame(wi->orphans, g.orphans);
        assertSame(wi->pins, g.pins);
    } else if (const auto* wa = std::get_if<AcquireMsg>(&want)) {
        const auto& g = std::get<AcquireMsg>(got);
        CPPUNIT_ASSERT_EQUAL(wa->leader, g.leader);
        CPPUNIT_ASSERT_EQUAL(wa->dest, g.dest);
        assertSame(wa->address, g.address);
        CPPUNIT_ASSERT_EQUAL(wa->handover, g.handover);
        CPPUNIT_ASSERT_EQUAL(wa->reason, g.reason);
    } else if (const auto* wr = std::get_if<ReleaseMsg>(&want)) {
        const auto& g = std::get<ReleaseMsg>(got);
        CPPUNIT_ASSERT_EQUAL(wr->leader, g.leader);
        CPPUNIT_ASSERT_EQUAL(wr->dest, g.dest);
        assertSame(wr->address, g.address);
        CPPUNIT_ASSERT_EQUAL(wr->reason, g.reason);
    } else if (const auto* wb = std::get_if<BatchMsg>(&want)) {
        const auto& g = std::get<BatchMsg>(got);
        CPPUNIT_ASSERT_EQUAL(wb->leader, g.leader);
        CPPUNIT_ASSERT_EQUAL(wb->dest, g.dest);
        CPPUNIT_ASSERT_EQUAL(wb->items.size(), g.items.size());
        for (std::size_t i = 0; i < wb->items.size(); i++) {
            CPPUNIT_ASSERT_EQUAL(wb->items[i].acquire, g.items[i].acquire);
            assertSame(wb->items[i].address, g.items[i].address);
            CPPUNIT_ASSERT_EQUAL(wb->items[i].handover, g.items[i].handover);
            CPPUNIT_ASSERT_EQUAL(wb->items[i].reason, g.items[i].reason);
        }
    } else {
        const auto& wq = std::get<RequestMsg>(want);
        const auto& g = std::get<RequestMsg>(got);
        CPPUNIT_ASSERT_EQUAL(wq.from, g.from);
        CPPUNIT_ASSERT(wq.kind == g.kind);
        CPPUNIT_ASSERT_EQUAL(wq.target, g.target);
        CPPUNIT_ASSERT_EQUAL(wq.address.size(), g.address.size());
        for (std::size_t i = 0; i < wq.address.size(); i++) assertSame(wq.address[i], g.address[i]);
    }
}

// Decodes from a buffer of exactly `len` bytes, so a sanitizer sees any
// read past the end.
std::variant<Message, DecodeError> decodeExact(const Bytes& wire, std::size_t len) {
    Bytes copy(wire.begin(), wire.begin() + static_cast<std::ptrdiff_t>(len));
    return decode(copy.data(), copy.size());
}

Message decodeOk(const Bytes& wire, const std::string& what) {
    auto r = decode(wire.data(), wire.size());
    if (const auto* e = std::get_if<DecodeError>(&r)) CPPUNIT_FAIL(what + ": unexpected DecodeError: " + e->what);
    return std::get<Message>(r);
}

void assertRefused(const Bytes& wire, const std::string& what) {
    auto r = decode(wire.data(), wire.size());
    CPPUNIT_ASSERT_MESSAGE(what + " should be refused", std::holds_alternative<DecodeError>(r));
    CPPUNIT_ASSERT_MESSAGE(what + ": DecodeError without explanation", !std::get<DecodeError>(r).what.empty());
}

// A message with a hand-written body (GVariant text format), for contents
// the encoder would never produce.
// The body is written without the trailing extension dictionary; an empty
// one is appended.
Bytes frame(std::uint8_t kind, const char* type, const std::string& body) {
    std::string full(type);
    std::string base = full.substr(0, full.size() - 6) + ")";
    GError* raw = nullptr;
    GVariantPtr fields(g_variant_parse(G_VARIANT_TYPE(base.c_str()), body.c_str(), nullptr, nullptr, &raw));
    GErrorPtr err(raw);
    if (!fields) CPPUNIT_FAIL("test bug: cannot parse " + body + ": " + (err ? err->message : "?"));
    std::vector<GVariant*> kids;
    for (gsize i = 0; i < g_variant_n_children(fields.get()); i++) kids.push_back(g_variant_get_child_value(fields.get(), i));
    kids.push_back(g_variant_new_array(G_VARIANT_TYPE("{sv}"), nullptr, 0));
    GVariantPtr v = sink(g_variant_new_tuple(kids.data(), kids.size()));
    for (std::size_t i = 0; i + 1 < kids.size(); i++) g_variant_unref(kids[i]);
    Bytes out(kHeader + g_variant_get_size(v.get()), 0);
    out[0] = 'R';
    out[1] = 'A';
    out[2] = kProtocolVersion;
    out[3] = kind;
    out[4] = kNativeFlag;
    g_variant_store(v.get(), out.data() + kHeader);
    return out;
}

const char* typeOf(const Message& m) {
    static const char* const types[] = {kInfoType, kAcquireType, kReleaseType, kRequestType, kBatchType};
    return types[m.index()];
}

// The same message as a sender of the other byte order sends it: the body
// byteswapped, the flag bit flipped.
Bytes foreignEndian(const Bytes& wire, const char* type) {
    GBytesPtr body(g_bytes_new(wire.data() + kHeader, wire.size() - kHeader));
    GVariantPtr v = sink(g_variant_new_from_bytes(G_VARIANT_TYPE(type), body.get(), TRUE));
    // g_variant_byteswap returns a full, non-floating reference: own it as is.
    GVariantPtr swapped(g_variant_byteswap(v.get()));
    Bytes out(kHeader + g_variant_get_size(swapped.get()));
    std::copy(wire.begin(), wire.begin() + kHeader, out.begin());
    out[4] ^= 1;
    g_variant_store(swapped.get(), out.data() + kHeader);
    return out;
}

// Bodies written in GVariant text, for the refusal tests.
std::string acquireBody(const std::string& addrBytes, int prefix, std::uint32_t leader = 1, std::uint32_t dest = 4) {
    return "(uint32 " + std::to_string(leader) + ", uint32 " + std::to_string(dest) + ", ([byte " + addrBytes +
           "], byte " + std::to_string(prefix) + "), true, 'r')";
}

std::string infoBody(const std::string& node, const std::string& serving, const std::string& orphans = "@a(ayyu) []",
                     const std::string& pins = "@a(ayyu) []", const std::string& load = "0.0",
                     const std::string& capacity = "100.0") {
    return "(uint64 1, uint32 " + node + ", 'n1', true, false, false, " + load + ", " + capacity +
           ", 'd', uint32 0, " + serving + ", " + orphans + ", " + pins + ")";
}

const char* const kV4 = "198, 18, 0, 101";

}  // namespace

class CodecTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(CodecTest);
    CPPUNIT_TEST(testRoundTripEveryMessage);
    CPPUNIT_TEST(testInvalidUtf8IsMadeValid);
    CPPUNIT_TEST(testGoldenAcquire);
    CPPUNIT_TEST(testGoldenInfo);
    CPPUNIT_TEST(testTruncatedAtEveryLengthRefused);
    CPPUNIT_TEST(testCorruptedBytesNeverCrash);
    CPPUNIT_TEST(testBadHeaderRefused);
    CPPUNIT_TEST(testInvalidStateRefused);
    CPPUNIT_TEST(testInvalidPrefixRefused);
    CPPUNIT_TEST(testNodeIdZeroRefused);
    CPPUNIT_TEST(testAddressListedTwiceRefused);
    CPPUNIT_TEST(testLoadOutOfRangeRefused);
    CPPUNIT_TEST(testBadRequestRefused);
    CPPUNIT_TEST(testBadBatchRefused);
    CPPUNIT_TEST(testHandWrittenBodyAccepted);
    CPPUNIT_TEST(testBigEndianFlaggedDecodesEqual);
    CPPUNIT_TEST(testWriteFuzzCorpus);
    CPPUNIT_TEST_SUITE_END();

public:
    void testRoundTripEveryMessage() {
        for (const auto& [name, m] : samples()) {
            Bytes wire = encode(m);
            CPPUNIT_ASSERT_MESSAGE(name, wire.size() > kHeader);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(name + " kind byte", static_cast<int>(m.index() + 1), static_cast<int>(wire[3]));
            assertSame(m, decodeOk(wire, name));
            // Encoding is deterministic: the same message, the same bytes.
            CPPUNIT_ASSERT_MESSAGE(name, encode(decodeOk(wire, name)) == wire);
        }
    }

    // Names and reasons must be valid UTF-8 in a GVariant; the encoder
    // repairs rather than emitting a message every receiver would refuse.
    void testInvalidUtf8IsMadeValid() {
        ReleaseMsg r;
        r.leader = 1;
        r.dest = 2;
        r.address = addr("198.18.0.1/24");
        r.reason = "bad \xff byte";
        Message got = decodeOk(encode(r), "release with invalid UTF-8");
        const std::string& reason = std::get<ReleaseMsg>(got).reason;
        CPPUNIT_ASSERT(g_utf8_validate(reason.c_str(), static_cast<gssize>(reason.size()), nullptr));
        CPPUNIT_ASSERT(reason.find("bad ") == 0);
    }

    // The golden bytes document the wire format: header "RA", version 1,
    // kind, flags (bit 0 = big-endian sender), three zero bytes, then the
    // GVariant body in normal form (little-endian here).
    void testGoldenAcquire() {
        const std::string golden =
            "5241" "02" "02" "00" "000000"    // "RA", version 2, Acquire, little-endian, minor 0, reserved
            "01000000"                        // leader 1
            "04000000"                        // dest 4
            "c6120066" "18" "04"              // (198.18.0.102, /24), framing offset
            "01"                              // handover
            "6e32206c6566743b20686f74207370617265206e342074616b6573206f76657200"  // reason
                                              // extensions: empty a{sv} (no bytes)
            "30" "0e";                        // framing offsets: end of the reason, of the address
        checkGolden(goldenAcquire(), golden);
    }

    void testGoldenInfo() {
        const std::string golden =
            "5241" "02" "01" "00" "000000"    // "RA", version 2, Info, little-endian, minor 0, reserved
            "2a00000000000000"                // seq 42
            "01000000"                        // node 1
            "6e3100"                          // name "n1"
            "01" "00" "00"                    // ok, quiesced, stopping
            "000000000000"                    // padding
            "0000000000002940"                // load 12.5
            "0000000000005940"                // capacity 100
            "3031323334353637383961626364656600"  // digest
            "000000"                          // padding
            "03000000"                        // cmd_seen 3
            "c6120065" "18" "02" "04"         // serving: 198.18.0.101/24 online
            "20010002000000000000000000000101" "40" "01" "10"  // 2001:2::101/64 acquiring
            "071a"                            //   framing offsets
            "c6120066" "18" "000000" "dc050000" "04" "0d"  // orphans: 198.18.0.102/24, 1500 ms
            "0000"                            // padding
            "c6120067" "18" "000000" "04000000" "04" "0d"  // pins: 198.18.0.103/24 -> node 4
            "000000000000"                    // padding: extensions a{sv} (empty) align to 8
            "7a" "6a5c390f";                  // framing offsets: pins, orphans, serving, digest, name
        checkGolden(goldenInfo(), golden);
    }

    void testTruncatedAtEveryLengthRefused() {
        for (const auto& [name, m] : samples()) {
            Bytes wire = encode(m);
            for (std::size_t len = 0; len < wire.size(); len++) {
                auto r = decodeExact(wire, len);
                CPPUNIT_ASSERT_MESSAGE(name + " truncated to " + std::to_string(len) + " of " +
                                           std::to_string(wire.size()) + " bytes was accepted",
                                       std::holds_alternative<DecodeError>(r));
            }
        }
    }

    // Whatever a corrupted byte turns into, decode returns (a message or an
    // error) and never crashes or reads out of bounds.
    void testCorruptedBytesNeverCrash() {
        for (const auto& [name, m] : samples()) {
            Bytes wire = encode(m);
            for (std::size_t i = 0; i < wire.size(); i++) {
                for (unsigned x : {0x01u, 0x80u, 0xffu}) {
                    Bytes bad = wire;
                    bad[i] = static_cast<std::uint8_t>(bad[i] ^ x);
                    auto r = decodeExact(bad, bad.size());
                    // Magic, version and reserved bits are checked; a changed
                    // kind or byte-order flag may still read as a valid message.
                    // Bytes 5-7 (minor version, reserved) are ignored by design.
                    bool checked = i < 3;
                    if (checked)
                        CPPUNIT_ASSERT_MESSAGE(name + " header byte " + std::to_string(i),
                                               std::holds_alternative<DecodeError>(r));
                }
            }
            Bytes longer = wire;
            longer.push_back(0);
            decodeExact(longer, longer.size());
        }
    }

    void testBadHeaderRefused() {
        const Bytes good = encode(goldenAcquire());
        auto with = [&](std::size_t i, std::uint8_t v) {
            Bytes b = good;
            b[i] = v;
            return b;
        };
        assertRefused(with(0, 'X'), "bad magic (first byte)");
        assertRefused(with(1, 'B'), "bad magic (second byte)");
        assertRefused(with(2, 0), "version 0");
        assertRefused(with(2, kProtocolVersion + 1), "unknown version");
        assertRefused(with(3, 0), "kind 0");
        assertRefused(with(3, 5), "unknown kind 5");
        assertRefused(with(3, 0xff), "unknown kind 255");
        // Compatibility rule (DESIGN §3): a later minor version's header
        // bits and bytes are ignored; another major version is reported as such.
        decodeOk(with(4, static_cast<std::uint8_t>(kNativeFlag | 2)), "a later minor's flag bit");
        for (std::size_t i = 5; i < kHeader; i++) decodeOk(with(i, 1), "minor/reserved byte " + std::to_string(i));
        auto future = decode(with(2, kProtocolVersion + 1).data(), with(2, kProtocolVersion + 1).size());
        CPPUNIT_ASSERT(std::holds_alternative<DecodeError>(future));
        CPPUNIT_ASSERT_EQUAL(int(kProtocolVersion + 1), int(std::get<DecodeError>(future).foreign_version));
        // The right header on a body of another kind.
        assertRefused(with(3, kInfo), "Acquire body under an Info header");
        assertRefused(Bytes{}, "empty input");
        CPPUNIT_ASSERT(std::holds_alternative<DecodeError>(decode(nullptr, 0)));
        CPPUNIT_ASSERT(std::holds_alternative<DecodeError>(decode(nullptr, 100)));
    }

    void testInvalidStateRefused() {
        for (int st : {0, 4, 255}) {
            std::string serving = "[([byte " + std::string(kV4) + "], byte 24, byte " + std::to_string(st) + ")]";
            assertRefused(frame(kInfo, kInfoType, infoBody("1", serving)), "state byte " + std::to_string(st));
        }
        for (int st : {1, 2, 3}) {
            std::string serving = "[([byte " + std::string(kV4) + "], byte 24, byte " + std::to_string(st) + ")]";
            decodeOk(frame(kInfo, kInfoType, infoBody("1", serving)), "state byte " + std::to_string(st));
        }
    }

    void testInvalidPrefixRefused() {
        const std::string v6 = "32, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1";
        assertRefused(frame(kAcquire, kAcquireType, acquireBody(kV4, 0)), "IPv4 prefix 0");
        assertRefused(frame(kAcquire, kAcquireType, acquireBody(kV4, 33)), "IPv4 prefix 33");
        assertRefused(frame(kAcquire, kAcquireType, acquireBody(v6, 0)), "IPv6 prefix 0");
        assertRefused(frame(kAcquire, kAcquireType, acquireBody(v6, 129)), "IPv6 prefix 129");
        assertRefused(frame(kAcquire, kAcquireType, acquireBody("198, 18, 0", 24)), "3-byte address");
        assertRefused(frame(kAcquire, kAcquireType, acquireBody("198, 18, 0, 101, 1", 24)), "5-byte address");
        decodeOk(frame(kAcquire, kAcquireType, acquireBody(kV4, 32)), "IPv4 prefix 32");
        decodeOk(frame(kAcquire, kAcquireType, acquireBody(v6, 128)), "IPv6 prefix 128");

        assertRefused(frame(kRelease, kReleaseType, "(uint32 1, uint32 4, ([byte " + std::string(kV4) + "], byte 33), 'r')"),
                      "Release with IPv4 prefix 33");
        std::string bad = "[([byte " + std::string(kV4) + "], byte 33, uint32 1)]";
        std::string badServing = "[([byte " + std::string(kV4) + "], byte 0, byte 2)]";
        assertRefused(frame(kInfo, kInfoType, infoBody("1", badServing)), "Info serving with prefix 0");
        assertRefused(frame(kInfo, kInfoType, infoBody("1", "@a(ayyy) []", bad)), "Info orphan with prefix 33");
        assertRefused(frame(kInfo, kInfoType, infoBody("1", "@a(ayyy) []", "@a(ayyu) []", bad)),
                      "Info pin with prefix 33");
        assertRefused(frame(kRequest, kRequestType, "(uint32 1, byte 3, uint32 2, [([byte " + std::string(kV4) + "], byte 33)])"),
                      "Request with prefix 33");
    }

    void testNodeIdZeroRefused() {
        assertRefused(frame(kInfo, kInfoType, infoBody("0", "@a(ayyy) []")), "Info from node id 0");
        decodeOk(frame(kInfo, kInfoType, infoBody("1", "@a(ayyy) []")), "Info from node id 1");
    }

    // An address appears at most once in a host's serving list (model.h).
    void testAddressListedTwiceRefused() {
        std::string twice = "[([byte " + std::string(kV4) + "], byte 24, byte 2), ([byte " + std::string(kV4) +
                            "], byte 24, byte 1)]";
        assertRefused(frame(kInfo, kInfoType, infoBody("1", twice)), "address listed twice");
        // Equality ignores the prefix: /24 and /32 are the same address.
        std::string prefixes = "[([byte " + std::string(kV4) + "], byte 24, byte 2), ([byte " + std::string(kV4) +
                               "], byte 32, byte 2)]";
        assertRefused(frame(kInfo, kInfoType, infoBody("1", prefixes)), "address listed twice with two prefixes");
    }

    void testLoadOutOfRangeRefused() {
        const std::string none = "@a(ayyy) []", e = "@a(ayyu) []";
        assertRefused(frame(kInfo, kInfoType, infoBody("1", none, e, e, "-1.0")), "negative load");
        assertRefused(frame(kInfo, kInfoType, infoBody("1", none, e, e, "0.0", "-5.0")), "negative capacity");
        InfoMsg nan;
        nan.node = 1;
        nan.load = std::nan("");
        assertRefused(encode(nan), "NaN load");
        InfoMsg inf;
        inf.node = 1;
        inf.capacity = HUGE_VAL;
        assertRefused(encode(inf), "infinite capacity");
    }

    void testBadRequestRefused() {
        const std::string one = "[([byte " + std::string(kV4) + "], byte 24)]";
        const std::string two = "[([byte " + std::string(kV4) + "], byte 24), ([byte 198, 18, 0, 102], byte 24)]";
        auto request = [](int kind, const std::string& list) {
            return frame(kRequest, kRequestType, "(uint32 1, byte " + std::to_string(kind) + ", uint32 2, " + list + ")");
        };
        assertRefused(request(3, "@a(ayy) []"), "move request without address");
        assertRefused(request(4, "@a(ayy) []"), "unpin request without address");
        assertRefused(request(3, two), "move request with two addresses");
        assertRefused(request(0, "@a(ayy) []"), "request kind 0");
        assertRefused(request(5, one), "request kind 5");
        decodeOk(request(3, one), "move request with an address");
        decodeOk(request(1, "@a(ayy) []"), "quiesce request without address");
    }

    // A body written by hand (not by encode) decodes: the format is the
    // GVariant text above, nothing private to the encoder.
    void testHandWrittenBodyAccepted() {
        Message m = decodeOk(frame(kAcquire, kAcquireType, acquireBody(kV4, 24, 1, 4)), "hand-written Acquire");
        const auto& a = std::get<AcquireMsg>(m);
        CPPUNIT_ASSERT_EQUAL(std::uint32_t{1}, a.leader);
        CPPUNIT_ASSERT_EQUAL(std::uint32_t{4}, a.dest);
        CPPUNIT_ASSERT_EQUAL(std::string("198.18.0.101/24"), a.address.str());
        CPPUNIT_ASSERT(a.handover);
        CPPUNIT_ASSERT_EQUAL(std::string("r"), a.reason);
    }

    void testBigEndianFlaggedDecodesEqual() {
        for (const auto& [name, m] : samples()) {
            Bytes wire = encode(m);
            Bytes foreign = foreignEndian(wire, typeOf(m));
            CPPUNIT_ASSERT_EQUAL(wire.size(), foreign.size());
            CPPUNIT_ASSERT_EQUAL_MESSAGE(name, static_cast<std::uint8_t>(kNativeFlag ^ 1), foreign[4]);
            CPPUNIT_ASSERT_MESSAGE(name + ": byteswapping changed nothing", foreign != wire);
            assertSame(m, decodeOk(foreign, name + " (foreign byte order)"));
        }
        // The flag is what tells: swapped bytes under the native flag read
        // as swapped numbers.
        Bytes foreign = foreignEndian(encode(goldenAcquire()), kAcquireType);
        foreign[4] = kNativeFlag;
        Message misread = decodeOk(foreign, "swapped Acquire under the native flag");
        CPPUNIT_ASSERT_EQUAL(std::uint32_t{0x01000000}, std::get<AcquireMsg>(misread).leader);
    }

    // Regenerates the fuzzer's seed corpus: RAIS_WRITE_CORPUS=tests/fuzz/corpus.
    // A batch must name its hosts, carry at least one command, index only
    // the reasons it carries, and not list an address twice.
    void testBadBatchRefused() {
        BatchMsg ok;
        ok.leader = 1;
        ok.dest = 2;
        ok.items = {{true, addr("198.18.0.1/24"), false, "r"}};
        CPPUNIT_ASSERT(std::holds_alternative<Message>(decode(encode(ok).data(), encode(ok).size())));
        BatchMsg empty = ok;
        empty.items.clear();
        CPPUNIT_ASSERT(std::holds_alternative<DecodeError>(decode(encode(empty).data(), encode(empty).size())));
        BatchMsg zero = ok;
        zero.dest = 0;
        CPPUNIT_ASSERT(std::holds_alternative<DecodeError>(decode(encode(zero).data(), encode(zero).size())));
        BatchMsg twice = ok;
        twice.items.push_back(ok.items[0]);
        CPPUNIT_ASSERT(std::holds_alternative<DecodeError>(decode(encode(twice).data(), encode(twice).size())));
    }

    void testWriteFuzzCorpus() {
        const char* dir = std::getenv("RAIS_WRITE_CORPUS");
        if (!dir || !*dir) return;
        CPPUNIT_ASSERT_MESSAGE(std::string("cannot create ") + dir, g_mkdir_with_parents(dir, 0755) == 0);
        for (const auto& [name, m] : samples()) {
            Bytes wire = encode(m);
            writeFile(std::string(dir) + "/" + name + ".bin", wire);
            if (name.rfind("golden-", 0) == 0)
                writeFile(std::string(dir) + "/" + name + "-foreign-endian.bin", foreignEndian(wire, typeOf(m)));
        }
    }

private:
    static void checkGolden(const Message& m, const std::string& golden) {
        Bytes wire = encode(m);
        if (G_BYTE_ORDER == G_LITTLE_ENDIAN)
            CPPUNIT_ASSERT_EQUAL_MESSAGE(describe(m) + " wire bytes changed", golden, hex(wire));
        // On any host the golden bytes decode to the message.
        assertSame(m, decodeOk(unhex(golden), "golden " + describe(m)));
    }

    static void writeFile(const std::string& path, const Bytes& b) {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
        CPPUNIT_ASSERT_MESSAGE("cannot write " + path, out.good());
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(CodecTest);
