#include "daemon/log.h"

#include <fcntl.h>
#include <qb/qblog.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace rais {

namespace {

std::string g_prefix;
int g_fd = -1;             // the log file, from log_open_file
std::string g_path;        // its path
int32_t g_target = -1;     // its libqb target

void write_line(int32_t t, struct qb_log_callsite* cs, struct timespec* ts, const char* msg) {
    if (g_fd < 0) return;
    // qb_log_target_format writes at most the target's max line length,
    // which libqb caps at QB_LOG_ABSOLUTE_MAX_LEN.
    std::vector<char> buf(QB_LOG_ABSOLUTE_MAX_LEN + 2, '\0');
    qb_log_target_format(t, cs, ts, msg, buf.data());
    buf[QB_LOG_ABSOLUTE_MAX_LEN] = '\0';
    std::size_t n = std::strlen(buf.data());
    buf[n++] = '\n';
    // One write per line (O_APPEND): lines of concurrent writers do not interleave.
    while (write(g_fd, buf.data(), n) < 0 && errno == EINTR) {
    }
}

void close_file(int32_t) {
    if (g_fd >= 0) close(g_fd);
    g_fd = -1;
    g_target = -1;
}

}  // namespace

std::optional<std::string> log_open_file(const std::string& path) {
    if (g_fd >= 0 && path == g_path) return std::nullopt;
    auto refuse = [&path](const std::string& why) -> std::optional<std::string> {
        return "log file " + path + ": " + why;
    };
    if (path.empty()) return refuse("empty path");
    // O_NONBLOCK: a FIFO planted there must not block the open; cleared below.
    int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0640);
    if (fd < 0) {
        int err = errno;
        if (err == ELOOP) return refuse("is a symbolic link; refusing to follow it (remove it)");
        if (err == ENXIO) return refuse("is not a regular file (a FIFO or socket); refusing to write to it");
        return refuse(std::string("cannot open it: ") + std::strerror(err));
    }
    struct stat st;
    std::optional<std::string> why;
    if (fstat(fd, &st) != 0) why = refuse(std::string("cannot stat it: ") + std::strerror(errno));
    else if (!S_ISREG(st.st_mode)) why = refuse("is not a regular file; refusing to write to it");
    else if (st.st_uid != geteuid())
        why = refuse("is owned by uid " + std::to_string(st.st_uid) + ", not by uid " + std::to_string(geteuid()) +
                     "; refusing to write to a file someone else planted (remove it)");
    else if (st.st_nlink != 1)
        why = refuse("has " + std::to_string(st.st_nlink) +
                     " links; refusing to write to a hard-linked file (remove it)");
    else if (fcntl(fd, F_SETFL, O_APPEND) != 0)
        why = refuse(std::string("cannot set it to blocking writes: ") + std::strerror(errno));
    if (!why && fd <= STDERR_FILENO) {
        // Started with a standard descriptor closed: daemon() would put
        // /dev/null over this one.
        int high = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
        if (high < 0) why = refuse(std::string("cannot move its descriptor: ") + std::strerror(errno));
        close(fd);
        fd = high;
    }
    if (why) {
        if (fd >= 0) close(fd);
        return why;
    }
    if (g_fd >= 0) close(g_fd);
    g_fd = fd;
    g_path = path;
    return std::nullopt;
}

void log_setup(const std::string& group, bool to_stderr, const std::string& file, bool debug) {
    g_prefix = "[" + group + "] ";
    qb_log_init("raisd", LOG_DAEMON, debug ? LOG_DEBUG : LOG_INFO);
    qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_TRUE);
    qb_log_filter_ctl(QB_LOG_SYSLOG, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", debug ? LOG_DEBUG : LOG_INFO);
    if (to_stderr) {
        qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_TRUE);
        qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", debug ? LOG_DEBUG : LOG_INFO);
        qb_log_format_set(QB_LOG_STDERR, "%T %N %p: %b");
    }
    if (file.empty()) return;
    if (auto err = log_open_file(file)) {
        log_text(LogLevel::Error, *err);
        return;
    }
    int32_t t = qb_log_custom_open(write_line, close_file, nullptr, nullptr);
    if (t < 0) {
        log_text(LogLevel::Error, "log file " + file + ": " + std::strerror(-t));
        return;
    }
    g_target = t;
    qb_log_ctl(t, QB_LOG_CONF_ENABLED, QB_TRUE);
    qb_log_filter_ctl(t, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", debug ? LOG_DEBUG : LOG_INFO);
    qb_log_format_set(t, "%T %N[%P] %p: %b");
}

void log_text(LogLevel level, const std::string& text) {
    int pri = LOG_INFO;
    switch (level) {
    case LogLevel::Debug: pri = LOG_DEBUG; break;
    case LogLevel::Info: pri = LOG_INFO; break;
    case LogLevel::Notice: pri = LOG_NOTICE; break;
    case LogLevel::Warning: pri = LOG_WARNING; break;
    case LogLevel::Error: pri = LOG_ERR; break;
    }
    qb_log(pri, "%s%s", g_prefix.c_str(), text.c_str());
}

void log_teardown() {
    qb_log_fini();  // closes the custom target (close_file)
    if (g_fd >= 0) close(g_fd);
    g_fd = -1;
}

}  // namespace rais
