/*
 * The Metal shim (C ABI in bn_metal.h). Objective-C through the runtime alone: the frameworks and
 * libobjc are opened with dlopen and every message goes through objc_msgSend cast to the method's
 * C type, so this file needs no SDK headers and cross-compiles from Linux to a Mach-O dylib
 * (build.zig: `metal-shim`). It runs only on macOS.
 *
 * Ownership follows Cocoa's rules by hand (no ARC): objects from new/alloc/Create are released
 * here; autoreleased ones live inside an autorelease pool pushed by every entry point.
 */
#include "bn_metal.h"
#include "ranges.h"

#include <dlfcn.h>
#include <objc/message.h>
#include <objc/runtime.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned long NSUInt; /* NSUInteger on both 64-bit macOS targets */

/* ---- failures ----------------------------------------------------------------------------- */

static __thread char message[512];

static int32_t fail(int32_t status, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  return status;
}

const char* bn_mtl_message(void) { return message; }

int32_t bn_mtl_abi(void) { return BN_MTL_ABI; }

/* ---- the Objective-C runtime, found at run time ---------------------------------------------- */

static Class (*get_class)(const char*);
static SEL (*sel)(const char*);
static void* msg_send; /* objc_msgSend: cast to each method's type through MSG */
static void* (*pool_push)(void);
static void (*pool_pop)(void*);

/* objc_msgSend as a function of the given result and argument types (after self and _cmd). */
#define MSG(ret, ...) ((ret(*)(id, SEL, ##__VA_ARGS__))msg_send)

static id cls(const char* name) { return (id)get_class(name); }
static void release(id o) {
  if (o) MSG(void)(o, sel("release"));
}

/* UTF-8 text of an NSString (valid inside the current autorelease pool). */
static const char* utf8(id s) { return s ? MSG(const char*)(s, sel("UTF8String")) : ""; }

/* ---- the device ----------------------------------------------------------------------------- */

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int32_t init_status = BN_MTL_UNAVAILABLE;
static char init_message[512];
static bn_mtl_info dev_info;
static id device;        /* MTLDevice (retained) */
static id queue;         /* MTLCommandQueue (retained) */
static BOOL (*mps_supports)(id);

static void init_once(void) {
  void* objc = dlopen("/usr/lib/libobjc.A.dylib", RTLD_NOW | RTLD_GLOBAL);
  if (!objc) {
    snprintf(init_message, sizeof init_message, "libobjc could not be opened: %s", dlerror());
    return;
  }
  get_class = (Class(*)(const char*))dlsym(objc, "objc_getClass");
  sel = (SEL(*)(const char*))dlsym(objc, "sel_registerName");
  msg_send = dlsym(objc, "objc_msgSend");
  pool_push = (void* (*)(void))dlsym(objc, "objc_autoreleasePoolPush");
  pool_pop = (void (*)(void*))dlsym(objc, "objc_autoreleasePoolPop");
  if (!get_class || !sel || !msg_send || !pool_push || !pool_pop) {
    snprintf(init_message, sizeof init_message, "libobjc lacks the runtime functions the shim calls");
    return;
  }
  void* metal = dlopen("/System/Library/Frameworks/Metal.framework/Metal", RTLD_NOW | RTLD_GLOBAL);
  if (!metal) {
    snprintf(init_message, sizeof init_message, "Metal.framework could not be opened: %s", dlerror());
    return;
  }
  void* mps = dlopen("/System/Library/Frameworks/MetalPerformanceShaders.framework/MetalPerformanceShaders", RTLD_NOW | RTLD_GLOBAL);
  if (mps) mps_supports = (BOOL(*)(id))dlsym(mps, "MPSSupportsMTLDevice");
  id (*create)(void) = (id(*)(void))dlsym(metal, "MTLCreateSystemDefaultDevice");
  if (!create) {
    snprintf(init_message, sizeof init_message, "Metal.framework lacks MTLCreateSystemDefaultDevice");
    return;
  }
  void* pool = pool_push();
  device = create(); /* +1 (the Create rule) */
  if (!device) {
    pool_pop(pool);
    snprintf(init_message, sizeof init_message, "MTLCreateSystemDefaultDevice returned no device (no Metal GPU, or a session without GPU access)");
    return;
  }
  queue = MSG(id)(device, sel("newCommandQueue"));
  if (!queue) {
    pool_pop(pool);
    snprintf(init_message, sizeof init_message, "the Metal device gave no command queue");
    return;
  }
  snprintf(dev_info.name, sizeof dev_info.name, "%s", utf8(MSG(id)(device, sel("name"))));
  dev_info.recommended_working_set = MSG(uint64_t)(device, sel("recommendedMaxWorkingSetSize"));
  dev_info.max_buffer = MSG(NSUInt)(device, sel("maxBufferLength"));
  dev_info.unified = MSG(BOOL)(device, sel("hasUnifiedMemory")) ? 1 : 0;
  pool_pop(pool);
  init_status = BN_MTL_OK;
}

