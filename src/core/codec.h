// Codec: the group's messages to and from bytes. Five kinds: Info (1: a
// member's state, sent periodically and on change), Acquire (2) and Release
// (3: one leader command to one member), Request (4: an administrator's
// quiesce, unquiesce, move or unpin from raisctl, relayed to the group),
// Batch (5: several leader commands to one member in one message). Wire
// format: an 8-byte header ("RA", major version, kind, flags, minor
// version, two reserved bytes) followed by one GVariant in normal form
// whose type is fixed by the kind: the kind's fields, then an `a{sv}` of
// extensions. Flags bit 0 marks a big-endian sender, so mixed-endian
// clusters interoperate (the receiver byteswaps).
//
// Compatibility (DESIGN §3): within a major version every new field is an
// optional extension key; a receiver ignores keys it does not know, and the
// minor version and reserved bytes, so older members keep working. A key's
// type never changes once released. A change an older member cannot ignore
// bumps the major version; a message of another major version decodes to a
// DecodeError with `foreign_version` set, and the Member keeps out of
// planning while such a sender is in the group.
//
// decode() treats its input as hostile: anything truncated, larger than
// kMaxMessageBytes, of an unknown kind, not in GVariant normal form, or
// failing validate() is an error value. It never throws, never trusts a
// length, and runs in time O(n log n) in the message size. validate() holds
// the semantic rules; Member::send uses it too, so a member never sends what
// its peers would drop.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/model.h"

namespace rais {

constexpr std::uint8_t kProtocolVersion = 2;       // major: a change older members cannot ignore
constexpr std::uint8_t kProtocolMinor = 0;         // informational: additive extensions
constexpr std::size_t kMaxMessageBytes = 1 << 20;  // one Info of ~60,000 addresses

// Load and capacity as carried by Info: finite, non-negative, below this.
constexpr double kMaxLoadValue = 1e12;
bool valid_load_value(double v);

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
    // Extension "fixed" (minor 0): group addresses configured statically on
    // the sender by the administrator; it holds them and never releases them.
    std::vector<ServiceAddress> fixed;
};

struct AcquireMsg {
    std::uint32_t leader = 0, dest = 0;
    ServiceAddress address;
    // No ARP probe: the old holder still serves (handover), or fencing
    // confirmed the last holder down (nothing can answer one).
    bool handover = false;
    std::string reason;
};

struct ReleaseMsg {
    std::uint32_t leader = 0, dest = 0;
    ServiceAddress address;
    std::string reason;
};

// Several leader commands to one destination in one message: when a host
// takes over 256 addresses, one CPG message instead of 256 (the receiver
// counts it as one command for cmd_seen, and applies the items in order, as
// if each were an Acquire or a Release). The leader sends a Batch when it
// has more than one command for a destination, else a plain Acquire or
// Release. On the wire the reasons travel once each, in a table (`as`) the
// items name by a 16-bit index: (leader, dest, reasons, [(1 acquire |
// 2 release, address, handover, reason index)], extensions).
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
    std::uint8_t foreign_version = 0;   // a well-formed header of another major version
};

// The rules every message must satisfy, beyond its wire type: node ids not
// 0, load and capacity valid, names, digests and reasons within their
// bounds, no address listed twice in one list, a Request's addresses as its
// kind needs, a Batch with at least one command and at most 65535 distinct
// reasons. Empty when valid, else why not.
std::string validate(const Message& m);

std::vector<std::uint8_t> encode(const Message& m);
std::variant<Message, DecodeError> decode(const std::uint8_t* data, std::size_t len);

}  // namespace rais
