#include "core/codec.h"

#include <algorithm>
#include <cstring>

#include "core/glib_ptr.h"

namespace rais {

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
    case Kind::Info: return "(tusbbbddsua(ayyy)a(ayyu)a(ayyu))";
    case Kind::Acquire: return "(uu(ayy)bs)";
    case Kind::Release: return "(uu(ayy)s)";
    case Kind::Request: return "(uyua(ayy))";
    case Kind::Batch: return "(uuasa(y(ayy)bq))";
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

struct Encoder {
    Kind kind;
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
                            g_variant_builder_end(&serving), addr_list(m.orphans), addr_list(m.pins)};
        return g_variant_new_tuple(kids, G_N_ELEMENTS(kids));
    }
    GVariant* operator()(const AcquireMsg& m) {
        kind = Kind::Acquire;
        GVariant* kids[] = {g_variant_new_uint32(m.leader), g_variant_new_uint32(m.dest), addr_tuple(m.address),
                            g_variant_new_boolean(m.handover), g_variant_new_string(m.reason.c_str())};
        return g_variant_new_tuple(kids, G_N_ELEMENTS(kids));
    }
    GVariant* operator()(const ReleaseMsg& m) {
        kind = Kind::Release;
        GVariant* kids[] = {g_variant_new_uint32(m.leader), g_variant_new_uint32(m.dest), addr_tuple(m.address),
                            g_variant_new_string(m.reason.c_str())};
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
                            g_variant_builder_end(&b)};
        return g_variant_new_tuple(kids, G_N_ELEMENTS(kids));
    }
    GVariant* operator()(const RequestMsg& m) {
        kind = Kind::Request;
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE("a(ayy)"));
        for (const auto& a : m.address) g_variant_builder_add_value(&b, addr_tuple(a));
        GVariant* kids[] = {g_variant_new_uint32(m.from), g_variant_new_byte(static_cast<guint8>(m.kind)),
                            g_variant_new_uint32(m.target), g_variant_builder_end(&b)};
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

bool get_addr_list(GVariant* list, std::vector<std::pair<ServiceAddress, std::uint32_t>>* out) {
    gsize n = g_variant_n_children(list);
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

}  // namespace

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
    g_variant_store(body.get(), out.data() + kHeader);
    return out;
}