int32_t bn_mtl_init(bn_mtl_info* info) {
  pthread_once(&once, init_once);
  if (init_status != BN_MTL_OK) return fail(init_status, "%s", init_message);
  if (info) *info = dev_info;
  return BN_MTL_OK;
}

/* ---- buffers: address ranges back to MTLBuffers --------------------------------------------- */

static pthread_mutex_t ranges_lock = PTHREAD_MUTEX_INITIALIZER;
static bn_range_table ranges; /* owner: the MTLBuffer */

/* The buffer and offset of address p (ranges_lock taken here). */
static id buffer_of(const void* p, NSUInt* offset) {
  pthread_mutex_lock(&ranges_lock);
  const long i = bn_range_find(&ranges, (uintptr_t)p);
  id b = i < 0 ? nil : (id)ranges.at[i].owner;
  if (i >= 0) *offset = (NSUInt)((uintptr_t)p - ranges.at[i].lo);
  pthread_mutex_unlock(&ranges_lock);
  return b;
}

void* bn_mtl_alloc(uint64_t bytes, uint64_t alignment) {
  if (bn_mtl_init(NULL) != BN_MTL_OK) return NULL;
  uint64_t total = 0;
  char why[160];
  const int32_t plan = bn_alloc_plan(bytes, &alignment, dev_info.max_buffer, &total, why, sizeof why);
  if (plan != BN_MTL_OK) {
    fail(plan, "%s", why);
    return NULL;
  }
  void* pool = pool_push();
  /* MTLResourceStorageModeShared | MTLResourceCPUCacheModeDefaultCache = 0 */
  id buf = MSG(id, NSUInt, NSUInt)(device, sel("newBufferWithLength:options:"), (NSUInt)total, (NSUInt)0);
  const uintptr_t base = buf ? (uintptr_t)MSG(void*)(buf, sel("contents")) : 0;
  pool_pop(pool);
  if (!buf || !base) {
    release(buf);
    fail(BN_MTL_OUT_OF_MEMORY, "Metal refused a shared buffer of %llu bytes", (unsigned long long)total);
    return NULL;
  }
  pthread_mutex_lock(&ranges_lock);
  const int added = bn_range_insert(&ranges, base, base + (uintptr_t)total, (void*)buf);
  pthread_mutex_unlock(&ranges_lock);
  if (added != 0) {
    release(buf);
    fail(BN_MTL_OUT_OF_MEMORY, "no host memory for the buffer table");
    return NULL;
  }
  return bn_align_up(base, alignment);
}

int32_t bn_mtl_free(void* p) {
  pthread_mutex_lock(&ranges_lock);
  const long i = bn_range_find(&ranges, (uintptr_t)p);
  if (i < 0) {
    pthread_mutex_unlock(&ranges_lock);
    return fail(BN_MTL_INVALID, "%p is not in a live Metal buffer", p);
  }
  id buf = (id)bn_range_remove(&ranges, (size_t)i);
  pthread_mutex_unlock(&ranges_lock);
  release(buf); /* queued command buffers keep their own references */
  return BN_MTL_OK;
}

