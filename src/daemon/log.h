// Log: raisd's logging through libqb (qb_log), to syslog always, to stderr
// in the foreground, and to a file when asked. Lines carry the group name so
// several groups on one host stay apart in the journal.
//
// The log file's directory (/var/log/pacemaker) is writable by hacluster, so
// the file is never opened by name through libqb (fopen follows symlinks):
// log_open_file opens it with O_NOFOLLOW|O_APPEND|O_CLOEXEC and accepts only
// a regular file with one link, owned by raisd's user (root); a symlink, a
// hard link to another file, a FIFO or a file someone else planted there is
// refused with a message naming the path. Lines are then written to that
// descriptor.
#pragma once

#include "core/log_level.h"
#include <optional>
#include <string>

namespace rais {

// Opens (creating it 0640 if needed) the log file as described above and
// keeps it for log_setup. Returns why it was refused. Call it before
// detaching, so the refusal reaches whoever started raisd.
std::optional<std::string> log_open_file(const std::string& path);

// Opens `file` with log_open_file unless that was done already; a refusal is
// logged to syslog (and stderr) and the file is not used.
void log_setup(const std::string& group, bool to_stderr, const std::string& file, bool debug);
void log_text(LogLevel level, const std::string& text);
void log_teardown();

}  // namespace rais
