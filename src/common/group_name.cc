#include "common/group_name.h"

namespace rais {

const char* const kGroupNameRule = "letters, digits, '-', '_' and '.', at most 64, not starting with '.'";

bool valid_group_name(std::string_view name) {
    if (name.empty() || name.size() > 64 || name.front() == '.') return false;
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                  c == '.';
        if (!ok) return false;
    }
    return true;
}

}  // namespace rais
