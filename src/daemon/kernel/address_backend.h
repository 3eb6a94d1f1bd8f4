// AddressBackend: puts service addresses on and off this host's interfaces
// and tells the LAN about them. The real implementation of the shell's
// address port (DESIGN §2): netlink through libmnl, ARP and neighbour
// advertisements through raw sockets, the hook as a child process. Runs on
// the daemon's GLib main loop and never blocks it: every operation is a
// small asynchronous sequence that ends in exactly one callback.
//
// acquire(a, probe, lifetime):
//   1. resolve the interface (the configured nic, else the one whose
//      connected route covers a, like IPaddr2's findif); set
//      net.ipv4.conf.IF.promote_secondaries=1 for IPv4;
//   2. IPv4 with probe: ARP probe (sender 0.0.0.0) and wait arp_probe_ms;
//      an answer fails the acquire (nothing plumbed);
//   3. RTM_NEWADDR with IFA_CACHEINFO valid/preferred lifetime = lifetime;
//   4. IPv6: wait until the address is no longer tentative; dadfailed fails
//      the acquire (the address is removed);
//   5. run the hook "HOOK acquire ADDRESS/PREFIX NIC" (timeout); failure
//      unplumbs and fails the acquire;
//   6. announce: gratuitous ARP (IPv4) or unsolicited NA (IPv6) at once and
//      4 more times 200 ms apart; then callback done(a, true, "").
// release(a): hook "HOOK release ...", RTM_DELADDR, callback done(a, false...).
// refresh(list, lifetime): RTM_NEWADDR|NLM_F_REPLACE with new lifetimes.
// Removal of one of our addresses by anyone else (RTM_DELADDR we did not ask
// for) is reported through lost().
//
// Permanent addresses (IFA_F_PERMANENT: configured by the administrator
// without a lifetime; ours always have a finite one) are never adopted,
// changed or removed (DESIGN §4 rule 10): an acquire of one that is present
// succeeds without touching it (detail kPermanentDetail) and reports it
// through fixed(); a release leaves it alone (same detail); a refresh skips
// it. Before removing an IPv4 address the backend makes sure the kernel will
// not take the subnet's other addresses with it (promote_secondaries=1); if
// it cannot and a permanent address would go too, the release fails.
#pragma once

#include "core/log_level.h"
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/address.h"

namespace rais {

struct AddressBackendOptions {
    std::string nic;                 // empty: find the interface by connected route
    unsigned arp_probe_ms = 50;
    double announce_interval = 10;   // s between repeated announcements; 0 = only on acquire
    std::string hook;                // empty: none
    double hook_timeout = 30;        // s
};

// Milestones of one acquire, reported as they happen so the daemon can time
// a failover (issue 13): the ARP probe went out, its window ended
// unanswered (or no probe could go out), the kernel acknowledged the
// RTM_NEWADDR, the first announcement (gratuitous ARP / unsolicited NA)
// went out.
enum class AcquireStep : std::uint8_t { ProbeSent, ProbeSettled, Plumbed, Announced };
const char* to_string(AcquireStep s);

class AddressBackend {
public:
    // The detail of a successful acquire or release that found the address
    // permanent and left it as it was.
    static constexpr const char* kPermanentDetail = "permanent address configured by the administrator: left alone";

    struct Callbacks {
        // The outcome of acquire (acquire=true) or release (acquire=false).
        std::function<void(const ServiceAddress&, bool acquire, bool ok, const std::string& detail)> done;
        // One of our addresses vanished without a release.
        std::function<void(const ServiceAddress&, const std::string& why)> lost;
        // A watched address (see permanent()) or one an acquire found
        // permanent became permanent-present on this host (present=true),
        // or is no longer (deleted, or given a lifetime). Reported on changes
        // only: never twice in a row with the same value.
        std::function<void(const ServiceAddress&, bool present)> fixed;
        // A milestone of an acquire under way (may be empty), with when it
        // happened (s, g_get_monotonic_time's clock): callbacks reach the
        // owner after the batch they belong to.
        std::function<void(const ServiceAddress&, AcquireStep, double at)> step;
        // Something worth logging (level: 0 debug .. 4 error).
        std::function<void(LogLevel level, const std::string& text)> log;
    };

    virtual ~AddressBackend() = default;
    virtual void acquire(const ServiceAddress& a, bool probe, double lifetime) = 0;
    virtual void release(const ServiceAddress& a) = 0;
    virtual void refresh(const std::vector<ServiceAddress>& held, double lifetime) = 0;
    // Which of `group` are on any interface now (left over from a crash, or
    // permanent: permanent() tells those apart).
    virtual std::vector<ServiceAddress> present(const std::vector<ServiceAddress>& group) = 0;
    // Which of `group` are on an interface as permanent addresses now. From
    // this call on, `group` (replacing any earlier one) is watched: changes
    // of its permanent presence are reported through fixed().
    virtual std::vector<ServiceAddress> permanent(const std::vector<ServiceAddress>& group) = 0;
    // Applies a reload's arp_probe_ms, announce_interval, hook and
    // hook_timeout to operations that start from now on (the nic stays:
    // it names where the held addresses live). Operations under way finish
    // as they began.
    virtual void reconfigure(const AddressBackendOptions& opts) = 0;
    // The interface an address lives on (for the hook and status), or "".
    virtual std::string interface_for(const ServiceAddress& a) = 0;

    // The netlink implementation; attaches itself to the thread-default
    // GMainContext. Returns nullptr and fills *error when netlink or the
    // raw sockets cannot be opened (needs CAP_NET_ADMIN and CAP_NET_RAW).
    static std::unique_ptr<AddressBackend> create(AddressBackendOptions opts, Callbacks cb, std::string* error);
};

}  // namespace rais
