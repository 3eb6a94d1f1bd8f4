// What the kernel rooms that run on the GLib loop (netlink, announcer, the
// backend) share: an owned descriptor and sources bound to the context the
// backend was created on. A SourcePtr detaches its source when destroyed, so
// no callback outlives the object that owns the pointer; that is the only
// lifetime rule the rooms rely on.
#pragma once

#include <glib-unix.h>
#include <glib.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>

namespace rais::kernel {

inline std::string errno_text(int err) { return g_strerror(err); }

class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) reset(std::exchange(o.fd_, -1));
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    void reset(int fd = -1) {
        if (fd_ >= 0) close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

struct SourceDeleter {
    void operator()(GSource* s) const {
        g_source_destroy(s);
        g_source_unref(s);
    }
};
using SourcePtr = std::unique_ptr<GSource, SourceDeleter>;

struct ContextDeleter {
    void operator()(GMainContext* c) const { g_main_context_unref(c); }
};
using ContextPtr = std::unique_ptr<GMainContext, ContextDeleter>;

inline SourcePtr attach(GMainContext* ctx, GSource* s, GSourceFunc fn, gpointer data) {
    g_source_set_callback(s, fn, data, nullptr);
    g_source_attach(s, ctx);
    return SourcePtr(s);
}
inline SourcePtr fd_watch(GMainContext* ctx, int fd, GUnixFDSourceFunc fn, gpointer data) {
    return attach(ctx, g_unix_fd_source_new(fd, static_cast<GIOCondition>(G_IO_IN | G_IO_ERR | G_IO_HUP)),
                  G_SOURCE_FUNC(fn), data);
}
inline SourcePtr timeout(GMainContext* ctx, unsigned ms, GSourceFunc fn, gpointer data) {
    return attach(ctx, g_timeout_source_new(ms), fn, data);
}
// Runs at default priority (or the one given), after what is ready now: for
// work that must not run inside the caller's step.
inline SourcePtr idle(GMainContext* ctx, GSourceFunc fn, gpointer data, int priority = G_PRIORITY_DEFAULT) {
    GSource* s = g_idle_source_new();
    g_source_set_priority(s, priority);
    return attach(ctx, s, fn, data);
}

}  // namespace rais::kernel
