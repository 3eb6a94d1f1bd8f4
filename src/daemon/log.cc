#include "daemon/log.h"

#include <qb/qblog.h>
#include <syslog.h>

namespace rais {

namespace {
std::string g_prefix;
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
    if (!file.empty()) {
        int32_t t = qb_log_file_open(file.c_str());
        if (t >= 0) {
            qb_log_ctl(t, QB_LOG_CONF_ENABLED, QB_TRUE);
            qb_log_filter_ctl(t, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", debug ? LOG_DEBUG : LOG_INFO);
            qb_log_format_set(t, "%T %N[%P] %p: %b");
        }
    }
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

void log_teardown() { qb_log_fini(); }

}  // namespace rais
