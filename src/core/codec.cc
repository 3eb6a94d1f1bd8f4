#include "core/codec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include "core/glib_ptr.h"

namespace rais {

bool valid_load_value(double v) { return std::isfinite(v) && v >= 0 && v < kMaxLoadValue; }

const char* to_string(RequestKind k) {
    switch (k) {
    case RequestKind::Unquiesce: return "unquiesce";
    case RequestKind::Move: return "move";
    case RequestKind::Unpin: return "unpin";
    case RequestKind::Quiesce: break;
    }
    return "quiesce";
}

namespace {

constexpr std::size_t kHeader = 8;
enum class Kind : std::uint8_t { Info = 1, Acquire = 2, Release = 3, Request = 4, Batch = 5 };

const char* type_of(Kind k) {
    switch (k) {
    case Kind::Info: return "(tusbbbddsua(ayyy)a(ayyu)a(ayyu)a{sv})";
    case Kind::Acquire: return "(uu(ayy)bsa{sv})";
    case Kind::Release: return "(uu(ayy)sa{sv})";
    case Kind::Request: return "(uyua(ayy)a{sv})";
    case Kind::Batch: return "(uuasa(y(ayy)bq)a{sv})";
    }
    return "()";
}

GVariant* addr_bytes(const ServiceAddress& a) {
    return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, a.bytes(), a.size(), 1);
}

GVariant* addr_tuple(const ServiceAddress& a) {
    GVariant* kids[2] = {addr_bytes(a), g_variant_new_byte(static_cast<guint8>(a.prefix()))};
    return g_variant_new_tuple(kids, 2);
}

GVariant* addr_list(const std::vector<std::pair<ServiceAddress, std::uint32_t>>& list) {
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE("a(ayyu)"));
    for (const auto& [a, v] : list) {
        GVariant* kids[3] = {addr_bytes(a), g_variant_new_byte(static_cast<guint8>(a.prefix())),
                             g_variant_new_uint32(v)};
        g_variant_builder_add_value(&b, g_variant_new_tuple(kids, 3));
    }
    return g_variant_builder_end(&b);
}

GVariant* no_extensions() { return g_variant_new_array(G_VARIANT_TYPE("{sv}"), nullptr, 0); }

GVariant* plain_list(const std::vector<ServiceAddress>& list) {
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE("a(ayy)"));
    for (const auto& a : list) g_variant_builder_add_value(&b, addr_tuple(a));
    return g_variant_builder_end(&b);
}

