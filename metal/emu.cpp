/*
 * A CPU emulator of the Metal shim (the C ABI of bn_metal.h) for Linux, where there is no Metal: the
 * engine opens it as it opens metal/shim.m ($BITNET_METAL_SHIM=.../libbitnet_metal_emu.so), and the
 * whole Metal path (transfers, memory pool, door, kernels, MPS matrix product) runs on the CPU in the
 * tests. Built by `zig build metal-emu` (build.zig) into zig-out/lib/libbitnet_metal_emu.so.
 *
 * The kernels are metal/kernels.metal compiled here as C++ (emu.h is its Metal environment; the
 * file's BN_KERNEL_LIST names every kernel and its parameter record), not the source text the engine
 * hands to bn_mtl_library. Every thread of a threadgroup is a fiber on the thread that synchronizes
 * (threads ≤ 1024, each with its own stack); a fiber runs until it reaches a barrier or a simdgroup
 * function or returns, and the groups of a dispatch run one after another (y outer, x inner), so a
 * `static` array (BN_SHARED) is the group's threadgroup memory. Misuse that would hang a GPU or give
 * it garbage fails the command (BN_MTL_FAILED, naming the kernel and the group): a thread returns
 * while others wait at a threadgroup barrier, or lanes of a simdgroup meet a simdgroup function while
 * others returned, wait at a barrier or call another one. Between two barriers the threads of a
 * group run in increasing order in even phases of even groups and in decreasing order otherwise
 * ($BN_EMU_ORDER: forward, reverse, or alternate, the default), so that a missing barrier shows.
 *
 * As on the GPU, work is queued and runs in order in bn_mtl_synchronize (never earlier); memory freed
 * while work is queued is released after that work ran (a command buffer keeps its buffers).
 *
 * BN_EMU_SOURCE (default "kernels.metal") names the file of kernels compiled in.
 */
#include "emu.h"

#ifndef BN_EMU_SOURCE
#define BN_EMU_SOURCE "kernels.metal"
#endif
#include BN_EMU_SOURCE

#ifndef BN_KERNEL_LIST
#define BN_KERNEL_LIST(X)
#endif

namespace bn_emu {

typedef void (*Run)(const void* params, metal::uchar* const* buffers, metal::uint3 tg, metal::uint3 ngroups, uint32_t lid,
                    uint32_t nthreads, uint32_t lane, uint32_t sg);

// A kernel: bn_mtl_pipeline returns a pointer to its entry.
struct Entry {
  const char* name;
  uint32_t param_bytes;
  Run run;
};

#define BN_EMU_ENTRY(kname, P)                                                                                         \
  {#kname, (uint32_t)sizeof(P),                                                                                        \
   [](const void* params, metal::uchar* const* b, metal::uint3 tg, metal::uint3 ngroups, uint32_t lid, uint32_t nthreads, \
      uint32_t lane, uint32_t sg) { kname(*(const P*)params, b[0], b[1], b[2], b[3], b[4], tg, ngroups, lid, nthreads, lane, sg); }},
static const Entry registry[] = {BN_KERNEL_LIST(BN_EMU_ENTRY){nullptr, 0, nullptr}};
#undef BN_EMU_ENTRY

}  // namespace bn_emu

// The kernels are compiled: the words and macros of emu.h go before the system headers come.
#undef char2
#undef char3
#undef char4
#undef uchar2
#undef uchar3
#undef uchar4
#undef short2
#undef short3
#undef short4
#undef ushort2
#undef ushort3
#undef ushort4
#undef int2
#undef int3
#undef int4
#undef uint2
#undef uint3
#undef uint4
#undef long2
#undef long3
#undef long4
#undef ulong2
#undef ulong3
#undef ulong4
#undef half2
#undef half3
#undef half4
#undef float2
#undef float3
#undef float4
#undef packed_float2
#undef packed_float4
#undef packed_half2
#undef packed_half4
#undef packed_char4
#undef packed_uchar4
#undef packed_short2
#undef packed_ushort2
#undef device
#undef constant
#undef thread
#undef threadgroup
#undef INFINITY
#undef NAN
#undef HUGE_VALF
#undef MAXFLOAT
#undef FLT_MAX
#undef FLT_MIN
#undef FLT_EPSILON
#undef FLT_MANT_DIG
#undef CHAR_BIT
#undef SCHAR_MAX
#undef SCHAR_MIN
#undef UCHAR_MAX
#undef CHAR_MAX
#undef CHAR_MIN
#undef SHRT_MAX
#undef SHRT_MIN
#undef USHRT_MAX
#undef INT_MAX
#undef INT_MIN
#undef UINT_MAX
#undef LONG_MAX
#undef LONG_MIN
#undef ULONG_MAX

