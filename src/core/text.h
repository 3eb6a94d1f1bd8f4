// Text: the one printf-style formatter of a number that logs, reasons and
// traces share, so "3.5 s", "12.0%" and "  5.250" are written one way.
#pragma once

#include <cstdio>
#include <string>

namespace rais {

// Formats one double with a printf format such as "%g", "%.1f%%" or "%8.3f".
inline std::string format_number(const char* format, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, format, v);
    return buf;
}

// A duration in logs and reasons: "3.5 s".
inline std::string secs(double s) { return format_number("%g s", s); }

}  // namespace rais
