// Announcer: what the backend says on the LAN about an address, through raw
// sockets: the ARP probe before an IPv4 address is plumbed (RFC 5227: sender
// 0.0.0.0, "is anyone using this?"), gratuitous ARP for IPv4 and unsolicited
// neighbour advertisements for IPv6 once it is. It sends when asked and
// reports what it hears; when and how often is the sequencer's business.
//
// Invariants:
//  - the ARP receive socket is open only while a probe is running (opened
//    before the probe goes out, so no answer is missed; closed with the last
//    probe, so it queues nothing else);
//  - a probe reports at most one answer, from another MAC than ours, from the
//    probed interface; then it is over;
//  - failures to send are logged here, never raised: an announcement that did
//    not go out is not a reason to give an address up.
#pragma once

#include "core/log_level.h"
#include <glib.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/address.h"
#include "daemon/kernel/kernel_state.h"
#include "daemon/kernel/loop.h"

namespace rais::kernel {

class Announcer {
public:
    using Log = std::function<void(LogLevel level, const std::string& text)>;
    using Answered = std::function<void(const std::string& mac)>;

    // Opens the send sockets (needs CAP_NET_RAW); nullptr and *why on failure.
    // Without IPv6 it logs a warning and sends no neighbour advertisements.
    static std::unique_ptr<Announcer> open(GMainContext* ctx, Log log, std::string* why);
    Announcer(const Announcer&) = delete;
    Announcer& operator=(const Announcer&) = delete;

    // Whether nic does ARP/ND, and its MAC.
    LinkInfo link(const std::string& nic) const;

    // Probes for `addr` (IPv4) on the interface; `answered` runs (from the
    // loop) if another host claims it. Keyed by addr: a new probe replaces
    // one for the same address. false: no probe is running (logged why).
    bool probe(const ServiceAddress& addr, int ifindex, const std::string& nic, const LinkInfo& link,
               Answered answered);
    // Ends the probe for addr, if any; its callback never runs.
    void stop_probe(const ServiceAddress& addr);

    // One gratuitous ARP (IPv4) or unsolicited NA (IPv6) for addr.
    void announce(const ServiceAddress& addr, int ifindex, const std::string& nic, const LinkInfo& link);

private:
    Announcer(GMainContext* ctx, Log log) : ctx_(ctx), log_(std::move(log)) {}
    struct Probe {
        int ifindex = 0;
        LinkInfo link;
        Answered answered;
    };
    static gboolean on_arp_ready(gint, GIOCondition, gpointer p);
    void read_arp();
    bool send_arp(int ifindex, const LinkInfo& link, const std::uint8_t* spa, const std::uint8_t* tpa,
                  std::string* why);
    bool send_na(const ServiceAddress& addr, int ifindex, const LinkInfo& link, std::string* why);
    void log(LogLevel level, const std::string& text) {
        if (log_) log_(level, text);
    }

    GMainContext* ctx_;
    Log log_;
    Fd arp_send_, nd_send_, arp_recv_;
    std::map<ServiceAddress, Probe> probes_;
    SourcePtr arp_watch_;
};

}  // namespace rais::kernel