/* ---- queued work ----------------------------------------------------------------------------- */

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static id pending; /* the command buffer being filled (retained), or nil */

/* The command buffer to encode into (queue_lock held, inside an autorelease pool). */
static id command_buffer(void) {
  if (!pending) {
    pending = MSG(id)(queue, sel("commandBuffer"));
    if (pending) MSG(id)(pending, sel("retain"));
  }
  return pending;
}

int32_t bn_mtl_synchronize(void) {
  if (bn_mtl_init(NULL) != BN_MTL_OK) return init_status;
  pthread_mutex_lock(&queue_lock);
  int32_t st = BN_MTL_OK;
  if (pending) {
    void* pool = pool_push();
    MSG(void)(pending, sel("commit"));
    MSG(void)(pending, sel("waitUntilCompleted"));
    const NSUInt status = MSG(NSUInt)(pending, sel("status"));
    if (status == 5) { /* MTLCommandBufferStatusError */
      id err = MSG(id)(pending, sel("error"));
      st = fail(BN_MTL_FAILED, "a Metal command buffer failed: %s", utf8(err ? MSG(id)(err, sel("localizedDescription")) : nil));
    }
    pool_pop(pool);
    release(pending);
    pending = nil;
  }
  pthread_mutex_unlock(&queue_lock);
  return st;
}

/* ---- the engine's kernels: a library compiled from source, pipelines by name, dispatches ------ */

static pthread_mutex_t library_lock = PTHREAD_MUTEX_INITIALIZER;
static id library;                        /* MTLLibrary (retained), once compiled */
static int32_t library_status = -1;       /* -1: not compiled yet */
static char library_message[2048];

typedef struct {
  char name[64];
  id state; /* MTLComputePipelineState (retained) */
} Pipeline;
static Pipeline pipes[64];
static int n_pipes;

int32_t bn_mtl_library(const char* source, uint64_t length) {
  if (bn_mtl_init(NULL) != BN_MTL_OK) return init_status;
  pthread_mutex_lock(&library_lock);
  if (library_status < 0) {
    void* pool = pool_push();
    /* NSUTF8StringEncoding = 4 */
    id text = MSG(id)(cls("NSString"), sel("alloc"));
    text = MSG(id, const void*, NSUInt, NSUInt)(text, sel("initWithBytes:length:encoding:"), source, (NSUInt)length, (NSUInt)4);
    id opts = MSG(id)(cls("MTLCompileOptions"), sel("new"));
    /* IEEE results, as the CPU's: no fast math (fastMathEnabled, deprecated for mathMode on
     * macOS 15, is still honoured). */
    if (opts) MSG(void, BOOL)(opts, sel("setFastMathEnabled:"), NO);
    id err = nil;
    library = text ? MSG(id, id, id, id*)(device, sel("newLibraryWithSource:options:error:"), text, opts, &err) : nil;
    if (library) library_status = BN_MTL_OK;
    else {
      library_status = BN_MTL_FAILED;
      snprintf(library_message, sizeof library_message, "the Metal compiler refused metal/kernels.metal: %s", text ? utf8(err ? MSG(id)(err, sel("localizedDescription")) : nil) : "the source is not UTF-8");
    }
    release(opts);
    release(text);
    pool_pop(pool);
  }
  const int32_t st = library_status;
  pthread_mutex_unlock(&library_lock);
  return st == BN_MTL_OK ? st : fail(st, "%s", library_message);
}

