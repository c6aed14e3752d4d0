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
 * The exports (an N-API module, so one binary works with every Node version):
 *   trim()  -> true when memory was returned, false when there was none to return
 *   info()  -> { arena, inUse, free, mmapped } bytes (mallinfo2), all arenas together
 * On a C library without malloc_trim (musl), `supported` is false and both are no-ops.
 *
 * The few N-API declarations are written here (Node-API is a stable C ABI) so that a C
 * compiler is all it needs: no Node headers, no node-gyp. Built by scripts/build-malloc-release.mjs.
 */
#include <stddef.h>
#include <stdbool.h>
#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
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
#ifdef HAVE_MALLINFO2
  struct mallinfo2 m = mallinfo2();
  set_number(env, obj, "arena", (double)m.arena);
  set_number(env, obj, "inUse", (double)m.uordblks);
  set_number(env, obj, "free", (double)m.fordblks);
  set_number(env, obj, "mmapped", (double)m.hblkhd);
#endif
  return obj;
}

napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  napi_value fn, flag;
  napi_create_function(env, "trim", (size_t)-1, trim, NULL, &fn);
  napi_set_named_property(env, exports, "trim", fn);
  napi_create_function(env, "info", (size_t)-1, info, NULL, &fn);
  napi_set_named_property(env, exports, "info", fn);
#ifdef HAVE_MALLOC_TRIM
  napi_get_boolean(env, true, &flag);
#else
  napi_get_boolean(env, false, &flag);
#endif
  napi_set_named_property(env, exports, "supported", flag);
  return exports;
}
