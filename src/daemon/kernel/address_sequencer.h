// AddressSequencer: the operations on each service address, as a pure step
// machine (in the style of core/member.h): step(now, input) -> effects. It
// decides; the backend (address_backend.cc) does the I/O the effects ask for
// and feeds back what happened. No I/O, no clock, no GLib in here: time
// comes with every step, and the kernel is read through a KernelPort.
//
// One Entry per address with an operation in flight or held:
//   acquire: resolve the interface -> [IPv4, probe wanted: ARP probe for
//     arp_probe_ms; an answer fails it with nothing plumbed] -> Add (netlink)
//     -> [IPv6: wait until not tentative, at most kDadLimit; dadfailed
//     removes it and fails] -> [hook "acquire"; failure removes it and
//     fails] -> announce (at once, 4 more every 200 ms, then every
//     announce_interval) -> Done(ok) and Held;
//   release: [hook "release"; its failure is only logged] -> Remove -> Done;
//   refresh: new lifetimes for the held ones that are there; a held one that
//     is missing is reported Lost;
//   kernel events: a held address removed by anyone else is Lost (once); one
//     made permanent by the administrator is relinquished.
//
// Invariants:
//  - every acquire and release ends in exactly one Done; a held address that
//    vanishes ends in exactly one Lost;
//  - each asynchronous answer (netlink ACK, probe, hook) carries the
//    operation number it was asked under; an answer for a superseded
//    operation is dropped;
//  - a release supersedes every acquire not yet done (those end "failed");
//    other requests for a busy address wait their turn;
//  - permanent addresses (the administrator's) are never adopted, changed or
//    removed (DESIGN §4 rule 10): the operation succeeds with
//    AddressBackend::kPermanentDetail and the address is reported Fixed;
//  - a queued operation starts only in the step after the one that freed
//    its address (Continue), so it decides on a kernel table that already
//    holds the effects of the previous operation;
//  - an operation runs to its end with the options it began under
//    (reconfigure() applies to operations that start later; the periodic
//    announcements of held addresses take the new interval at their next
//    turn);
//  - every probe gets its full window, counted from when it left
//    (in::ProbesSent) or, at the latest, from its ProbeStart; the probes of
//    one batch, reported sent in one step, share one deadline;
//  - every deadline lives in one ordered index (timers_, announces_), so
//    finding the next wake and the due entries costs O(log n), not a scan.
//
// Scale (issue 13): a batch of acquires (in::AcquireBatch) is one step: one
// look at the table, one probe deadline, and the Adds of one round leave as
// one list of effects the backend sends in a few netlink messages; the ACKs
// come back as one in::AddedBatch, so the announcements of a round go out
// together and repeat on one shared timer. Announcements due within
// kAnnounceJoin of an existing announcement time join it (they are not
// safety-relevant; a few ms off is fine).
#pragma once

#include "core/log_level.h"
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "core/address.h"
#include "daemon/kernel/address_backend.h"
#include "daemon/kernel/kernel_state.h"