void* bn_mtl_pipeline(const char* name, uint32_t* max_threads, uint32_t* simd_width) {
  if (bn_mtl_init(NULL) != BN_MTL_OK) return NULL;
  pthread_mutex_lock(&library_lock);
  id state = nil;
  for (int i = 0; i < n_pipes; i++) {
    if (strcmp(pipes[i].name, name) == 0) state = pipes[i].state;
  }
  if (!state && library_status != BN_MTL_OK) fail(BN_MTL_INVALID, "pipeline %s: no library (bn_mtl_library first)", name);
  else if (!state && (strlen(name) >= sizeof pipes[0].name || n_pipes == (int)(sizeof pipes / sizeof pipes[0]))) fail(BN_MTL_INVALID, "pipeline %s: too many pipelines or too long a name", name);
  else if (!state) {
    void* pool = pool_push();
    id fname = MSG(id, const char*)(cls("NSString"), sel("stringWithUTF8String:"), name);
    id fn = MSG(id, id)(library, sel("newFunctionWithName:"), fname);
    if (!fn) fail(BN_MTL_INVALID, "no kernel named %s in metal/kernels.metal", name);
    else {
      id err = nil;
      state = MSG(id, id, id*)(device, sel("newComputePipelineStateWithFunction:error:"), fn, &err);
      if (!state) fail(BN_MTL_FAILED, "pipeline %s: %s", name, utf8(err ? MSG(id)(err, sel("localizedDescription")) : nil));
      else {
        snprintf(pipes[n_pipes].name, sizeof pipes[0].name, "%s", name);
        pipes[n_pipes++].state = state;
      }
      release(fn);
    }
    pool_pop(pool);
  }
  if (state) {
    *max_threads = (uint32_t)MSG(NSUInt)(state, sel("maxTotalThreadsPerThreadgroup"));
    *simd_width = (uint32_t)MSG(NSUInt)(state, sel("threadExecutionWidth"));
  }
  pthread_mutex_unlock(&library_lock);
  return (void*)state;
}

typedef struct {
  NSUInt width, height, depth;
} MTLSizeC; /* MTLSize */

int32_t bn_mtl_dispatch(void* pipeline, uint32_t groups_x, uint32_t groups_y, uint32_t threads, const bn_mtl_arg* args, uint32_t nargs) {
  if (bn_mtl_init(NULL) != BN_MTL_OK) return init_status;
  if (!pipeline || groups_x == 0 || groups_y == 0 || threads == 0 || nargs > 31) return fail(BN_MTL_INVALID, "dispatch: no pipeline, an empty grid or more than 31 arguments");
  int32_t st = BN_MTL_OK;
  pthread_mutex_lock(&queue_lock);
  void* pool = pool_push();
  id cmd = command_buffer();
  id enc = cmd ? MSG(id)(cmd, sel("computeCommandEncoder")) : nil;
  if (!enc) st = fail(BN_MTL_FAILED, "dispatch: Metal gave no %s", cmd ? "compute encoder" : "command buffer");
  else {
    MSG(void, id)(enc, sel("setComputePipelineState:"), (id)pipeline);
    for (uint32_t i = 0; i < nargs && st == BN_MTL_OK; i++) {
      if (args[i].bytes > 0) {
        MSG(void, const void*, NSUInt, NSUInt)(enc, sel("setBytes:length:atIndex:"), args[i].ptr, (NSUInt)args[i].bytes, (NSUInt)i);
        continue;
      }
      NSUInt offset = 0;
      id buf = buffer_of(args[i].ptr, &offset);
      if (!buf) st = fail(BN_MTL_INVALID, "dispatch: buffer %u (%p) is not in a live Metal buffer", i, args[i].ptr);
      else MSG(void, id, NSUInt, NSUInt)(enc, sel("setBuffer:offset:atIndex:"), buf, offset, (NSUInt)i);
    }
    /* An encoder must be ended even when nothing is dispatched. */
    if (st == BN_MTL_OK) {
      const MTLSizeC grid = {groups_x, groups_y, 1}, group = {threads, 1, 1};
      MSG(void, MTLSizeC, MTLSizeC)(enc, sel("dispatchThreadgroups:threadsPerThreadgroup:"), grid, group);
    }
    MSG(void)(enc, sel("endEncoding"));
  }
  pool_pop(pool);
  pthread_mutex_unlock(&queue_lock);
  return st;
}