struct Encoder {
    Kind kind;
    static GVariant* info_extensions(const InfoMsg& m) {
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        if (!m.fixed.empty()) g_variant_builder_add(&b, "{sv}", "fixed", plain_list(m.fixed));
        return g_variant_builder_end(&b);
    }
    GVariant* operator()(const InfoMsg& m) {
        kind = Kind::Info;
        GVariantBuilder serving;
        g_variant_builder_init(&serving, G_VARIANT_TYPE("a(ayyy)"));
        for (const auto& h : m.serving) {
            GVariant* kids[3] = {addr_bytes(h.address), g_variant_new_byte(static_cast<guint8>(h.address.prefix())),
                                 g_variant_new_byte(static_cast<guint8>(h.state))};
            g_variant_builder_add_value(&serving, g_variant_new_tuple(kids, 3));
        }
        GVariant* kids[] = {g_variant_new_uint64(m.seq), g_variant_new_uint32(m.node),
                            g_variant_new_string(m.name.c_str()), g_variant_new_boolean(m.ok),
                            g_variant_new_boolean(m.quiesced), g_variant_new_boolean(m.stopping),
                            g_variant_new_double(m.load), g_variant_new_double(m.capacity),
                            g_variant_new_string(m.digest.c_str()), g_variant_new_uint32(m.cmd_seen),
                            g_variant_builder_end(&serving), addr_list(m.orphans), addr_list(m.pins),
                            info_extensions(m)};
        return g_variant_new_tuple(kids, G_N_ELEMENTS(kids));
    }
    GVariant* operator()(const AcquireMsg& m) {
        kind = Kind::Acquire;
        GVariant* kids[] = {g_variant_new_uint32(m.leader), g_variant_new_uint32(m.dest), addr_tuple(m.address),
                            g_variant_new_boolean(m.handover), g_variant_new_string(m.reason.c_str()),
                            no_extensions()};
        return g_variant_new_tuple(kids, G_N_ELEMENTS(kids));
    }
    GVariant* operator()(const ReleaseMsg& m) {
        kind = Kind::Release;
        GVariant* kids[] = {g_variant_new_uint32(m.leader), g_variant_new_uint32(m.dest), addr_tuple(m.address),
                            g_variant_new_string(m.reason.c_str()), no_extensions()};
        return g_variant_new_tuple(kids, G_N_ELEMENTS(kids));
    }
    GVariant* operator()(const BatchMsg& m) {
        kind = Kind::Batch;
        // Reasons travel once each: a failover batch of 256 addresses shares
        // one or two, and a small message crosses the ring in one token turn.
        std::vector<std::string> reasons;
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE("a(y(ayy)bq)"));
        for (const auto& it : m.items) {
            auto r = std::find(reasons.begin(), reasons.end(), it.reason);
            std::size_t idx = static_cast<std::size_t>(r - reasons.begin());
            if (r == reasons.end()) reasons.push_back(it.reason);
            GVariant* kids[] = {g_variant_new_byte(it.acquire ? 1 : 2), addr_tuple(it.address),
                                g_variant_new_boolean(it.handover), g_variant_new_uint16(static_cast<guint16>(idx))};
            g_variant_builder_add_value(&b, g_variant_new_tuple(kids, G_N_ELEMENTS(kids)));
        }
        GVariantBuilder rb;
        g_variant_builder_init(&rb, G_VARIANT_TYPE("as"));
        for (const auto& r : reasons) g_variant_builder_add(&rb, "s", r.c_str());
        GVariant* kids[] = {g_variant_new_uint32(m.leader), g_variant_new_uint32(m.dest), g_variant_builder_end(&rb),
                            g_variant_builder_end(&b), no_extensions()};
        return g_variant_new_tuple(kids, G_N_ELEMENTS(kids));
    }
    GVariant* operator()(const RequestMsg& m) {
        kind = Kind::Request;
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE("a(ayy)"));
        for (const auto& a : m.address) g_variant_builder_add_value(&b, addr_tuple(a));
        GVariant* kids[] = {g_variant_new_uint32(m.from), g_variant_new_byte(static_cast<guint8>(m.kind)),
                            g_variant_new_uint32(m.target), g_variant_builder_end(&b), no_extensions()};
        return g_variant_new_tuple(kids, G_N_ELEMENTS(kids));
    }
};

// GVariant strings must be valid UTF-8 without NUL; names and reasons come
// from our own code, but keep the encoder total anyway.
std::string clean(const std::string& s) {
    if (g_utf8_validate(s.data(), static_cast<gssize>(s.size()), nullptr) && s.find('\0') == std::string::npos)
        return s;
    GCharPtr v(g_utf8_make_valid(s.data(), static_cast<gssize>(s.size())));
    std::string out(v.get());
    return out;
}

Message sanitized(const Message& m) {
    Message c = m;
    if (auto* i = std::get_if<InfoMsg>(&c)) {
        i->name = clean(i->name);
        i->digest = clean(i->digest);
    } else if (auto* a = std::get_if<AcquireMsg>(&c)) {
        a->reason = clean(a->reason);
    } else if (auto* r = std::get_if<ReleaseMsg>(&c)) {
        r->reason = clean(r->reason);
    } else if (auto* b = std::get_if<BatchMsg>(&c)) {
        for (auto& it : b->items) it.reason = clean(it.reason);
    }
    return c;
}

// Decoding helpers: each returns false on invalid content.
bool get_addr(GVariant* bytes, GVariant* prefix, ServiceAddress* out) {
    gsize n = 0;
    const void* data = g_variant_get_fixed_array(bytes, &n, 1);
    auto a = ServiceAddress::from_bytes(static_cast<const std::uint8_t*>(data), n, g_variant_get_byte(prefix));
    if (!a) return false;
    *out = *a;
    return true;
}

GVariantPtr child(GVariant* v, gsize i) { return GVariantPtr(g_variant_get_child_value(v, i)); }

bool get_addr_tuple(GVariant* t, ServiceAddress* out) {
    auto b = child(t, 0), p = child(t, 1);
    return get_addr(b.get(), p.get(), out);
}

