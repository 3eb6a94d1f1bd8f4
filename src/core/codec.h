// Codec: the group's messages (Info, Acquire, Release, Request) to and from
// bytes. Wire format: an 8-byte header ("RA", version, kind, flags, three
// reserved zero bytes) followed by one GVariant in normal form whose type is
// fixed by the kind. Flags bit 0 marks a big-endian sender, so mixed-endian
// clusters interoperate (the receiver byteswaps).
//
// decode() treats its input as hostile: anything truncated, of an unknown
// version or kind, not in GVariant normal form, or carrying an invalid address
// or state is an error value. It never throws and never trusts a length.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/model.h"

namespace rais {

constexpr std::uint8_t kProtocolVersion = 1;

struct InfoMsg {
    std::uint64_t seq = 0;
    std::uint32_t node = 0;
    std::string name;
    bool ok = true, quiesced = false, stopping = false;
    double load = 0, capacity = 100;
    std::string digest;          // configuration digest (hex)
    std::uint32_t cmd_seen = 0;  // leader commands delivered to the sender since its last membership change
    std::vector<Holding> serving;
    // From the leader only: orphan countdowns (age in ms, clocks differ
    // between hosts) and manual pins (node id), so a new leader inherits them.
    std::vector<std::pair<ServiceAddress, std::uint32_t>> orphans;
    std::vector<std::pair<ServiceAddress, std::uint32_t>> pins;
};

struct AcquireMsg {
    std::uint32_t leader = 0, dest = 0;
    ServiceAddress address;
    bool handover = false;       // the old holder still serves: no ARP probe
    std::string reason;
};

struct ReleaseMsg {
    std::uint32_t leader = 0, dest = 0;
    ServiceAddress address;
    std::string reason;
};

// Several leader commands to one destination in one message: when a host
// takes over 256 addresses, one CPG message instead of 256 (the receiver
// counts it as one command for cmd_seen, and applies the items in order).
struct BatchItem {
    bool acquire = true;
    ServiceAddress address;
    bool handover = false;
    std::string reason;
};

struct BatchMsg {
    std::uint32_t leader = 0, dest = 0;
    std::vector<BatchItem> items;
};

enum class RequestKind : std::uint8_t { Quiesce = 1, Unquiesce = 2, Move = 3, Unpin = 4 };
const char* to_string(RequestKind k);

struct RequestMsg {
    std::uint32_t from = 0;
    RequestKind kind = RequestKind::Quiesce;
    std::uint32_t target = 0;    // node id (quiesce, unquiesce, move)
    std::vector<ServiceAddress> address;  // zero or one (move, unpin)
};

using Message = std::variant<InfoMsg, AcquireMsg, ReleaseMsg, RequestMsg, BatchMsg>;

struct DecodeError {
    std::string what;
};

std::vector<std::uint8_t> encode(const Message& m);
std::variant<Message, DecodeError> decode(const std::uint8_t* data, std::size_t len);

}  // namespace rais