/* ---- MPS matrix product ---------------------------------------------------------------------- */

static id matrix(const void* p, NSUInt rows, NSUInt cols, NSUInt row_bytes, uint32_t type, const char* which, int32_t* st) {
  NSUInt offset = 0;
  id buf = buffer_of(p, &offset);
  if (!buf) {
    *st = fail(BN_MTL_INVALID, "gemm: %s (%p) is not in a live Metal buffer", which, p);
    return nil;
  }
  id desc = MSG(id, NSUInt, NSUInt, NSUInt, uint32_t)(cls("MPSMatrixDescriptor"), sel("matrixDescriptorWithRows:columns:rowBytes:dataType:"), rows, cols, row_bytes, type);
  id m = MSG(id)(cls("MPSMatrix"), sel("alloc"));
  m = MSG(id, id, NSUInt, id)(m, sel("initWithBuffer:offset:descriptor:"), buf, offset, desc);
  if (!m) *st = fail(BN_MTL_INVALID, "gemm: MPS refused %s (%lu x %lu, %lu bytes a row, offset %lu)", which, rows, cols, row_bytes, offset);
  return m;
}

int32_t bn_mtl_gemm(uint32_t dtype, uint64_t m, uint64_t n, uint64_t k, const void* a, uint64_t lda, uint32_t trans_a, const void* b, uint64_t ldb, uint32_t trans_b, void* c, uint64_t ldc) {
  if (bn_mtl_init(NULL) != BN_MTL_OK) return init_status;
  if (dtype > 1) return fail(BN_MTL_INVALID, "gemm: dtype code %u (0 float32, 1 float16)", dtype);
  if (m == 0 || n == 0 || k == 0) return BN_MTL_OK; /* the engine zero-fills for k == 0 */
  if (!mps_supports || !get_class("MPSMatrixMultiplication") || !mps_supports(device)) return fail(BN_MTL_UNAVAILABLE, "MetalPerformanceShaders does not support this device");
  const uint32_t type = dtype == 0 ? 0x10000020u : 0x10000010u; /* MPSDataTypeFloat32 / Float16 */
  int32_t st = BN_MTL_OK;
  pthread_mutex_lock(&queue_lock);
  void* pool = pool_push();
  id ma = matrix(a, trans_a ? k : m, trans_a ? m : k, lda, type, "A", &st);
  id mb = st == BN_MTL_OK ? matrix(b, trans_b ? n : k, trans_b ? k : n, ldb, type, "B", &st) : nil;
  id mc = st == BN_MTL_OK ? matrix(c, m, n, ldc, type, "C", &st) : nil;
  if (st == BN_MTL_OK) {
    id mul = MSG(id)(cls("MPSMatrixMultiplication"), sel("alloc"));
    mul = MSG(id, id, BOOL, BOOL, NSUInt, NSUInt, NSUInt, double, double)(mul, sel("initWithDevice:transposeLeft:transposeRight:resultRows:resultColumns:interiorColumns:alpha:beta:"), device, trans_a ? YES : NO, trans_b ? YES : NO, (NSUInt)m, (NSUInt)n, (NSUInt)k, 1.0, 0.0);
    id cmd = command_buffer();
    if (!mul || !cmd) st = fail(BN_MTL_FAILED, "gemm: MPS gave no %s", mul ? "command buffer" : "matrix multiplication kernel");
    else MSG(void, id, id, id, id)(mul, sel("encodeToCommandBuffer:leftMatrix:rightMatrix:resultMatrix:"), cmd, ma, mb, mc);
    release(mul);
  }
  release(ma);
  release(mb);
  release(mc);
  pool_pop(pool);
  pthread_mutex_unlock(&queue_lock);
  return st;
}
