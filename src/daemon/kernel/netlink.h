// Netlink: the rtnetlink side of the address backend (libmnl), and the
// mirror of the kernel's address table it keeps. Knows sockets and message
// formats; decides nothing about any one address (that is the sequencer's).
//
// Three sockets: commands (RTM_NEWADDR/RTM_DELADDR, each ACK handed to the
// request's callback), queries (synchronous dumps) and the monitor
// (RTMGRP_IPV4_IFADDR|RTMGRP_IPV6_IFADDR), which keeps the table.
//
// Invariants:
//  - the table is as fresh as a dump after look(): the kernel queues the
//    notification of a change before the sendto that made it returns, and
//    look() reads everything queued (reloading the table if events were
//    lost or an earlier reload failed);
//  - a change enters the table at once but is handed on as a KernelEvent
//    only later (from the loop, through Callbacks::events, or take_events()),
//    never inside the caller's step;
//  - every request's callback runs exactly once, possibly from inside
//    another call on this object (a refresh or an add_batch reads the ACKs
//    it caused);
//  - batched requests (refresh, add_batch) go out at most kBatchLimit bytes
//    per sendto, and the ACKs of each sendto are read before the next, so a
//    thousand requests never overrun the command socket.
#pragma once

#include "core/log_level.h"
#include <glib.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/address.h"
#include "daemon/kernel/kernel_state.h"
#include "daemon/kernel/loop.h"

struct mnl_socket;

namespace rais::kernel {

// "strerror (the kernel's extended-ACK text)".
std::string netlink_error_text(int err, const std::string& ext);

// The interface's name, or "" when there is none with that index.
std::string interface_name(int ifindex);
// The interface's index, or 0.
int interface_index(const std::string& nic);

// Makes the kernel promote secondaries on nic (net.ipv4.conf.NIC.
// promote_secondaries=1), so deleting the first IPv4 address of a subnet
// does not delete the others with it.
PromoteResult promote_secondaries(const std::string& nic);

class Netlink {
public:
    using Ack = std::function<void(int err, const std::string& ext)>;
    struct Callbacks {
        std::function<void(LogLevel level, const std::string& text)> log;
        std::function<void()> events;  // take_events() has something
    };
    struct Lifetime {                  // one address of a refresh
        ServiceAddress addr;           // with the prefix on the interface
        int ifindex = 0;
        Ack ack;
    };
    struct AddRequest {                // one address of add_batch
        ServiceAddress addr;
        int ifindex = 0;
        bool replace = false;
        std::uint32_t lifetime = 0;
        Ack ack;
        bool nodad = false;               // IPv6: IFA_F_NODAD
    };

    // Opens the sockets and loads the table; nullptr and *why on failure.
    static std::unique_ptr<Netlink> open(GMainContext* ctx, Callbacks cb, std::string* why);
    ~Netlink();
    Netlink(const Netlink&) = delete;
    Netlink& operator=(const Netlink&) = delete;

    // Call before deciding anything on table(). Records stay valid until the next look().
    void look();
    const AddressTable& table() const { return table_; }
    std::vector<KernelEvent> take_events();

    // RTM_NEWADDR, created exclusively or replacing the copy there, with
    // this valid/preferred lifetime. false and *why when it was not sent.
    bool add(const ServiceAddress& a, int ifindex, bool replace, std::uint32_t lifetime, Ack ack,
             std::string* why);
    // RTM_DELADDR of exactly this address and prefix.
    bool remove(const ServiceAddress& a, int ifindex, Ack ack, std::string* why);
    // RTM_NEWADDR|NLM_F_REPLACE with a new lifetime for each, batched.
    void refresh(std::vector<Lifetime> addresses, std::uint32_t lifetime);
    // add() for each, batched; a request whose sendto failed is answered
    // with that errno (and no extended-ACK text).
    void add_batch(std::vector<AddRequest> requests);

private:
    Netlink(GMainContext* ctx, Callbacks cb);
    struct MnlDeleter {
        void operator()(mnl_socket* s) const;
    };
    using MnlPtr = std::unique_ptr<mnl_socket, MnlDeleter>;
    static MnlPtr open_socket(unsigned groups, std::string* why);
    static gboolean on_cmd_ready(gint, GIOCondition, gpointer p);
    static gboolean on_monitor_ready(gint, GIOCondition, gpointer p);
    static gboolean on_events(gpointer p);

    std::uint32_t next_seq();
    bool send(std::uint16_t type, std::uint16_t flags, const ServiceAddress& a, int ifindex,
              std::optional<std::uint32_t> lifetime, Ack ack, std::string* why);
    void append(std::vector<char>* batch, const nlmsghdr* nlh, Ack ack);
    void flush_batch(std::vector<char>* batch);
    void read_cmd();
    std::optional<std::vector<AddrRecord>> dump_addresses(std::string* why);
    bool load_table(std::string* why);
    void sync_table();
    void queue_event(KernelEvent ev);
    void log(LogLevel level, const std::string& text) {
        if (cb_.log) cb_.log(level, text);
    }

    GMainContext* ctx_;
    Callbacks cb_;
    std::vector<char> buf_, dump_buf_, mon_buf_;
    MnlPtr cmd_, query_, monitor_;
    std::uint32_t seq_;
    std::map<std::uint32_t, Ack> pending_;
    AddressTable table_;
    bool table_stale_ = false;  // a reload failed; retry at the next look()
    std::deque<KernelEvent> events_;
    SourcePtr cmd_watch_, monitor_watch_, events_source_;
};

}  // namespace rais::kernel