std::variant<Message, DecodeError> decode(const std::uint8_t* data, std::size_t len) {
    if (!data || len < kHeader) return DecodeError{"truncated: " + std::to_string(len) + " bytes, header is 8"};
    if (data[0] != 'R' || data[1] != 'A') return DecodeError{"not a rais message (bad magic)"};
    if (data[2] != kProtocolVersion)
        return DecodeError{"unknown protocol version " + std::to_string(data[2])};
    if (data[3] < 1 || data[3] > 5) return DecodeError{"unknown message kind " + std::to_string(data[3])};
    if ((data[4] & ~1u) != 0 || data[5] || data[6] || data[7]) return DecodeError{"reserved header bits set"};
    Kind kind = static_cast<Kind>(data[3]);
    bool swap = (data[4] & 1) != (G_BYTE_ORDER == G_BIG_ENDIAN ? 1 : 0);

    // g_bytes_new copies into malloc'd memory, which is suitably aligned.
    GBytesPtr bytes(g_bytes_new(data + kHeader, len - kHeader));
    GVariantPtr v = sink(g_variant_new_from_bytes(G_VARIANT_TYPE(type_of(kind)), bytes.get(), FALSE));
    if (!g_variant_is_normal_form(v.get())) return DecodeError{std::string("malformed ") + type_of(kind) + " body"};
    if (swap) v = GVariantPtr(g_variant_byteswap(v.get()));  // not floating: owned as returned

    switch (kind) {
    case Kind::Info: {
        InfoMsg m;
        auto c = [&](gsize i) { return child(v.get(), i); };
        m.seq = g_variant_get_uint64(c(0).get());
        m.node = g_variant_get_uint32(c(1).get());
        m.name = get_str(v.get(), 2);
        m.ok = g_variant_get_boolean(c(3).get());
        m.quiesced = g_variant_get_boolean(c(4).get());
        m.stopping = g_variant_get_boolean(c(5).get());
        m.load = g_variant_get_double(c(6).get());
        m.capacity = g_variant_get_double(c(7).get());
        m.digest = get_str(v.get(), 8);
        m.cmd_seen = g_variant_get_uint32(c(9).get());
        if (!(m.load >= 0 && m.load < 1e300) || !(m.capacity >= 0 && m.capacity < 1e300))
            return DecodeError{"Info: load or capacity out of range"};
        if (m.node == 0) return DecodeError{"Info: node id 0"};
        auto serving = c(10);
        gsize n = g_variant_n_children(serving.get());
        for (gsize i = 0; i < n; i++) {
            auto e = child(serving.get(), i);
            auto b = child(e.get(), 0), p = child(e.get(), 1), s = child(e.get(), 2);
            Holding h;
            if (!get_addr(b.get(), p.get(), &h.address)) return DecodeError{"Info: invalid served address"};
            guint8 st = g_variant_get_byte(s.get());
            if (st < 1 || st > 3) return DecodeError{"Info: invalid address state " + std::to_string(st)};
            h.state = static_cast<AddressState>(st);
            for (const auto& prev : m.serving)
                if (prev.address == h.address) return DecodeError{"Info: address " + h.address.str() + " listed twice"};
            m.serving.push_back(h);
        }
        if (!get_addr_list(c(11).get(), &m.orphans)) return DecodeError{"Info: invalid orphan address"};
        if (!get_addr_list(c(12).get(), &m.pins)) return DecodeError{"Info: invalid pinned address"};
        for (const auto* list : {&m.orphans, &m.pins})
            for (std::size_t i = 0; i < list->size(); i++)
                for (std::size_t j = 0; j < i; j++)
                    if ((*list)[i].first == (*list)[j].first)
                        return DecodeError{"Info: address " + (*list)[i].first.str() + " listed twice"};
        for (const auto& [a, node] : m.pins)
            if (node == 0) return DecodeError{"Info: pin to node id 0"};
        return Message{std::move(m)};
    }
    case Kind::Acquire: {
        AcquireMsg m;
        m.leader = g_variant_get_uint32(child(v.get(), 0).get());
        m.dest = g_variant_get_uint32(child(v.get(), 1).get());
        if (!get_addr_tuple(child(v.get(), 2).get(), &m.address)) return DecodeError{"Acquire: invalid address"};
        m.handover = g_variant_get_boolean(child(v.get(), 3).get());
        m.reason = get_str(v.get(), 4);
        if (m.leader == 0 || m.dest == 0) return DecodeError{"Acquire: node id 0"};
        return Message{std::move(m)};
    }
    case Kind::Release: {
        ReleaseMsg m;
        m.leader = g_variant_get_uint32(child(v.get(), 0).get());
        m.dest = g_variant_get_uint32(child(v.get(), 1).get());
        if (!get_addr_tuple(child(v.get(), 2).get(), &m.address)) return DecodeError{"Release: invalid address"};
        m.reason = get_str(v.get(), 3);
        if (m.leader == 0 || m.dest == 0) return DecodeError{"Release: node id 0"};
        return Message{std::move(m)};
    }
    case Kind::Batch: {
        BatchMsg m;
        m.leader = g_variant_get_uint32(child(v.get(), 0).get());
        m.dest = g_variant_get_uint32(child(v.get(), 1).get());
        if (m.leader == 0 || m.dest == 0) return DecodeError{"Batch: node id 0"};
        auto reasons = child(v.get(), 2);
        gsize nr = g_variant_n_children(reasons.get());
        if (nr > 65535) return DecodeError{"Batch: too many reasons"};
        auto list = child(v.get(), 3);
        gsize n = g_variant_n_children(list.get());
        if (n == 0) return DecodeError{"Batch: no commands"};
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
            it.reason = get_str(reasons.get(), r);
            for (const auto& prev : m.items)
                if (prev.address == it.address) return DecodeError{"Batch: address " + it.address.str() + " listed twice"};
            m.items.push_back(std::move(it));
        }
        return Message{std::move(m)};
    }
    case Kind::Request: {
        RequestMsg m;
        m.from = g_variant_get_uint32(child(v.get(), 0).get());
        guint8 k = g_variant_get_byte(child(v.get(), 1).get());
        if (k < 1 || k > 4) return DecodeError{"Request: unknown kind " + std::to_string(k)};
        m.kind = static_cast<RequestKind>(k);
        m.target = g_variant_get_uint32(child(v.get(), 2).get());
        if (m.from == 0) return DecodeError{"Request: node id 0"};
        if (m.target == 0 && m.kind != RequestKind::Unpin) return DecodeError{"Request: target node id 0"};
        auto list = child(v.get(), 3);
        gsize n = g_variant_n_children(list.get());
        if (n > 1) return DecodeError{"Request: more than one address"};
        for (gsize i = 0; i < n; i++) {
            ServiceAddress a;
            if (!get_addr_tuple(child(list.get(), i).get(), &a)) return DecodeError{"Request: invalid address"};
            m.address.push_back(a);
        }
        if ((m.kind == RequestKind::Move || m.kind == RequestKind::Unpin) && m.address.empty())
            return DecodeError{"Request: move/unpin without an address"};
        return Message{std::move(m)};
    }
    }
    return DecodeError{"unreachable"};
}

}  // namespace rais
