// LogLevel: the one severity scale of raisd's log lines. The core's effects
// (out::Log), every adapter's log callback and qb_log's priorities (in
// daemon/log.cc) speak it, so no module keeps numbers of its own.
#pragma once

#include <cstdint>

namespace rais {

enum class LogLevel : std::uint8_t { Debug, Info, Notice, Warning, Error };

}  // namespace rais
