// The kernel's address table as the backend's rooms see it: one record per
// address per interface and prefix, kept by the netlink room from the
// monitor socket and read by the sequencer to decide. Plain data, no I/O, so
// the sequencer's unit tests build tables by hand.
//
// Invariants:
//  - keyed by IP (ServiceAddress compares without the prefix); one record
//    per (interface, prefix) under it; an IP without records has no key;
//  - every record carries the generation it arrived in, and gen() grows with
//    every change, so a decision can remember what it saw and an event older
//    than that decision is recognised as already acted on;
//  - a permanent record (IFA_F_PERMANENT) is the administrator's: configured
//    without a lifetime, where ours always have one.
#pragma once

#include "core/log_level.h"
#include <linux/if_addr.h>

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/address.h"

namespace rais::kernel {

// Log levels of AddressBackend::Callbacks::log.

constexpr std::uint32_t kInfiniteLifetime = 0xFFFFFFFFu;

// One address as an RTM_NEWADDR/RTM_DELADDR message or dump line shows it.
struct AddrRecord {
    int ifindex = 0;
    ServiceAddress addr;  // with the prefix length on the interface
    std::uint32_t flags = 0;                  // IFA_F_*
    std::uint32_t valid = kInfiniteLifetime;  // seconds left
    std::uint64_t gen = 0;                    // table generation it arrived in

    bool permanent() const { return (flags & IFA_F_PERMANENT) != 0; }
    bool dadfailed() const { return (flags & IFA_F_DADFAILED) != 0; }
    bool tentative() const { return (flags & IFA_F_TENTATIVE) != 0; }
    bool secondary() const { return (flags & IFA_F_SECONDARY) != 0; }
};

// A change the monitor saw, handed on after the table took it in.
struct KernelEvent {
    bool add = true;
    bool resync = false;  // events were lost and the table reloaded: compare everything
    AddrRecord rec;
    std::uint32_t portid = 0;  // netlink port of the process that made the change; 0: the kernel
};

// What an interface can do for announcements.
struct LinkInfo {
    bool arp = false;  // Ethernet-like, ARP/ND in use
    std::array<std::uint8_t, 6> mac{};
};

// The outcome of making the kernel promote secondaries on an interface: on
// when it does now; note, when not empty, what was changed or why not (logged
// at `level` by whoever asked, in the order of its own log lines).
struct PromoteResult {
    bool on = false;
    LogLevel level = LogLevel::Info;
    std::string note;
};

// Whether net covers a (same family, a inside net's prefix).
bool covers(const ServiceAddress& net, const ServiceAddress& a);

// Seconds of kernel lifetime for a lifetime in seconds: at least 1, short
// of infinite (which would make the address look permanent).
std::uint32_t lifetime_secs(double s);

class AddressTable {
public:
    // Replaces everything with a dump; each record gets a new generation.
    void load(std::vector<AddrRecord> records);
    // Takes in one change; returns the record with its new generation.
    AddrRecord apply(AddrRecord r, bool add);
    std::uint64_t gen() const { return gen_; }

    // `a` on ifindex (with a's prefix when match_prefix), in any state.
    const AddrRecord* find_record(const ServiceAddress& a, int ifindex, bool match_prefix) const;
    // Where `a` is in service on this host (a dadfailed copy does not count).
    const AddrRecord* find_any(const ServiceAddress& a) const;
    // A permanent copy of `a` on any interface; in_service: not dadfailed.
    const AddrRecord* find_permanent(const ServiceAddress& a, bool in_service) const;
    // A copy of `a` that is not permanent: on ifindex (any state), or with
    // ifindex 0 on any interface (in service only).
    const AddrRecord* find_ours(const ServiceAddress& a, int ifindex) const;
    // The in-service address whose subnet covers `a` most narrowly
    // (IPaddr2's findif), or null.
    const AddrRecord* narrowest_cover(const ServiceAddress& a) const;
    // A permanent IPv4 address on ifindex in subnet (same prefix), or null.
    const AddrRecord* permanent_in_subnet(const ServiceAddress& subnet, int ifindex) const;
    bool fixed_now(const ServiceAddress& a) const { return find_permanent(a, true) != nullptr; }

private:
    std::map<ServiceAddress, std::vector<AddrRecord>> by_ip_;
    std::uint64_t gen_ = 0;
};

}  // namespace rais::kernel
