/*
 * malloc-release: hands the memory glibc's malloc keeps after free() back to the OS.
 *
 * Why: onnxruntime allocates a session's graph, weights and kernel buffers with malloc on the
 * thread that creates and runs it. When the session is released, that memory is free again
 * inside malloc but stays resident: the freed chunks sit between chunks still in use, so
 * malloc's own trimming (only the top of the heap) cannot return them. Over load/unload
 * cycles the process grows by that retained memory (measured: bench/load-cycles.mjs).
 * malloc_trim(0) returns every whole free page of every arena (madvise), whatever is around.
 *
 * Under jemalloc (preloaded by scripts/gpu-agent.sh, the default launch) glibc's malloc_trim
 * has nothing to do: jemalloc keeps freed pages as "dirty" extents and returns them on its own
 * decay clock (10 s by default). There the release is mallctl("arena.<ALL>.purge"), which
 * returns every unused dirty and muzzy page of every arena now. mallctl is looked up with
 * dlsym(RTLD_DEFAULT) at load: present only when jemalloc is the process's malloc, so the addon
 * has no link-time dependency on it and works the same without it.
 *
 * The exports (an N-API module, so one binary works with every Node version):
 *   allocator -> "jemalloc" (mallctl found) or "glibc" (malloc_trim) or "other"
 *   version   -> jemalloc's version string; glibc's (gnu_get_libc_version) otherwise
 *   trim()    -> true when the release ran and returned memory (glibc) / succeeded (jemalloc)
 *   info()    -> glibc: { arena, inUse, free, mmapped } bytes (mallinfo2), all arenas together;
 *                jemalloc: { inUse: stats.allocated, free: stats.resident - stats.allocated,
 *                active, resident, mapped, retained } bytes (after an epoch refresh)
 * On a C library without malloc_trim (musl) and without jemalloc, `supported` is false and
 * trim() is a no-op.
 *
 * The few N-API declarations are written here (Node-API is a stable C ABI) so that a C
 * compiler is all it needs: no Node headers, no node-gyp. Built by scripts/build-malloc-release.mjs.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <dlfcn.h>
#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#endif
#if defined(__GLIBC__)
#include <gnu/libc-version.h>
#endif

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status;
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);
extern napi_status napi_create_function(napi_env env, const char *utf8name, size_t length, napi_callback cb, void *data, napi_value *result);
extern napi_status napi_set_named_property(napi_env env, napi_value object, const char *utf8name, napi_value value);
extern napi_status napi_get_boolean(napi_env env, bool value, napi_value *result);
extern napi_status napi_create_double(napi_env env, double value, napi_value *result);
extern napi_status napi_create_object(napi_env env, napi_value *result);
extern napi_status napi_create_string_utf8(napi_env env, const char *str, size_t length, napi_value *result);

/* jemalloc's mallctl, when jemalloc is the process's malloc (resolved at module load). */
typedef int (*mallctl_fn)(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
static mallctl_fn je_mallctl;
/* MALLCTL_ARENAS_ALL in jemalloc 5 is 4096: "arena.4096.purge" purges every arena. */
#define PURGE_ALL "arena.4096.purge"

static bool je_size(const char *name, double *out) {
  size_t v = 0, len = sizeof v;
  if (je_mallctl(name, &v, &len, NULL, 0) != 0) return false;
  *out = (double)v;
  return true;
}

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#define HAVE_MALLINFO2 1
#endif
#if defined(__GLIBC__)
#define HAVE_MALLOC_TRIM 1
#endif

static void set_number(napi_env env, napi_value obj, const char *name, double v) {
  napi_value n;
  napi_create_double(env, v, &n);
  napi_set_named_property(env, obj, name, n);
}

static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  if (je_mallctl) {
    napi_get_boolean(env, je_mallctl(PURGE_ALL, NULL, NULL, NULL, 0) == 0, &out);
    return out;
  }
#ifdef HAVE_MALLOC_TRIM
  napi_get_boolean(env, malloc_trim(0) != 0, &out);
#else
  napi_get_boolean(env, false, &out);
#endif
  return out;
}

static napi_value info(napi_env env, napi_callback_info cbinfo) {
  (void)cbinfo;
  napi_value obj;
  napi_create_object(env, &obj);
  if (je_mallctl) {
    /* Statistics are a snapshot taken at the last "epoch" write: refresh it first. */
    uint64_t epoch = 1;
    size_t len = sizeof epoch;
    je_mallctl("epoch", &epoch, &len, &epoch, len);
    double allocated, active, resident, mapped, retained;
    if (je_size("stats.allocated", &allocated)) {
      set_number(env, obj, "inUse", allocated);
      if (je_size("stats.resident", &resident)) {
        set_number(env, obj, "resident", resident);
        set_number(env, obj, "free", resident > allocated ? resident - allocated : 0);
      }
      if (je_size("stats.active", &active)) set_number(env, obj, "active", active);
      if (je_size("stats.mapped", &mapped)) set_number(env, obj, "mapped", mapped);
      if (je_size("stats.retained", &retained)) set_number(env, obj, "retained", retained);
    }
    return obj;
  }
#ifdef HAVE_MALLINFO2
  struct mallinfo2 m = mallinfo2();
  set_number(env, obj, "arena", (double)m.arena);
  set_number(env, obj, "inUse", (double)m.uordblks);
  set_number(env, obj, "free", (double)m.fordblks);
  set_number(env, obj, "mmapped", (double)m.hblkhd);
#endif
  return obj;
}

static void set_string(napi_env env, napi_value obj, const char *name, const char *v) {
  napi_value s;
  napi_create_string_utf8(env, v, strlen(v), &s);
  napi_set_named_property(env, obj, name, s);
}

napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  napi_value fn, flag;
  je_mallctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
  const char *version = "";
  if (je_mallctl) {
    const char *v = NULL;
    size_t len = sizeof v;
    if (je_mallctl("version", &v, &len, NULL, 0) == 0 && v) version = v;
    set_string(env, exports, "allocator", "jemalloc");
  } else {
#ifdef HAVE_MALLOC_TRIM
    set_string(env, exports, "allocator", "glibc");
    version = gnu_get_libc_version();
#else
    set_string(env, exports, "allocator", "other");
#endif
  }
  set_string(env, exports, "version", version);
  napi_create_function(env, "trim", (size_t)-1, trim, NULL, &fn);
  napi_set_named_property(env, exports, "trim", fn);
  napi_create_function(env, "info", (size_t)-1, info, NULL, &fn);
  napi_set_named_property(env, exports, "info", fn);
#ifdef HAVE_MALLOC_TRIM
  napi_get_boolean(env, true, &flag);
#else
  napi_get_boolean(env, je_mallctl != NULL, &flag);
#endif
  napi_set_named_property(env, exports, "supported", flag);
  return exports;
}
