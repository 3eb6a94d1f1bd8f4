// CpgTransport: the group's messaging over a corosync closed process group
// (DESIGN §3). One cpg handle and fd per group (cpg_join works once per
// handle), CPG_MODEL_V1 so totem membership changes (ring id and node
// list) arrive too, multicast in agreed order. Messages that corosync cannot
// take right now (CS_ERR_TRY_AGAIN) are queued and retried in order, so a
// busy ring never drops a protocol message. Dispatch runs on the thread-
// default GMainContext; when corosync goes away, lost() is called once.
#pragma once

#include "core/log_level.h"
#include <corosync/cpg.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "core/member.h"

namespace rais {

class CpgTransport {
public:
    struct Callbacks {
        // A membership input for the Member: group changes and totem ring
        // changes alike (the latter with empty left/joined lists).
        std::function<void(const in::Membership&)> membership;
        std::function<void(const Process& from, std::vector<std::uint8_t> bytes)> deliver;
        std::function<void(const std::string& why)> lost;
        std::function<void(LogLevel level, const std::string& text)> log;
        // The queue emptied after corosync had asked us to wait (may be
        // empty): the failover trace's "sent" is when the plan left.
        std::function<void()> drained;
    };

    CpgTransport(std::string group, Callbacks cb);
    ~CpgTransport();
    CpgTransport(const CpgTransport&) = delete;
    CpgTransport& operator=(const CpgTransport&) = delete;

    // Connects, joins "rais:<group>" and attaches to the main loop.
    bool open(std::string* error);
    // Leaves the group (graceful: peers see reason "leave").
    void leave();
    void send(std::vector<std::uint8_t> bytes);

    std::uint32_t local_node() const { return local_node_; }
    std::uint32_t local_pid() const { return local_pid_; }
    std::size_t queued() const { return queue_.size(); }

private:
    static void on_deliver(cpg_handle_t, const struct cpg_name*, uint32_t nodeid, uint32_t pid, void* msg,
                           size_t len);
    static void on_confchg(cpg_handle_t, const struct cpg_name*, const struct cpg_address* members, size_t n_members,
                           const struct cpg_address* left, size_t n_left, const struct cpg_address* joined,
                           size_t n_joined);
    static void on_totem(cpg_handle_t, struct cpg_ring_id ring, uint32_t n, const uint32_t* nodes);
    static int on_fd(int fd, unsigned condition, void* self);
    static int on_retry(void* self);
    void flush();
    void fail(const std::string& why);

    std::string group_;
    Callbacks cb_;
    cpg_handle_t handle_ = 0;
    bool have_handle_ = false;
    bool joined_ = false;
    bool failed_ = false;
    unsigned fd_source_ = 0, retry_source_ = 0;
    bool retry_pending_ = false;   // corosync said TRY_AGAIN: messages wait in queue_
    std::uint32_t local_node_ = 0, local_pid_ = 0;
    std::uint64_t ring_ = 0;
    std::vector<std::uint32_t> nodes_;
    std::vector<Process> members_;
    std::deque<std::vector<std::uint8_t>> queue_;
};

}  // namespace rais
