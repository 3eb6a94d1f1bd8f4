// Log: raisd's logging through libqb (qb_log), to syslog always, to stderr
// in the foreground, and to a file when asked. Lines carry the group name so
// several groups on one host stay apart in the journal.
#pragma once

#include <string>

namespace rais {

enum class LogLevel { Debug, Info, Notice, Warning, Error };

void log_setup(const std::string& group, bool to_stderr, const std::string& file, bool debug);
void log_text(LogLevel level, const std::string& text);
void log_teardown();

}  // namespace rais