namespace rais::kernel {

// IPaddr2 sends 5 announcements 200 ms apart; the first goes out at once.
constexpr unsigned kAnnounceRepeats = 4;
constexpr double kAnnounceGap = 0.2;
// DAD takes up to rtr_solicit_delay (1 s) + dad_transmits x retrans (1 s).
constexpr unsigned kDadLimitSeconds = 3;
// An announcement due this close to another one's time goes with it, so
// hundreds of addresses share one timer.
constexpr double kAnnounceJoin = 0.005;

// What the sequencer reads from the kernel while it decides: answers now,
// synchronously. The backend implements it on netlink and the announcer's
// socket; tests on a hand-made table.
class KernelPort {
public:
    virtual ~KernelPort() = default;
    // Up to date with the kernel as of the start of the step.
    virtual const AddressTable& table() const = 0;
    virtual std::string ifname(int ifindex) const = 0;       // "" when none
    virtual int ifindex(const std::string& nic) const = 0;   // 0 when none
    virtual LinkInfo link(const std::string& nic) const = 0;
    // Changes a sysctl; the sequencer logs the note in its own order.
    virtual PromoteResult promote_secondaries(const std::string& nic) = 0;
};

struct SequencerOptions {
    std::string nic;                // empty: find the interface by connected route
    unsigned arp_probe_ms = 50;
    double announce_interval = 10;  // s between repeated announcements; 0 = only on acquire
    bool hook = false;              // a hook is configured
    std::string hook_command;       // handed on in out::RunHook
    double hook_timeout = 30;       // s, handed on in out::RunHook
};

namespace in {
struct Acquire {
    ServiceAddress addr;
    bool probe = true;
    double lifetime = 0;
};
struct Release {
    ServiceAddress addr;
};
struct Refresh {
    std::vector<ServiceAddress> held;
    double lifetime = 0;
};
struct KernelEvents {                // in the order the monitor saw them
    std::vector<KernelEvent> events;
};
struct Added {                       // answer to out::Add
    ServiceAddress key;
    std::uint64_t op = 0;
    int err = 0;
    std::string text;                // strerror (the kernel's extended-ACK text)
    std::string unsent;              // not empty: never reached the kernel, why
};
struct Removed {                     // answer to out::Remove
    ServiceAddress key;
    std::uint64_t op = 0;            // 0: a removal nobody waits for
    ServiceAddress addr;
    int err = 0;
    std::string text;
    std::string unsent;
};
struct ProbeAnswered {               // another host claims the probed address
    ServiceAddress key;
    std::uint64_t op = 0;
    std::string mac;
};
struct ProbeSkipped {                // out::ProbeStart could not probe (logged)
    ServiceAddress key;
    std::uint64_t op = 0;
};
struct HookDone {
    ServiceAddress key;
    std::uint64_t op = 0;
    bool ok = true;
    std::string detail;              // why it failed
};
struct Tick {};                      // a Wake time came
struct Continue {};                  // asked for by out::Continue
struct AcquireBatch {                // acquires that arrived together: one step, one probe deadline
    std::vector<Acquire> list;
};
struct AddedBatch {                  // answers read together: handled as one step
    std::vector<Added> list;
};
struct ProbesSent {                  // the out::ProbeStart of these went out on the wire now
    struct Item {
        ServiceAddress key;
        std::uint64_t op = 0;
    };
    std::vector<Item> items;
};
}  // namespace in

using Input = std::variant<in::Acquire, in::Release, in::Refresh, in::KernelEvents, in::Added, in::Removed,
                           in::ProbeAnswered, in::ProbeSkipped, in::HookDone, in::Tick, in::Continue,
                           in::AcquireBatch, in::AddedBatch, in::ProbesSent>;

namespace out {
struct Add {                         // RTM_NEWADDR; answer with in::Added
    ServiceAddress key;
    std::uint64_t op = 0;
    ServiceAddress addr;             // with the prefix to put on the interface
    int ifindex = 0;
    bool replace = false;            // else exclusive: fails if it is there
    std::uint32_t lifetime = 0;      // s
    // IPv6 without DAD (IFA_F_NODAD): the acquire was asked without a
    // probe (a handover, whose old holder still answers and would fail
    // DAD; a confirmed fence); arp_probe_ms=0 keeps DAD.
    bool nodad = false;
};
struct Remove {                      // RTM_DELADDR; answer with in::Removed
    ServiceAddress key;
    std::uint64_t op = 0;
    ServiceAddress addr;
    int ifindex = 0;
};
struct Refresh {                     // RTM_NEWADDR|NLM_F_REPLACE; failures are only logged
    struct Item {
        ServiceAddress name;         // as the owner named it
        ServiceAddress addr;
        int ifindex = 0;
    };
    std::vector<Item> items;
    std::uint32_t lifetime = 0;
};
// Answer with in::ProbesSent when it went out (its window counts from then),
// in::ProbeSkipped when it cannot, in::ProbeAnswered when a host claims it.
struct ProbeStart {
    ServiceAddress key;
    std::uint64_t op = 0;
    int ifindex = 0;
    std::string nic;
    LinkInfo link;
};
struct ProbeStop {
    ServiceAddress key;
};
struct Announce {                    // one gratuitous ARP or unsolicited NA
    ServiceAddress addr;
    int ifindex = 0;
    std::string nic;
    LinkInfo link;
};
struct RunHook {                     // "HOOK acquire|release ADDR/P NIC"; answer with in::HookDone
    ServiceAddress key;
    std::uint64_t op = 0;
    bool acquire = true;
    ServiceAddress addr;
    std::string nic;
    std::string command;             // SequencerOptions::hook_command when the operation began
    double timeout = 30;             // s
};
struct StopHook {                    // kill the hook running for key, if any
    ServiceAddress key;
};
struct Done {
    ServiceAddress addr;
    bool acquire = true;
    bool ok = true;
    std::string detail;
};
struct Lost {
    ServiceAddress addr;
    std::string why;
};
struct Fixed {
    ServiceAddress addr;
    bool present = true;
};
struct Log {
    LogLevel level = LogLevel::Info;
    std::string text;
};
struct Step {                        // a milestone of an acquire (AddressBackend::Callbacks::step)
    ServiceAddress addr;             // as the owner named it
    AcquireStep step = AcquireStep::ProbeSent;
};
struct Continue {};                  // feed in::Continue once these effects are applied
struct Wake {                        // feed in::Tick at `at` (replaces any earlier Wake);
    double at = 0;                   // a step without Wake needs no Tick
};
}  // namespace out

using Effect = std::variant<out::Add, out::Remove, out::Refresh, out::ProbeStart, out::ProbeStop, out::Announce,
                            out::RunHook, out::StopHook, out::Done, out::Lost, out::Fixed, out::Log, out::Continue,
                            out::Wake, out::Step>;
using Effects = std::vector<Effect>;

class AddressSequencer {
public:
    AddressSequencer(SequencerOptions opts, KernelPort& kernel);
    ~AddressSequencer();

