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
//    not go out is not a reason to give an address up;
//  - sending never blocks the loop: the sockets are non-blocking, and a
//    probe or announcement the socket or the device queue cannot take now
//    (EAGAIN, ENOBUFS) waits in a backlog, sent in order from a 1 ms timer,
//    so a burst for a thousand addresses goes out as fast as the link takes
//    it; a probe that waited says when it left (its window starts then);
//    a stopped probe or a forgotten address leaves the backlog with it.
#pragma once

#include "core/log_level.h"
#include <glib.h>

#include <cstdint>
#include <deque>
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
    enum class ProbeStatus : std::uint8_t { Sent, Queued, Failed };

    // Opens the send sockets (needs CAP_NET_RAW); nullptr and *why on failure.
    // Without IPv6 it logs a warning and sends no neighbour advertisements.
    static std::unique_ptr<Announcer> open(GMainContext* ctx, Log log, std::string* why);
    Announcer(const Announcer&) = delete;
    Announcer& operator=(const Announcer&) = delete;

    // Whether nic does ARP/ND, and its MAC.
    LinkInfo link(const std::string& nic) const;

    // Probes for `addr` (IPv4) on the interface; `answered` runs (from the
    // loop) if another host claims it. Keyed by addr: a new probe replaces
    // one for the same address. Sent: it went out now; Queued: it waits for
    // room and `sent` runs (from the loop) when it goes out; Failed: no probe
    // is running (logged why).
    ProbeStatus probe(const ServiceAddress& addr, int ifindex, const std::string& nic, const LinkInfo& link,
                      Answered answered, std::function<void()> sent);
    // Ends the probe for addr, if any; its callback never runs.
    void stop_probe(const ServiceAddress& addr);

    // One gratuitous ARP (IPv4) or unsolicited NA (IPv6) for addr.
    void announce(const ServiceAddress& addr, int ifindex, const std::string& nic, const LinkInfo& link);
    // Drops the announcements of addr still waiting in the backlog (it is
    // being removed: claiming it now would mislead the LAN).
    void forget(const ServiceAddress& addr);

private:
    Announcer(GMainContext* ctx, Log log) : ctx_(ctx), log_(std::move(log)) {}
    struct Probe {
        int ifindex = 0;
        LinkInfo link;
        Answered answered;
        std::function<void()> sent;  // while its probe waits in the backlog
    };
    struct Pending {                 // a probe or an announcement waiting for room
        ServiceAddress addr;
        int ifindex = 0;
        std::string nic;
        LinkInfo link;
        bool probe = false;
    };
    static constexpr std::size_t kBacklogLimit = 16384;
    static gboolean on_arp_ready(gint, GIOCondition, gpointer p);
    static gboolean on_retry(gpointer p);
    // 0 when sent, else the errno (logged unless it only asks to wait).
    int send_pending(const Pending& a);
    void queue(Pending a);
    void flush_backlog();
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
    std::deque<Pending> backlog_;
    int send_errno_ = 0;             // of the last failed send
    SourcePtr arp_watch_, retry_;
};

}  // namespace rais::kernel