bool get_plain_list(GVariant* list, std::vector<ServiceAddress>* out) {
    gsize n = g_variant_n_children(list);
    out->reserve(n);
    for (gsize i = 0; i < n; i++) {
        ServiceAddress a;
        if (!get_addr_tuple(child(list, i).get(), &a)) return false;
        out->push_back(a);
    }
    return true;
}

bool get_addr_list(GVariant* list, std::vector<std::pair<ServiceAddress, std::uint32_t>>* out) {
    gsize n = g_variant_n_children(list);
    out->reserve(n);
    for (gsize i = 0; i < n; i++) {
        auto e = child(list, i);
        auto b = child(e.get(), 0), p = child(e.get(), 1), v = child(e.get(), 2);
        ServiceAddress a;
        if (!get_addr(b.get(), p.get(), &a)) return false;
        out->emplace_back(a, g_variant_get_uint32(v.get()));
    }
    return true;
}

std::string get_str(GVariant* v, gsize i) {
    auto c = child(v, i);
    gsize len = 0;
    const gchar* s = g_variant_get_string(c.get(), &len);
    return std::string(s, len);
}


// Sorting a copy keeps duplicate detection O(n log n): a hostile peer's
// maximum-size list must not cost every member seconds (a quadratic scan of
// an 880 KB Info took 12 s).
template <typename T, typename Key>
std::string first_duplicate(const std::vector<T>& list, Key key) {
    std::vector<ServiceAddress> v;
    v.reserve(list.size());
    for (const auto& x : list) v.push_back(key(x));
    std::sort(v.begin(), v.end());
    auto d = std::adjacent_find(v.begin(), v.end());
    return d == v.end() ? std::string() : d->str();
}

constexpr std::size_t kMaxText = 4096;   // names, digests, reasons

struct Validator {
    std::string operator()(const InfoMsg& m) const {
        if (m.node == 0) return "Info: node id 0";
        if (!valid_load_value(m.load) || !valid_load_value(m.capacity))
            return "Info: load or capacity out of range";
        if (m.name.size() > 255 || m.digest.size() > 128) return "Info: name or digest too long";
        for (const auto& h : m.serving)
            if (h.state != AddressState::Acquiring && h.state != AddressState::Online &&
                h.state != AddressState::Releasing)
                return "Info: invalid address state " + std::to_string(static_cast<int>(h.state));
        auto first = [](const auto& x) { return x.first; };
        std::string d = first_duplicate(m.serving, [](const Holding& h) { return h.address; });
        if (d.empty()) d = first_duplicate(m.orphans, first);
        if (d.empty()) d = first_duplicate(m.pins, first);
        if (d.empty()) d = first_duplicate(m.fixed, [](const ServiceAddress& a) { return a; });
        if (!d.empty()) return "Info: address " + d + " listed twice";
        for (const auto& [a, node] : m.pins)
            if (node == 0) return "Info: pin to node id 0";
        return "";
    }
    std::string operator()(const AcquireMsg& m) const {
        if (m.leader == 0 || m.dest == 0) return "Acquire: node id 0";
        if (m.reason.size() > kMaxText) return "Acquire: reason too long";
        return "";
    }
    std::string operator()(const ReleaseMsg& m) const {
        if (m.leader == 0 || m.dest == 0) return "Release: node id 0";
        if (m.reason.size() > kMaxText) return "Release: reason too long";
        return "";
    }
    std::string operator()(const BatchMsg& m) const {
        if (m.leader == 0 || m.dest == 0) return "Batch: node id 0";
        if (m.items.empty()) return "Batch: no commands";
        std::set<std::string> reasons;
        for (const auto& it : m.items) {
            if (it.reason.size() > kMaxText) return "Batch: reason too long";
            reasons.insert(it.reason);
        }
        if (reasons.size() > 65535) return "Batch: too many reasons";
        std::string d = first_duplicate(m.items, [](const BatchItem& it) { return it.address; });
        if (!d.empty()) return "Batch: address " + d + " listed twice";
        return "";
    }
    std::string operator()(const RequestMsg& m) const {
        if (m.from == 0) return "Request: node id 0";
        if (m.kind != RequestKind::Quiesce && m.kind != RequestKind::Unquiesce && m.kind != RequestKind::Move &&
            m.kind != RequestKind::Unpin)
            return "Request: unknown kind " + std::to_string(static_cast<int>(m.kind));
        if (m.target == 0 && m.kind != RequestKind::Unpin) return "Request: target node id 0";
        if (m.address.size() > 1) return "Request: more than one address";
        if ((m.kind == RequestKind::Move || m.kind == RequestKind::Unpin) && m.address.empty())
            return "Request: move/unpin without an address";
        return "";
    }
};

