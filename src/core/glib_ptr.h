// Owning smart pointers for GLib and json-glib objects, so no handle is ever
// freed by hand (one deleter per type, picked by overload).
#pragma once

#include <glib-object.h>
#include <glib.h>

#include <memory>

namespace rais {

struct GFreeDeleter {
    void operator()(void* p) const { g_free(p); }
};
struct GVariantDeleter {
    void operator()(GVariant* v) const { g_variant_unref(v); }
};
struct GBytesDeleter {
    void operator()(GBytes* b) const { g_bytes_unref(b); }
};
struct GErrorDeleter {
    void operator()(GError* e) const { g_error_free(e); }
};
struct GObjectDeleter {
    void operator()(void* o) const { g_object_unref(o); }
};

using GCharPtr = std::unique_ptr<gchar, GFreeDeleter>;
using GVariantPtr = std::unique_ptr<GVariant, GVariantDeleter>;
using GBytesPtr = std::unique_ptr<GBytes, GBytesDeleter>;
using GErrorPtr = std::unique_ptr<GError, GErrorDeleter>;
template <typename T>
using GObjectPtr = std::unique_ptr<T, GObjectDeleter>;

// Takes ownership of a possibly floating GVariant.
inline GVariantPtr sink(GVariant* v) { return GVariantPtr(g_variant_ref_sink(v)); }

}  // namespace rais
