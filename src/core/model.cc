#include "core/model.h"

namespace rais {

const char* to_string(AddressState s) {
    switch (s) {
    case AddressState::Acquiring: return "acquiring";
    case AddressState::Releasing: return "releasing";
    case AddressState::Online: break;
    }
    return "online";
}

const char* to_string(Action a) {
    switch (a) {
    case Action::Release: return "release";
    case Action::CannotAssign: return "cannot_assign";
    case Action::Expire: return "expire";
    case Action::Acquire: break;
    }
    return "acquire";
}

}  // namespace rais