    Effects step(double now, const Input& input);

    // A reload: arp_probe_ms, announce_interval and the hook apply to
    // operations that start from now on; the nic stays.
    void reconfigure(SequencerOptions opts);

    // AddressBackend::permanent(): which of group are permanent now; watches
    // group from now on (replacing the earlier one) for Fixed changes.
    std::vector<ServiceAddress> watch(const std::vector<ServiceAddress>& group);
    // The interface an operation put (or is putting) a on, or "".
    std::string interface_of(const ServiceAddress& a) const;

private:
    enum class Phase : std::uint8_t { Idle, Probe, Plumb, Dad, HookAcquire, Held, HookRelease, Unplumb };
    struct QueuedOp {
        bool acquire = true;
        ServiceAddress addr;
        bool probe = false;
        double lifetime = 0;
    };
    struct Entry;
    using Options = std::shared_ptr<const SequencerOptions>;
    // Deadline -> the entries due then (keys compare by IP, like entries_).
    using Deadlines = std::map<double, std::set<ServiceAddress>>;

    static bool acquiring(Phase p);
    void log(LogLevel level, const std::string& text);
    void done(const ServiceAddress& a, bool acquire, bool ok, const std::string& detail);
    const AddressTable& look(Entry* e);
    Entry& entry_for(const ServiceAddress& a);
    Entry* find_op(const ServiceAddress& key, std::uint64_t op);
    Entry* entry_on(const AddrRecord& r);
    bool busy(const Entry& e) const;

    void on_acquire(const in::Acquire& r);
    void on_release(const in::Release& r);
    void on_refresh(const in::Refresh& r);
    void on_kernel_events(const in::KernelEvents& r);
    void on_new_address(const AddrRecord& r);
    void on_del_address(const AddrRecord& r, std::uint32_t portid);
    void resync();
    void check_fixed(const ServiceAddress& a);
    void mark_fixed(const ServiceAddress& a);
    void on_tick();
    void on_continue();

    void stop_activity(Entry& e);
    void next_op(Entry& e);
    void finish_acquire(Entry& e, bool ok, const std::string& detail);
    void finish_release(Entry& e, bool ok, const std::string& detail);
    void declare_lost(Entry& e, const std::string& why);
    void finish_fixed(Entry& e, bool acquire);
    void relinquish(Entry& e);
    void abandon_acquire(Entry& e, const std::string& why);
    bool safe_to_delete(const ServiceAddress& victim, int ifindex, const std::string& nic, std::string* why);
    bool promote(const std::string& nic);
    LinkInfo link_of(const std::string& nic);
    void unplumb_quietly(Entry& e);
    void fail_and_unplumb(Entry& e, const std::string& why);
    bool resolve_interface(Entry& e, std::string* why);

    void start_acquire(Entry& e, const ServiceAddress& a, bool probe, double lifetime);
    void start_probe(Entry& e);
    void on_probes_sent(const in::ProbesSent& r);
    void probe_over(Entry& e);
    void plumb(Entry& e);
    void on_added(const in::Added& r);
    void after_plumb(Entry& e);
    void announce_and_finish(Entry& e);
    void start_announcements(Entry& e);
    void announce_once(Entry& e);
    void announce_due(Entry& e);
    void run_hook(Entry& e, bool acquire);
    void on_hook_done(const in::HookDone& r);
    void start_release(Entry& e, const ServiceAddress& a);
    void unplumb_for_release(Entry& e);
    void on_removed(const in::Removed& r);
    std::optional<double> next_wake() const;
    void set_timer(Entry& e, std::optional<double> at);
    void set_announce(Entry& e, std::optional<double> at);
    void report(const Entry& e, AcquireStep s);

    Options opts_;
    KernelPort& kernel_;
    std::uint64_t next_op_ = 0;
    std::map<ServiceAddress, std::unique_ptr<Entry>> entries_;
    std::set<ServiceAddress> resume_;   // entries whose queued operation starts at Continue
    std::set<ServiceAddress> watched_;  // the group given to watch()
    std::set<ServiceAddress> fixed_;    // reported permanent-present (by IP, as the owner named them)
    Deadlines timers_;                  // Entry::timer_at of every entry
    Deadlines announces_;               // Entry::announce_at of every entry
    // What the kernel said in the step under way, per interface.
    std::map<std::string, bool> step_promoted_;
    std::map<std::string, LinkInfo> step_links_;
    std::map<std::string, int> step_ifindex_;
    double now_ = 0;                    // of the step under way
    Effects* fx_ = nullptr;             // effects of the step under way
};

}  // namespace rais::kernel