// An extension value of a known key: its type is part of the contract.
bool extension(GVariant* dict, const char* key, const char* type, GVariantPtr* out, std::string* err) {
    GVariantPtr v(g_variant_lookup_value(dict, key, nullptr));
    if (!v) return true;
    if (!g_variant_is_of_type(v.get(), G_VARIANT_TYPE(type))) {
        *err = std::string("extension '") + key + "' is not of type " + type;
        return false;
    }
    *out = std::move(v);
    return true;
}

}  // namespace

std::string validate(const Message& m) { return std::visit(Validator{}, m); }

std::vector<std::uint8_t> encode(const Message& msg) {
    Encoder enc{Kind::Info};
    GVariantPtr body = sink(std::visit(enc, sanitized(msg)));
    gsize size = g_variant_get_size(body.get());
    std::vector<std::uint8_t> out(kHeader + size, 0);
    out[0] = 'R';
    out[1] = 'A';
    out[2] = kProtocolVersion;
    out[3] = static_cast<std::uint8_t>(enc.kind);
    out[4] = G_BYTE_ORDER == G_BIG_ENDIAN ? 1 : 0;
    out[5] = kProtocolMinor;
    g_variant_store(body.get(), out.data() + kHeader);
    return out;
}

namespace {
std::variant<Message, DecodeError> parse(Kind kind, GVariant* v) {
    auto c = [&](gsize i) { return child(v, i); };
    switch (kind) {
    case Kind::Info: {
        InfoMsg m;
        m.seq = g_variant_get_uint64(c(0).get());
        m.node = g_variant_get_uint32(c(1).get());
        m.name = get_str(v, 2);
        m.ok = g_variant_get_boolean(c(3).get());
        m.quiesced = g_variant_get_boolean(c(4).get());
        m.stopping = g_variant_get_boolean(c(5).get());
        m.load = g_variant_get_double(c(6).get());
        m.capacity = g_variant_get_double(c(7).get());
        m.digest = get_str(v, 8);
        m.cmd_seen = g_variant_get_uint32(c(9).get());
        auto serving = c(10);
        gsize n = g_variant_n_children(serving.get());
        m.serving.reserve(n);
        for (gsize i = 0; i < n; i++) {
            auto e = child(serving.get(), i);
            auto b = child(e.get(), 0), p = child(e.get(), 1), s = child(e.get(), 2);
            Holding h;
            if (!get_addr(b.get(), p.get(), &h.address)) return DecodeError{"Info: invalid served address"};
            guint8 st = g_variant_get_byte(s.get());
            if (st < 1 || st > 3) return DecodeError{"Info: invalid address state " + std::to_string(st)};
            h.state = static_cast<AddressState>(st);
            m.serving.push_back(h);
        }
        if (!get_addr_list(c(11).get(), &m.orphans)) return DecodeError{"Info: invalid orphan address"};
        if (!get_addr_list(c(12).get(), &m.pins)) return DecodeError{"Info: invalid pinned address"};
        auto ext = c(13);
        GVariantPtr fixed;
        std::string err;
        if (!extension(ext.get(), "fixed", "a(ayy)", &fixed, &err)) return DecodeError{"Info: " + err};
        if (fixed && !get_plain_list(fixed.get(), &m.fixed)) return DecodeError{"Info: invalid fixed address"};
        return Message{std::move(m)};
    }
    case Kind::Acquire: {
        AcquireMsg m;
        m.leader = g_variant_get_uint32(c(0).get());
        m.dest = g_variant_get_uint32(c(1).get());
        if (!get_addr_tuple(c(2).get(), &m.address)) return DecodeError{"Acquire: invalid address"};
        m.handover = g_variant_get_boolean(c(3).get());
        m.reason = get_str(v, 4);
        return Message{std::move(m)};
    }
    case Kind::Release: {
        ReleaseMsg m;
        m.leader = g_variant_get_uint32(c(0).get());
        m.dest = g_variant_get_uint32(c(1).get());
        if (!get_addr_tuple(c(2).get(), &m.address)) return DecodeError{"Release: invalid address"};
        m.reason = get_str(v, 3);
        return Message{std::move(m)};
    }
    case Kind::Batch: {
        BatchMsg m;
        m.leader = g_variant_get_uint32(c(0).get());
        m.dest = g_variant_get_uint32(c(1).get());
        auto reasons = c(2);
        gsize nr = g_variant_n_children(reasons.get());
        if (nr > 65535) return DecodeError{"Batch: too many reasons"};
        std::vector<std::string> texts;
        texts.reserve(nr);
        for (gsize i = 0; i < nr; i++) texts.push_back(get_str(reasons.get(), i));
        auto list = c(3);
        gsize n = g_variant_n_children(list.get());
        m.items.reserve(n);
        for (gsize i = 0; i < n; i++) {
            auto e = child(list.get(), i);
            BatchItem it;
            guint8 k = g_variant_get_byte(child(e.get(), 0).get());
            if (k != 1 && k != 2) return DecodeError{"Batch: unknown command " + std::to_string(k)};
            it.acquire = k == 1;
            if (!get_addr_tuple(child(e.get(), 1).get(), &it.address)) return DecodeError{"Batch: invalid address"};
            it.handover = g_variant_get_boolean(child(e.get(), 2).get());
            guint16 r = g_variant_get_uint16(child(e.get(), 3).get());
            if (r >= nr) return DecodeError{"Batch: reason index out of range"};
            it.reason = texts[r];
            m.items.push_back(std::move(it));
        }
        return Message{std::move(m)};
    }
    case Kind::Request: {
        RequestMsg m;
        m.from = g_variant_get_uint32(c(0).get());
        guint8 k = g_variant_get_byte(c(1).get());
        if (k < 1 || k > 4) return DecodeError{"Request: unknown kind " + std::to_string(k)};
        m.kind = static_cast<RequestKind>(k);
        m.target = g_variant_get_uint32(c(2).get());
        auto list = c(3);
        if (g_variant_n_children(list.get()) > 1) return DecodeError{"Request: more than one address"};
        if (!get_plain_list(list.get(), &m.address)) return DecodeError{"Request: invalid address"};
        return Message{std::move(m)};
    }
    }
    return DecodeError{"unreachable"};
}
}  // namespace

