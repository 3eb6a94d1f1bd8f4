#include "core/member_io.h"

namespace rais {

const char* to_string(ChangeReason r) {
    switch (r) {
    case ChangeReason::Join: return "join";
    case ChangeReason::Leave: return "leave";
    case ChangeReason::NodeDown: return "node down";
    case ChangeReason::NodeUp: return "node up";
    case ChangeReason::ProcDown: return "process down";
    }
    return "?";
}

const char* to_string(EventKind k) {
    switch (k) {
    case EventKind::Acquire: return "acquire";
    case EventKind::Release: return "release";
    case EventKind::AcquireFailed: return "acquire_failed";
    case EventKind::ReleaseFailed: return "release_failed";
    case EventKind::TestFailed: return "test_failed";
    case EventKind::TestRecovered: return "test_recovered";
    case EventKind::CannotAssign: return "cannot_assign";
    case EventKind::Orphaned: return "orphaned";
    case EventKind::Expired: return "expired";
    case EventKind::Leader: return "leader";
    case EventKind::DnsUpdate: return "dns_update";
    case EventKind::DnsFailed: return "dns_failed";
    case EventKind::Failover: return "failover";
    }
    return "?";
}

}  // namespace rais