#include "bn_metal.h"
#include "ranges.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>


#if !defined(BN_EMU_UCONTEXT) && !defined(__x86_64__) && !defined(__aarch64__)
#define BN_EMU_UCONTEXT 1
#endif
#ifdef BN_EMU_UCONTEXT
#include <ucontext.h>
#endif

#define BN_EXPORT extern "C" __attribute__((visibility("default")))

namespace bn_emu {

// ---- failures ------------------------------------------------------------------------------------

static thread_local char message[512];

static int32_t fail(int32_t status, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static int32_t fail(int32_t status, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  return status;
}

// ---- context switches ------------------------------------------------------------------------------
// x86_64 and aarch64: a switch saves the callee-saved registers on the stack it leaves and takes
// those of the stack it enters (no signal mask: swapcontext's system call would be most of the cost
// of a barrier). Elsewhere (or with -DBN_EMU_UCONTEXT): ucontext.

struct Fiber;
static void fiber_main(Fiber* f);

#ifndef BN_EMU_UCONTEXT
extern "C" void bn_emu_switch(void** save_sp, void* to_sp);
extern "C" void bn_emu_start(void);
#ifdef __APPLE__  // Mach-O: C names take an underscore; no .type/.size
#define BN_ASM_FN(name) ".globl _" name "\n.private_extern _" name "\n.p2align 4\n_" name ":\n"
#define BN_ASM_END(name) ""
#else
#define BN_ASM_FN(name) ".globl " name "\n.hidden " name "\n.type " name ", %function\n.p2align 4\n" name ":\n"
#define BN_ASM_END(name) ".size " name ", .-" name "\n"
#endif
#if defined(__x86_64__)
// Stack of a suspended fiber: r15 r14 r13 r12 rbx rbp, return address. bn_emu_start: r13(r12).
__asm__(
    ".text\n" BN_ASM_FN("bn_emu_switch")
    "  pushq %rbp\n"
    "  pushq %rbx\n"
    "  pushq %r12\n"
    "  pushq %r13\n"
    "  pushq %r14\n"
    "  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n"
    "  popq %r14\n"
    "  popq %r13\n"
    "  popq %r12\n"
    "  popq %rbx\n"
    "  popq %rbp\n"
    "  ret\n" BN_ASM_END("bn_emu_switch") BN_ASM_FN("bn_emu_start")
    "  movq %r12, %rdi\n"
    "  callq *%r13\n"
    "  ud2\n" BN_ASM_END("bn_emu_start"));
static const unsigned frame_words = 9;  // 6 registers, return address, 2 words of padding
static void frame_init(void** sp, Fiber* f) {
  sp[0] = sp[1] = sp[4] = sp[5] = nullptr;
  sp[2] = (void*)&fiber_main;  // r13
  sp[3] = (void*)f;            // r12
  sp[6] = (void*)&bn_emu_start;
  sp[7] = sp[8] = nullptr;  // after the return: rsp = top - 16, aligned for the call
}
#else
// Stack of a suspended fiber: x19..x30 then d8..d15 (160 bytes). bn_emu_start: x20(x19).
__asm__(
    ".text\n" BN_ASM_FN("bn_emu_switch")
    "  sub sp, sp, #160\n"
    "  stp x19, x20, [sp, #0]\n"
    "  stp x21, x22, [sp, #16]\n"
    "  stp x23, x24, [sp, #32]\n"
    "  stp x25, x26, [sp, #48]\n"
    "  stp x27, x28, [sp, #64]\n"
    "  stp x29, x30, [sp, #80]\n"
    "  stp d8, d9, [sp, #96]\n"
    "  stp d10, d11, [sp, #112]\n"
    "  stp d12, d13, [sp, #128]\n"
    "  stp d14, d15, [sp, #144]\n"
    "  mov x2, sp\n"
    "  str x2, [x0]\n"
    "  mov sp, x1\n"
    "  ldp x19, x20, [sp, #0]\n"
    "  ldp x21, x22, [sp, #16]\n"
    "  ldp x23, x24, [sp, #32]\n"
    "  ldp x25, x26, [sp, #48]\n"
    "  ldp x27, x28, [sp, #64]\n"
    "  ldp x29, x30, [sp, #80]\n"
    "  ldp d8, d9, [sp, #96]\n"
    "  ldp d10, d11, [sp, #112]\n"
    "  ldp d12, d13, [sp, #128]\n"
    "  ldp d14, d15, [sp, #144]\n"
    "  add sp, sp, #160\n"
    "  ret\n" BN_ASM_END("bn_emu_switch") BN_ASM_FN("bn_emu_start")
    "  mov x0, x19\n"
    "  blr x20\n"
    "  brk #0\n" BN_ASM_END("bn_emu_start"));
static const unsigned frame_words = 20;
static void frame_init(void** sp, Fiber* f) {
  for (unsigned i = 0; i < frame_words; i++) sp[i] = nullptr;
  sp[0] = (void*)f;            // x19
  sp[1] = (void*)&fiber_main;  // x20
  sp[11] = (void*)&bn_emu_start;  // x30
}
#endif
#endif

// ---- the fibers of a threadgroup -----------------------------------------------------------------

enum : unsigned char { READY, WAIT_BARRIER, WAIT_SIMD, DONE, STOPPED };

static const size_t STACK_BYTES = 128 * 1024;
static const size_t GUARD_BYTES = 4096;
static const unsigned MAX_THREADS = 1024;

struct Fiber {
#ifdef BN_EMU_UCONTEXT
  ucontext_t uc;
#else
  void* sp;
#endif
  uint32_t lid, lane, sg;
  unsigned char state;
  unsigned char parity;  // which of the simdgroup's two exchange buffers its next collective uses
  bool fresh;            // its context must be (re)made before it runs
};

// The running dispatch and group (one synchronize at a time: the lock is held).
struct Group {
  const Entry* entry;
  const void* params;
  metal::uchar* buffers[5];
  metal::uint3 tg, ngroups;
  uint32_t n;  // threads of the group
  Fiber* cur;
  unsigned exited, at_barrier, phase;
  unsigned k;  // position in the current pass over the threads (G.reverse: from the last)
  bool reverse, odd_group;
  unsigned sg_exited[MAX_THREADS / 32], sg_at_barrier[MAX_THREADS / 32], sg_waiting[MAX_THREADS / 32], sg_key[MAX_THREADS / 32];
  bool failed;
  char error[448];
#ifdef BN_EMU_UCONTEXT
  ucontext_t sched;
#else
  void* sched_sp;
#endif
};
static Group G;
static Fiber* fibers;      // MAX_THREADS
static unsigned char* stacks;  // MAX_THREADS × (GUARD_BYTES + STACK_BYTES), a guard page under each
alignas(64) static unsigned char simd_data[MAX_THREADS / 32][2][32][SLOT];
static int order_mode = -1;  // 0 alternate, 1 forward, 2 reverse ($BN_EMU_ORDER)
static bool trace;           // $BN_EMU_TRACE: every dispatch and its time on stderr

static void to_scheduler(Fiber* f) {
#ifdef BN_EMU_UCONTEXT
  swapcontext(&f->uc, &G.sched);
#else
  bn_emu_switch(&f->sp, G.sched_sp);
#endif
}

static void to_fiber(Fiber* f) {
  G.cur = f;
#ifdef BN_EMU_UCONTEXT
  swapcontext(&G.sched, &f->uc);
#else
  bn_emu_switch(&G.sched_sp, f->sp);
#endif
}

// The next fiber to run: the next READY one of the current pass over the group's threads, else of a
// new pass (whose direction follows the phase); nullptr when none is READY.
static Fiber* next_ready(void) {
  const unsigned n = G.n;
  for (unsigned k = G.k + 1; k < n; k++) {
    Fiber* f = &fibers[G.reverse ? n - 1 - k : k];
    if (f->state == READY) {
      G.k = k;
      return f;
    }
  }
  G.reverse = order_mode == 2 || (order_mode == 0 && ((G.phase & 1) != 0) != G.odd_group);
  for (unsigned k = 0; k < n; k++) {
    Fiber* f = &fibers[G.reverse ? n - 1 - k : k];
    if (f->state == READY) {
      G.k = k;
      return f;
    }
  }
  return nullptr;
}

// Leaves fiber f (blocked or returned) for the next fiber that can run, or for the scheduler when
// none can (the group is done, or stuck).
static void yield(Fiber* f) {
  Fiber* next = next_ready();
  if (!next) {
    to_scheduler(f);
    return;
  }
  G.cur = next;
#ifdef BN_EMU_UCONTEXT
  swapcontext(&f->uc, &next->uc);
#else
  bn_emu_switch(&f->sp, next->sp);
#endif
}

static unsigned char* stack_of(const Fiber* f) { return stacks + (size_t)f->lid * (GUARD_BYTES + STACK_BYTES) + GUARD_BYTES; }

#ifdef BN_EMU_UCONTEXT
static void uc_entry(void) { fiber_main(G.cur); }
#endif

static void make_context(Fiber* f) {
#ifdef BN_EMU_UCONTEXT
  getcontext(&f->uc);
  f->uc.uc_stack.ss_sp = stack_of(f);
  f->uc.uc_stack.ss_size = STACK_BYTES;
  f->uc.uc_link = nullptr;
  makecontext(&f->uc, uc_entry, 0);
#else
  // The tops of the stacks at different offsets within a page (else they share one cache set).
  const uintptr_t top = ((uintptr_t)stack_of(f) + STACK_BYTES - (f->lid % 64) * 64) & ~(uintptr_t)15;
  void** sp = (void**)(top - frame_words * sizeof(void*));
  frame_init(sp, f);
  f->sp = sp;
#endif
  f->fresh = false;
}

static bool fibers_ready(void) {
  if (fibers) return true;
  const size_t bytes = (size_t)MAX_THREADS * (GUARD_BYTES + STACK_BYTES);
  void* s = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (s == MAP_FAILED) return false;
  for (unsigned i = 0; i < MAX_THREADS; i++) mprotect((unsigned char*)s + (size_t)i * (GUARD_BYTES + STACK_BYTES), GUARD_BYTES, PROT_NONE);
  Fiber* fs = (Fiber*)calloc(MAX_THREADS, sizeof(Fiber));
  if (!fs) {
    munmap(s, bytes);
    return false;
  }
  for (unsigned i = 0; i < MAX_THREADS; i++) {
    fs[i].lid = i;
    fs[i].lane = i % 32;
    fs[i].sg = i / 32;
    fs[i].fresh = true;
  }
  stacks = (unsigned char*)s;
  fibers = fs;
  const char* o = getenv("BN_EMU_ORDER");
  order_mode = o && !strcmp(o, "forward") ? 1 : o && !strcmp(o, "reverse") ? 2 : 0;
  const char* t = getenv("BN_EMU_TRACE");
  trace = t && *t && strcmp(t, "0") != 0;
  return true;
}

static unsigned sg_width(unsigned s) { return G.n - s * 32 < 32 ? G.n - s * 32 : 32; }

// Fails the group from inside a fiber: the scheduler gets control back and never resumes it.
[[noreturn]] __attribute__((format(printf, 1, 2))) static void stop(const char* fmt, ...) {
  Fiber* f = G.cur;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(G.error, sizeof G.error, fmt, ap);
  va_end(ap);
  G.failed = true;
  f->state = STOPPED;
  to_scheduler(f);
  __builtin_trap();
}

static void fiber_main(Fiber* f) {
  for (;;) {
    G.entry->run(G.params, G.buffers, G.tg, G.ngroups, f->lid, G.n, f->lane, f->sg);
    const unsigned s = f->sg;
    if (G.at_barrier)
      stop("thread %u returned while %u threads wait at a threadgroup_barrier (every thread of a group must reach each barrier)", f->lid, G.at_barrier);
    if (G.sg_waiting[s])
      stop("thread %u (lane %u of simdgroup %u) returned while %u lanes of its simdgroup wait in a simdgroup function", f->lid, f->lane, s, G.sg_waiting[s]);
    G.exited++;
    G.sg_exited[s]++;
    f->state = DONE;
    yield(f);  // resumed for the next group
  }
}

void group_barrier() {
  Fiber* f = G.cur;
  const unsigned s = f->sg;
  if (G.exited)
    stop("thread %u reached a threadgroup_barrier after %u threads of the group returned (every thread of a group must reach each barrier)", f->lid, G.exited);
  if (G.sg_waiting[s])
    stop("thread %u (lane %u of simdgroup %u) reached a threadgroup_barrier while %u lanes of its simdgroup wait in a simdgroup function", f->lid, f->lane, s, G.sg_waiting[s]);
  if (++G.at_barrier == G.n) {
    G.at_barrier = 0;
    for (unsigned i = 0; i < G.n; i++) {
      if (fibers[i].state == WAIT_BARRIER) fibers[i].state = READY;
    }
    for (unsigned i = 0; i * 32 < G.n; i++) G.sg_at_barrier[i] = 0;
    G.phase++;
    return;
  }
  G.sg_at_barrier[s]++;
  f->state = WAIT_BARRIER;
  yield(f);
}

static const char* op_name(unsigned op) {
  static const char* const names[] = {"?", "simd_sum", "simd_product", "simd_max", "simd_min", "simd_and", "simd_or", "simd_xor",
                                      "simd_prefix_exclusive_sum/product", "simd_prefix_inclusive_sum", "simd_shuffle", "simd_shuffle_xor",
                                      "simd_shuffle_down", "simd_shuffle_up", "simd_broadcast", "simd_broadcast_first", "simd_all", "simd_any",
                                      "simdgroup_barrier", "simd_ballot", "simd_is_first"};
  return op < sizeof names / sizeof names[0] ? names[op] : "?";
}

Simd simd_exchange(unsigned op, const void* value, unsigned size) {
  Fiber* f = G.cur;
  const unsigned s = f->sg, width = sg_width(s);
  if (G.sg_exited[s])
    stop("lane %u of simdgroup %u called a simdgroup function after %u lanes of its simdgroup returned (all %u must call it together)", f->lane, s, G.sg_exited[s], width);
  if (G.sg_at_barrier[s])
    stop("lane %u of simdgroup %u called a simdgroup function while %u lanes of its simdgroup wait at a threadgroup_barrier", f->lane, s, G.sg_at_barrier[s]);
  const unsigned key = op << 8 | size;
  if (G.sg_waiting[s] == 0) G.sg_key[s] = key;
  else if (G.sg_key[s] != key)
    stop("the lanes of simdgroup %u meet at different simdgroup functions (lane %u calls %s on %u bytes while %u lanes wait in %s on %u)", s, f->lane, op_name(op), size,
         G.sg_waiting[s], op_name(G.sg_key[s] >> 8), G.sg_key[s] & 255);
  unsigned char(*slots)[SLOT] = simd_data[s][f->parity];
  switch (size) {  // (a constant size: no call)
    case 1: memcpy(slots[f->lane], value, 1); break;
    case 2: memcpy(slots[f->lane], value, 2); break;
    case 4: memcpy(slots[f->lane], value, 4); break;
    case 8: memcpy(slots[f->lane], value, 8); break;
    case 16: memcpy(slots[f->lane], value, 16); break;
    default: memcpy(slots[f->lane], value, size);
  }
  if (++G.sg_waiting[s] == width) {
    G.sg_waiting[s] = 0;
    for (unsigned i = s * 32; i < s * 32 + width; i++) {
      if (fibers[i].state == WAIT_SIMD) fibers[i].state = READY;
    }
  } else {
    f->state = WAIT_SIMD;
    yield(f);
  }
  f->parity ^= 1;
  return Simd{&slots[0][0], f->lane, width};
}

// Runs one group of G.entry; false (G.error) when it failed.
static bool run_group(bool odd_group) {
  const unsigned n = G.n;
  G.exited = G.at_barrier = G.phase = 0;
  for (unsigned i = 0; i * 32 < n; i++) G.sg_exited[i] = G.sg_at_barrier[i] = G.sg_waiting[i] = 0;
  G.failed = false;
  for (unsigned i = 0; i < n; i++) {
    if (fibers[i].fresh) make_context(&fibers[i]);
    fibers[i].state = READY;
    fibers[i].parity = 0;
  }
  // The fibers pass control from one to the next (yield) and come back here when none can go on.
  G.odd_group = odd_group;
  G.k = n;  // so that the first pick starts a pass
  to_fiber(next_ready());
  if (G.failed) goto stopped;
  if (G.exited == n) return true;
  snprintf(G.error, sizeof G.error, "no thread of the group can go on (%u returned, %u at a threadgroup_barrier)", G.exited, G.at_barrier);
  G.failed = true;
stopped:
  // The fibers left inside the kernel start afresh next time.
  for (unsigned i = 0; i < n; i++) {
    if (fibers[i].state != DONE) fibers[i].fresh = true;
  }
  return false;
}

// ---- memory: address ranges (as shim.m) ------------------------------------------------------------

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;  // everything below, and the whole of a synchronize

// A growable array (malloc'd: no C++ library in the emulator, which exports bn_metal.h alone).
template <class T>
struct List {
  T* at;
  size_t n, cap;
  bool push(const T& v) {
    if (n == cap) {
      const size_t c = cap ? 2 * cap : 64;
      T* grown = (T*)realloc(at, c * sizeof(T));
      if (!grown) return false;
      at = grown;
      cap = c;
    }
    at[n++] = v;
    return true;
  }
};
static bn_range_table ranges;  // live allocations (metal/ranges.h, as shim.m's); owner = the malloc block
static List<void*> deferred;   // freed while work was queued

static const bn_mtl_info info = {"bitnet Metal emulator (CPU)", 8ull << 30, 4ull << 30, 1, 0};

// Index of the range holding p, or -1 (lock held).
static long find_range(uintptr_t p) { return bn_range_find(&ranges, p); }

// ---- queued work -------------------------------------------------------------------------------------

struct Work {
  const Entry* entry;  // nullptr: a gemm
  uint32_t groups_x, groups_y, threads;
  void* blob;  // the bytes of the byte arguments (64-byte aligned copies), freed after the run
  const void* params;
  metal::uchar* buffers[5];
  // gemm
  uint32_t dtype, trans_a, trans_b;
  uint64_t m, n, k, lda, ldb, ldc;
  const unsigned char *a, *b;
  unsigned char* c;
};
static List<Work> queue;

template <class T>
static void gemm_typed(const Work& w, float* acc) {
  for (uint64_t i = 0; i < w.m; i++) {
    for (uint64_t j = 0; j < w.n; j++) acc[j] = 0.0f;
    for (uint64_t p = 0; p < w.k; p++) {
      const float av = (float)*(const T*)(w.a + (w.trans_a ? p * w.lda + i * sizeof(T) : i * w.lda + p * sizeof(T)));
      if (!w.trans_b) {
        const T* brow = (const T*)(w.b + p * w.ldb);
        for (uint64_t j = 0; j < w.n; j++) acc[j] += av * (float)brow[j];
      } else {
        for (uint64_t j = 0; j < w.n; j++) acc[j] += av * (float)*(const T*)(w.b + j * w.ldb + p * sizeof(T));
      }
    }
    T* crow = (T*)(w.c + i * w.ldc);
    for (uint64_t j = 0; j < w.n; j++) crow[j] = (T)acc[j];
  }
}

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

// Runs one queued item (lock held); BN_MTL_OK or the failure (message).
static int32_t run_work(const Work& w) {
  if (!w.entry) {
    float* acc = (float*)malloc(w.n * sizeof(float));
    if (!acc) return fail(BN_MTL_FAILED, "gemm: no host memory for a row of %llu floats", (unsigned long long)w.n);
    if (w.dtype == 0) gemm_typed<float>(w, acc);
    else gemm_typed<_Float16>(w, acc);
    free(acc);
    return BN_MTL_OK;
  }
  if (!fibers_ready()) return fail(BN_MTL_FAILED, "%s: no memory for the stacks of %u threads", w.entry->name, w.threads);
  const double t0 = trace ? seconds() : 0;
  G.entry = w.entry;
  G.params = w.params;
  memcpy(G.buffers, w.buffers, sizeof G.buffers);
  G.ngroups = metal::uint3{w.groups_x, w.groups_y, 1};
  G.n = w.threads;
  for (uint32_t y = 0; y < w.groups_y; y++) {
    for (uint32_t x = 0; x < w.groups_x; x++) {
      G.tg = metal::uint3{x, y, 0};
      if (!run_group(((x + y) & 1) != 0))
        return fail(BN_MTL_FAILED, "a Metal command buffer failed: %s: group (%u, %u) of %u x %u, %u threads: %s", w.entry->name, x, y, w.groups_x,
                    w.groups_y, w.threads, G.error);
    }
  }
  if (trace) fprintf(stderr, "bn_emu: %s %u x %u groups of %u threads: %.3f ms\n", w.entry->name, w.groups_x, w.groups_y, w.threads, (seconds() - t0) * 1e3);
  return BN_MTL_OK;
}

// Checks that a gemm operand lies in a live buffer (lock held).
static int32_t check_matrix(const void* p, uint64_t rows, uint64_t cols, uint64_t row_bytes, uint64_t elem, const char* which) {
  const long i = find_range((uintptr_t)p);
  if (i < 0) return fail(BN_MTL_INVALID, "gemm: %s (%p) is not in a live Metal buffer", which, p);
  const uint64_t room = ranges.at[i].hi - (uintptr_t)p;
  if (row_bytes % elem != 0 || row_bytes < cols * elem || (rows - 1) * row_bytes + cols * elem > room)
    return fail(BN_MTL_INVALID, "gemm: MPS refused %s (%llu x %llu, %llu bytes a row, %llu bytes left in its buffer)", which, (unsigned long long)rows,
                (unsigned long long)cols, (unsigned long long)row_bytes, (unsigned long long)room);
  return BN_MTL_OK;
}

static int32_t library_status = -1;  // the first bn_mtl_library answer
static char library_message[256];

// ---- the C ABI (bn_metal.h) --------------------------------------------------------------------------
// (extern "C" functions inside the namespace: the global ones of bn_metal.h, while the names above
// stay out of the kernels' global namespace.)

BN_EXPORT int32_t bn_mtl_abi(void) { return BN_MTL_ABI; }

BN_EXPORT const char* bn_mtl_message(void) { return message; }

BN_EXPORT int32_t bn_mtl_init(bn_mtl_info* out) {
  if (out) *out = info;
  return BN_MTL_OK;
}

BN_EXPORT void* bn_mtl_alloc(uint64_t bytes, uint64_t alignment) {
  if (bn_mtl_init(nullptr) != BN_MTL_OK) return nullptr;
  uint64_t total = 0;
  char why[160];
  const int32_t plan = bn_alloc_plan(bytes, &alignment, info.max_buffer, &total, why, sizeof why);
  if (plan != BN_MTL_OK) {
    fail(plan, "%s", why);
    return nullptr;
  }
  void* base = malloc(total);
  if (!base) {
    fail(BN_MTL_OUT_OF_MEMORY, "Metal refused a shared buffer of %llu bytes", (unsigned long long)total);
    return nullptr;
  }
  const uintptr_t lo = (uintptr_t)base;
  pthread_mutex_lock(&lock);
  const int added = bn_range_insert(&ranges, lo, lo + total, base);
  pthread_mutex_unlock(&lock);
  if (added != 0) {
    free(base);
    fail(BN_MTL_OUT_OF_MEMORY, "no host memory for the buffer table");
    return nullptr;
  }
  return bn_align_up(lo, alignment);
}

BN_EXPORT int32_t bn_mtl_free(void* p) {
  if (bn_mtl_init(nullptr) != BN_MTL_OK) return BN_MTL_UNAVAILABLE;
  pthread_mutex_lock(&lock);
  const long i = find_range((uintptr_t)p);
  if (i < 0) {
    pthread_mutex_unlock(&lock);
    return fail(BN_MTL_INVALID, "%p is not in a live Metal buffer", p);
  }
  void* base = bn_range_remove(&ranges, (size_t)i);
  // Queued work may still use it: released after it ran (when there is no room to remember it,
  // now: the engine synchronizes before it frees memory that queued work uses).
  const bool later = queue.n > 0 && deferred.push(base);
  pthread_mutex_unlock(&lock);
  if (!later) free(base);
  return BN_MTL_OK;
}

BN_EXPORT int32_t bn_mtl_synchronize(void) {
  if (bn_mtl_init(nullptr) != BN_MTL_OK) return BN_MTL_UNAVAILABLE;
  pthread_mutex_lock(&lock);
  int32_t st = BN_MTL_OK;
  char first[sizeof message];
  first[0] = 0;
  for (size_t i = 0; i < queue.n; i++) {
    const int32_t s = run_work(queue.at[i]);
    if (s != BN_MTL_OK && st == BN_MTL_OK) {
      st = s;
      snprintf(first, sizeof first, "%s", message);
    }
    free(queue.at[i].blob);
  }
  queue.n = 0;
  for (size_t i = 0; i < deferred.n; i++) free(deferred.at[i]);
  deferred.n = 0;
  pthread_mutex_unlock(&lock);
  if (st != BN_MTL_OK) return fail(st, "%s", first);
  return BN_MTL_OK;
}

BN_EXPORT int32_t bn_mtl_gemm(uint32_t dtype, uint64_t m, uint64_t n, uint64_t k, const void* a, uint64_t lda, uint32_t trans_a, const void* b, uint64_t ldb,
                              uint32_t trans_b, void* c, uint64_t ldc) {
  if (bn_mtl_init(nullptr) != BN_MTL_OK) return BN_MTL_UNAVAILABLE;
  if (dtype > 1) return fail(BN_MTL_INVALID, "gemm: dtype code %u (0 float32, 1 float16)", dtype);
  if (m == 0 || n == 0 || k == 0) return BN_MTL_OK;  // the engine zero-fills for k == 0
  const uint64_t es = dtype == 0 ? 4 : 2;
  pthread_mutex_lock(&lock);
  int32_t st = check_matrix(a, trans_a ? k : m, trans_a ? m : k, lda, es, "A");
  if (st == BN_MTL_OK) st = check_matrix(b, trans_b ? n : k, trans_b ? k : n, ldb, es, "B");
  if (st == BN_MTL_OK) st = check_matrix(c, m, n, ldc, es, "C");
  if (st == BN_MTL_OK) {
    Work w = {};
    w.dtype = dtype;
    w.m = m;
    w.n = n;
    w.k = k;
    w.a = (const unsigned char*)a;
    w.lda = lda;
    w.trans_a = trans_a;
    w.b = (const unsigned char*)b;
    w.ldb = ldb;
    w.trans_b = trans_b;
    w.c = (unsigned char*)c;
    w.ldc = ldc;
    if (!queue.push(w)) st = fail(BN_MTL_FAILED, "gemm: no host memory to queue it");
  }
  pthread_mutex_unlock(&lock);
  return st;
}

BN_EXPORT int32_t bn_mtl_library(const char* source, uint64_t length) {
  if (bn_mtl_init(nullptr) != BN_MTL_OK) return BN_MTL_UNAVAILABLE;
  pthread_mutex_lock(&lock);
  if (library_status < 0) {
    if (!source || length == 0) {
      library_status = BN_MTL_INVALID;
      snprintf(library_message, sizeof library_message, "no kernel source (the emulator runs the kernels compiled into it, but wants the text)");
    } else {
      library_status = BN_MTL_OK;
    }
  }
  const int32_t st = library_status;
  pthread_mutex_unlock(&lock);
  if (st != BN_MTL_OK) return fail(st, "%s", library_message);
  return BN_MTL_OK;
}

BN_EXPORT void* bn_mtl_pipeline(const char* name, uint32_t* max_threads, uint32_t* simd_width) {
  if (bn_mtl_init(nullptr) != BN_MTL_OK) return nullptr;
  pthread_mutex_lock(&lock);
  const int32_t lib = library_status;
  pthread_mutex_unlock(&lock);
  if (lib != BN_MTL_OK) {
    fail(BN_MTL_INVALID, "no library");
    return nullptr;
  }
  for (const Entry* e = registry; e->name; e++) {
    if (name && !strcmp(e->name, name)) {
      if (max_threads) *max_threads = MAX_THREADS;
      if (simd_width) *simd_width = 32;
      return (void*)e;
    }
  }
  fail(BN_MTL_INVALID, "no kernel named %s", name ? name : "(null)");
  return nullptr;
}

BN_EXPORT int32_t bn_mtl_dispatch(void* pipeline, uint32_t groups_x, uint32_t groups_y, uint32_t threads, const bn_mtl_arg* args, uint32_t nargs) {
  if (bn_mtl_init(nullptr) != BN_MTL_OK) return BN_MTL_UNAVAILABLE;
  const Entry* e = nullptr;
  for (const Entry* r = registry; r->name; r++) {
    if (r == pipeline) e = r;
  }
  if (!e) return fail(BN_MTL_INVALID, "dispatch: %p is not a pipeline of bn_mtl_pipeline", pipeline);
  if (threads == 0 || threads > MAX_THREADS) return fail(BN_MTL_INVALID, "%s: %u threads a group (1 to %u)", e->name, threads, MAX_THREADS);
  if (groups_x == 0 || groups_y == 0) return fail(BN_MTL_INVALID, "%s: %u x %u groups (at least one each way)", e->name, groups_x, groups_y);
  if (nargs == 0 || !args) return fail(BN_MTL_INVALID, "%s: no buffer 0 (the parameter record of %u bytes)", e->name, e->param_bytes);
  if (nargs > 6) return fail(BN_MTL_INVALID, "%s: %u buffers bound, the kernel takes 6 (0 to 5)", e->name, nargs);
  if (args[0].bytes != e->param_bytes)
    return fail(BN_MTL_INVALID, "%s: a parameter record of %llu bytes, the kernel takes %u", e->name, (unsigned long long)args[0].bytes, e->param_bytes);
  size_t blob_bytes = 0;
  for (uint32_t i = 0; i < nargs; i++) {
    if (args[i].bytes > 4096) return fail(BN_MTL_INVALID, "%s: buffer %u: %llu bytes inline (at most 4096)", e->name, i, (unsigned long long)args[i].bytes);
    if (args[i].bytes > 0 && !args[i].ptr) return fail(BN_MTL_INVALID, "%s: buffer %u: %llu bytes at NULL", e->name, i, (unsigned long long)args[i].bytes);
    blob_bytes += (args[i].bytes + 63) & ~(size_t)63;
  }
  Work w = {};
  w.entry = e;
  w.groups_x = groups_x;
  w.groups_y = groups_y;
  w.threads = threads;
  w.blob = aligned_alloc(64, blob_bytes);
  if (!w.blob) return fail(BN_MTL_FAILED, "%s: no host memory to queue it", e->name);
  pthread_mutex_lock(&lock);
  int32_t st = BN_MTL_OK;
  size_t at = 0;
  for (uint32_t i = 0; i < nargs && st == BN_MTL_OK; i++) {
    void* bound;
    if (args[i].bytes > 0) {
      bound = (unsigned char*)w.blob + at;
      memcpy(bound, args[i].ptr, args[i].bytes);
      at += (args[i].bytes + 63) & ~(size_t)63;
    } else {
      if (!args[i].ptr || find_range((uintptr_t)args[i].ptr) < 0) {
        st = fail(BN_MTL_INVALID, "%s: buffer %u (%p) is not in a live Metal buffer", e->name, i, args[i].ptr);
        break;
      }
      bound = (void*)args[i].ptr;
    }
    if (i == 0) w.params = bound;
    else w.buffers[i - 1] = (metal::uchar*)bound;
  }
  if (st == BN_MTL_OK && !queue.push(w)) st = fail(BN_MTL_FAILED, "%s: no host memory to queue it", e->name);
  pthread_mutex_unlock(&lock);
  if (st != BN_MTL_OK) free(w.blob);
  return st;
}

}  // namespace bn_emu