std::variant<Message, DecodeError> decode(const std::uint8_t* data, std::size_t len) {
    if (!data || len < kHeader) return DecodeError{"truncated: " + std::to_string(len) + " bytes, header is 8"};
    if (len > kMaxMessageBytes)
        return DecodeError{"message of " + std::to_string(len) + " bytes exceeds the limit of " +
                           std::to_string(kMaxMessageBytes)};
    if (data[0] != 'R' || data[1] != 'A') return DecodeError{"not a rais message (bad magic)"};
    if (data[2] != kProtocolVersion)
        return DecodeError{"protocol version " + std::to_string(data[2]) + ", this raisd speaks " +
                               std::to_string(kProtocolVersion),
                           data[2]};
    if (data[3] < 1 || data[3] > 5) return DecodeError{"unknown message kind " + std::to_string(data[3])};
    // Bytes 5-7 (minor version, reserved) and flag bits but bit 0 are for
    // later minor versions: ignored (DESIGN §3 compatibility rule).
    Kind kind = static_cast<Kind>(data[3]);
    bool swap = (data[4] & 1) != (G_BYTE_ORDER == G_BIG_ENDIAN ? 1 : 0);

    // g_bytes_new copies into malloc'd memory, which is suitably aligned.
    GBytesPtr bytes(g_bytes_new(data + kHeader, len - kHeader));
    GVariantPtr v = sink(g_variant_new_from_bytes(G_VARIANT_TYPE(type_of(kind)), bytes.get(), FALSE));
    if (!g_variant_is_normal_form(v.get())) return DecodeError{std::string("malformed ") + type_of(kind) + " body"};
    if (swap) v = GVariantPtr(g_variant_byteswap(v.get()));  // not floating: owned as returned

    auto parsed = parse(kind, v.get());
    if (auto* m = std::get_if<Message>(&parsed)) {
        std::string why = validate(*m);
        if (!why.empty()) return DecodeError{why};
    }
    return parsed;
}

}  // namespace rais
