// The self-test of the Metal shim's CPU emulator (metal/emu.cpp): drives a build of it with the
// kernels of test/metal_emu/kernels.metal (argv[1], opened with dlopen) through the C ABI of
// metal/bn_metal.h, and checks the emulator's own behaviours, which the engine's tests on it
// (test/metal.test.ts) reach only where the engine happens to use them: the device record, the
// library and pipelines, memory (alignment, bounds, frees while work is queued), work queued until
// bn_mtl_synchronize and run in order, the validation of dispatches and products, every simdgroup
// function (partial simdgroups and lanes that do not exist included), threadgroup memory and
// barriers, the order threads run in (so that a missing barrier shows), misuse failing the command
// instead of hanging, simdgroup matrices, the MSL environment (emu.h), the MPS product stand-in with
// every transpose in f32 and f16, and threads queueing and synchronizing at once.
//
// One line per check, "ok <group>/<name>" or "FAIL <group>/<name>: <details>" (lines starting with
// "#" are notes: details of a failure, timings), then "<n> checks, <m> failed"; exit status 1 when
// any failed. test/metal_emu.test.ts builds both and turns the lines into tests.
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bn_metal.h"

// ---- the shim's functions, and checks ------------------------------------------------------------

static int32_t (*abi)(void);
static int32_t (*init)(bn_mtl_info*);
static const char* (*msg)(void);
static void* (*alloc_)(uint64_t, uint64_t);
static int32_t (*free_)(void*);
static int32_t (*sync_)(void);
static int32_t (*gemm)(uint32_t, uint64_t, uint64_t, uint64_t, const void*, uint64_t, uint32_t, const void*, uint64_t, uint32_t, void*, uint64_t);
static int32_t (*library)(const char*, uint64_t);
static void* (*pipeline)(const char*, uint32_t*, uint32_t*);
static int32_t (*dispatch)(void*, uint32_t, uint32_t, uint32_t, const bn_mtl_arg*, uint32_t);

static int checks, failures;

// One check: "ok name", or "FAIL name: " and the details (printf format).
__attribute__((format(printf, 3, 4))) static int check(int ok, const char* name, const char* fmt, ...) {
  checks++;
  if (ok) {
    printf("ok %s\n", name);
    return 1;
  }
  failures++;
  printf("FAIL %s: ", name);
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  return 0;
}

// A check name made with printf (valid until the next call: for immediate use).
__attribute__((format(printf, 1, 2))) static const char* nm(const char* fmt, ...) {
  static char buf[128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

// The parameter records of kernels.metal.
struct GridParams { uint32_t n; float a, b; };
struct ReduceParams { uint32_t n; uint32_t per_group; };
struct SimdParams { uint32_t n; };
struct BenchParams { uint32_t n; uint32_t rounds; };
struct MathParams { uint32_t n; int64_t big; };

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

// The pipeline of a kernel (the emulator answers 1024 threads, 32 lanes); NULL when there is none.
static void* pipe_(const char* name) {
  uint32_t mt = 0, sw = 0;
  void* p = pipeline(name, &mt, &sw);
  if (!p || mt != 1024 || sw != 32) {
    check(0, nm("pipeline/%s", name), "%p, %u threads, width %u: %s", p, mt, sw, msg());
    return NULL;
  }
  return p;
}

// Dispatches and synchronizes; the status of whichever failed (message).
static int32_t run(void* k, uint32_t gx, uint32_t gy, uint32_t threads, const bn_mtl_arg* args, uint32_t nargs) {
  const int32_t st = dispatch(k, gx, gy, threads, args, nargs);
  return st != 0 ? st : sync_();
}

static int same(float a, float b) { return (isnan(a) && isnan(b)) || a == b; }

// ---- threadgroup memory and barriers -------------------------------------------------------------

// t_reduce over n elements, per elements a group of `threads` threads: both sums exact.
static void test_reduce(uint32_t n, uint32_t per, uint32_t threads) {
  char name[64];
  snprintf(name, sizeof name, "reduce/%u-per-%u-threads-%u", n, per, threads);
  void* k = pipe_("t_reduce");
  const uint32_t groups = (n + per - 1) / per;
  float* x = alloc_(n * 4, 16);
  float* a = alloc_(groups * 4, 16);
  float* b = alloc_(groups * 4, 16);
  for (uint32_t i = 0; i < n; i++) x[i] = (float)(i % 17);
  struct ReduceParams rp = {n, per};
  bn_mtl_arg args[4] = {{&rp, sizeof rp}, {x, 0}, {a, 0}, {b, 0}};
  const int32_t st = run(k, groups, 1, threads, args, 4);
  int bad = 0;
  for (uint32_t g = 0; st == 0 && g < groups; g++) {
    float e = 0;
    for (uint32_t i = g * per; i < (g + 1) * per && i < n; i++) e += (float)(i % 17);
    if ((a[g] != e || b[g] != e) && bad++ < 5) printf("# t_reduce group %u: %g (tree) %g (simd), want %g\n", g, a[g], b[g], e);
  }
  check(st == 0 && bad == 0, name, "status %d (%s), %d groups wrong", st, st ? msg() : "", bad);
  free_(x);
  free_(a);
  free_(b);
}

// ---- simdgroup functions ---------------------------------------------------------------------------

// t_simd over groups x threads: every output against its definition, lanes beyond a partial
// simdgroup read as poison (NaN, 0xdeadbeef), a shuffle down or up past the ends as the lane's own.
static void test_simd(uint32_t groups, uint32_t threads) {
  char name[64];
  snprintf(name, sizeof name, "simd/%ux%u", groups, threads);
  void* k = pipe_("t_simd");
  const uint32_t n = groups * threads;
  float* out = alloc_(n * 14 * 4, 64);
  int32_t* iout = alloc_(n * 7 * 4, 64);
  uint32_t* uout = alloc_(n * 9 * 4, 64);
  struct SimdParams sp = {n};
  bn_mtl_arg args[4] = {{&sp, sizeof sp}, {out, 0}, {iout, 0}, {uout, 0}};
  const int32_t st = run(k, groups, 1, threads, args, 4);
  int bad = 0;
  for (uint32_t g = 0; st == 0 && g < groups; g++)
    for (uint32_t lid = 0; lid < threads; lid++) {
      const uint32_t sg = lid / 32, lane = lid % 32, w = threads - sg * 32 < 32 ? threads - sg * 32 : 32;
      const uint32_t base = g * threads + sg * 32;
#define V(l) ((float)(((base + (l)) * 7919u) % 101u))
#define IV(l) ((int)((base + (l)) % 13u) - 6)
#define U(l) ((uint32_t)((base + (l)) * 2654435761u))
      float mx = -1e30f, mn = 1e30f, pre = 0, sum = 0;
      int is = 0, imx = -100, imn = 100, ia = 0, all = 1, any = 0;
      uint32_t prod = 1, and_ = ~0u, or_ = 0, xor_ = 0, xpre = 1, ballot = 0;
      for (uint32_t l = 0; l < w; l++) {
        mx = fmaxf(mx, V(l));
        mn = fminf(mn, V(l));
        if (l < lane) {
          pre += V(l);
          xpre *= U(l) | 1u;
        }
        sum += V(l);
        is += IV(l);
        imx = IV(l) > imx ? IV(l) : imx;
        imn = IV(l) < imn ? IV(l) : imn;
        ia += abs(IV(l));
        all &= IV(l) > -7;
        any |= IV(l) == 6;
        prod *= U(l) | 1u;
        and_ &= U(l) | 0xf0f0f0f0u;
        or_ |= U(l) >> 27;
        xor_ ^= U(l);
        if (U(l) >> 31) ballot |= 1u << l;
      }
      const float e[14] = {mx, mn, (lane ^ 1) < w ? V(lane ^ 1) : NAN, pre, lane + 3 >= 32 ? V(lane) : lane + 3 < w ? V(lane + 3) : NAN,
                           2 < w ? V(2) : NAN, (lane ^ 16) < w ? V(lane ^ 16) : NAN, V(0), pre + V(lane), sum, (float)w,
                           (float)(w * (w - 1) / 2), -sum, lane < 5 ? V(lane) : V(lane - 5)};
      const int32_t ie[7] = {is, imx, ia, all, any, lane == 0, imn};
      const uint32_t src = (lane * 5 + 3) % 32;
      const uint32_t ue[9] = {prod, and_, or_, xor_, xpre, src < w ? U(src) : 0xdeadbeefu, lane < 5 ? U(lane) : U(lane - 5), ballot, 0};
#undef V
#undef IV
#undef U
      const float* o = out + (g * threads + lid) * 14;
      const int32_t* io = iout + (g * threads + lid) * 7;
      const uint32_t* uo = uout + (g * threads + lid) * 9;
      for (int j = 0; j < 14; j++)
        if (!same(o[j], e[j]) && bad++ < 5) printf("# t_simd group %u thread %u: float %d = %g, want %g\n", g, lid, j, o[j], e[j]);
      for (int j = 0; j < 7; j++)
        if (io[j] != ie[j] && bad++ < 5) printf("# t_simd group %u thread %u: int %d = %d, want %d\n", g, lid, j, io[j], ie[j]);
      for (int j = 0; j < 9; j++)
        if (uo[j] != ue[j] && bad++ < 5) printf("# t_simd group %u thread %u: uint %d = %#x, want %#x\n", g, lid, j, uo[j], ue[j]);
    }
  check(st == 0 && bad == 0, name, "status %d (%s), %d values wrong", st, st ? msg() : "", bad);
  free_(out);
  free_(iout);
  free_(uout);
}

// ---- the MPS product stand-in ----------------------------------------------------------------------

static void ref_gemm(int f16, uint64_t m, uint64_t n, uint64_t k, const void* a, uint64_t lda, int ta, const void* b, uint64_t ldb, int tb, float* c) {
  const uint64_t es = f16 ? 2 : 4;
  for (uint64_t i = 0; i < m; i++)
    for (uint64_t j = 0; j < n; j++) {
      float s = 0;
      for (uint64_t p = 0; p < k; p++) {
        const char* pa = (const char*)a + (ta ? p * lda + i * es : i * lda + p * es);
        const char* pb = (const char*)b + (tb ? j * ldb + p * es : p * ldb + j * es);
        s += f16 ? (float)*(const _Float16*)pa * (float)*(const _Float16*)pb : *(const float*)pa * *(const float*)pb;
      }
      c[i * n + j] = s;
    }
}

// C = op(A) · op(B), 5 x 9 · 9 x 7, with padded row strides; then an operand too large for its buffer.
static void test_gemm(int f16, int ta, int tb) {
  char name[64];
  snprintf(name, sizeof name, "gemm/%s%s%s", f16 ? "f16" : "f32", ta ? "-ta" : "", tb ? "-tb" : "");
  const uint64_t m = 5, n = 7, k = 9, es = f16 ? 2 : 4;
  const uint64_t lda = ((ta ? m : k) + 3) * es, ldb = ((tb ? k : n) + 1) * es, ldc = (n + 2) * es;
  char* a = alloc_((ta ? k : m) * lda, 16);
  char* b = alloc_((tb ? n : k) * ldb, 16);
  char* c = alloc_(m * ldc, 16);
  for (uint64_t i = 0; i < (ta ? k : m) * lda / es; i++) {
    const float v = (float)((i * 5) % 11) - 5;
    if (f16) ((_Float16*)a)[i] = (_Float16)v;
    else ((float*)a)[i] = v;
  }
  for (uint64_t i = 0; i < (tb ? n : k) * ldb / es; i++) {
    const float v = (float)((i * 3) % 7) - 3;
    if (f16) ((_Float16*)b)[i] = (_Float16)v;
    else ((float*)b)[i] = v;
  }
  float want[35];
  ref_gemm(f16, m, n, k, a, lda, ta, b, ldb, tb, want);
  int32_t st = gemm(f16, m, n, k, a, lda, ta, b, ldb, tb, c, ldc);
  if (st == 0) st = sync_();
  int bad = 0;
  for (uint64_t i = 0; st == 0 && i < m; i++)
    for (uint64_t j = 0; j < n; j++) {
      const char* pc = c + i * ldc + j * es;
      const float v = f16 ? (float)*(const _Float16*)pc : *(const float*)pc;
      if (v != want[i * n + j]) bad++;
    }
  check(st == 0 && bad == 0, name, "status %d (%s), %d of 35 wrong", st, st ? msg() : "", bad);
  st = gemm(f16, m, n, k + 100, a, lda, ta, b, ldb, tb, c, ldc);
  check(st == BN_MTL_INVALID && strstr(msg(), "MPS refused"), nm("%s-too-big", name), "status %d: %s", st, msg());
  free_(a);
  free_(b);
  free_(c);
}

// ---- several threads at once -----------------------------------------------------------------------

// 40 rounds of allocate, dispatch, synchronize, check, free; the number of wrong results.
static void* worker(void* arg) {
  const uint32_t seed = (uint32_t)(uintptr_t)arg, n = 20000;
  void* kg = pipeline("t_grid", 0, 0);
  long bad = 0;
  for (int it = 0; it < 40; it++) {
    float* x = alloc_(n * 4, 16);
    float* y = alloc_(n * 4, 16);
    for (uint32_t i = 0; i < n; i++) x[i] = (float)(i + seed);
    struct GridParams gp = {n, (float)seed, (float)it};
    bn_mtl_arg ga[3] = {{&gp, sizeof gp}, {x, 0}, {y, 0}};
    if (dispatch(kg, 8, 1, 128, ga, 3) != 0) bad++;
    if (sync_() != 0) bad++;
    for (uint32_t i = 0; i < n; i++)
      if (y[i] != (float)seed * (float)(i + seed) + (float)it) bad++;
    free_(x);
    free_(y);
  }
  return (void*)bad;
}

// ---- the order threads run in ----------------------------------------------------------------------

// How many of the 4 x 256 reads of t_race saw a stale value (not the neighbour's write), or -1.
static int race_stale(void) {
  void* k = pipe_("t_race");
  uint32_t* r = alloc_(4 * 256 * 4, 16);
  struct SimdParams sp = {0};
  bn_mtl_arg ra[2] = {{&sp, sizeof sp}, {r, 0}};
  if (!k || run(k, 4, 1, 256, ra, 2) != 0) return -1;
  int stale = 0;
  for (uint32_t g = 0; g < 4; g++)
    for (uint32_t l = 0; l < 256; l++)
      if (r[g * 256 + l] != g * 1000 + (l + 1) % 256 + 1) stale++;
  free_(r);
  return stale;
}

// t_race in a child process with $BN_EMU_ORDER set (read when the first work runs): its stale count.
static int race_in_child(const char* order) {
  int fd[2];
  if (pipe(fd) != 0) return -2;
  fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    setenv("BN_EMU_ORDER", order, 1);
    const int stale = race_stale();
    _exit(write(fd[1], &stale, sizeof stale) == sizeof stale ? 0 : 1);
  }
  close(fd[1]);
  int stale = -2;
  if (read(fd[0], &stale, sizeof stale) != sizeof stale) stale = -2;
  close(fd[0]);
  int status;
  waitpid(pid, &status, 0);
  return stale;
}

// ---- the checks ------------------------------------------------------------------------------------

#define SYM(v, name)                                      \
  *(void**)&v = dlsym(h, #name);                          \
  if (!v) {                                               \
    printf("FAIL abi/symbols: no %s\n0 checks, 1 failed\n", #name); \
    return 1;                                             \
  }

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);  // lines as they come, whatever happens next
  unsetenv("BN_EMU_ORDER");          // the default order here (the order/ checks set it in children)
  if (argc != 2) {
    fprintf(stderr, "usage: %s path/to/libbitnet_metal_emu.so (built with test/metal_emu/kernels.metal)\n", argv[0]);
    return 2;
  }
  void* h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    printf("FAIL abi/dlopen: %s\n0 checks, 1 failed\n", dlerror());
    return 1;
  }
  SYM(abi, bn_mtl_abi)
  SYM(init, bn_mtl_init)
  SYM(msg, bn_mtl_message)
  SYM(alloc_, bn_mtl_alloc)
  SYM(free_, bn_mtl_free)
  SYM(sync_, bn_mtl_synchronize)
  SYM(gemm, bn_mtl_gemm)
  SYM(library, bn_mtl_library)
  SYM(pipeline, bn_mtl_pipeline)
  SYM(dispatch, bn_mtl_dispatch)

  // -- the device --
  check(abi() == BN_MTL_ABI, "abi/version", "%d, want %d", abi(), BN_MTL_ABI);
  bn_mtl_info info;
  memset(&info, 0xff, sizeof info);
  const int32_t ist = init(&info);
  check(ist == 0 && !strcmp(info.name, "bitnet Metal emulator (CPU)") && info.unified == 1 && info.reserved == 0 && info.max_buffer == 4ull << 30 &&
            info.recommended_working_set == 8ull << 30,
        "abi/info", "status %d, name %.128s, unified %u, max buffer %llu", ist, info.name, info.unified, (unsigned long long)info.max_buffer);

  // -- the library: once a process, so the refusal of an empty source is tried in a child --
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    const int ok = library("", 0) == BN_MTL_INVALID && strstr(msg(), "no kernel source") && library("x", 1) == BN_MTL_INVALID &&
                   !pipeline("t_grid", 0, 0) && !strcmp(msg(), "no library");
    _exit(ok ? 0 : 1);
  }
  int status;
  waitpid(pid, &status, 0);
  check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "library/empty-source-refused-for-good", "child status %#x", status);
  check(!pipeline("t_grid", 0, 0) && !strcmp(msg(), "no library"), "library/pipeline-before-library", "%s", msg());
  check(library("kernel text", 11) == 0, "library/compiles", "%s", msg());
  check(library("", 0) == 0, "library/first-answer-kept", "%s", msg());
  check(!pipeline("nope", 0, 0) && !strcmp(msg(), "no kernel named nope"), "library/unknown-kernel", "%s", msg());
  void* kg = pipe_("t_grid");
  check(kg != NULL && pipeline("t_grid", 0, 0) == kg, "library/pipeline-kept", "%p", kg);

  // -- the order threads run in between barriers (before any work runs here: the order is read then) --
  int stale = race_in_child("forward");
  check(stale == 4 * 255, "order/forward", "%d of 1024 reads stale, want 1020 (each thread runs before its neighbour)", stale);
  stale = race_in_child("reverse");
  check(stale == 4, "order/reverse", "%d of 1024 reads stale, want 4 (only the last thread's, of thread 0)", stale);
  stale = race_stale();
  check(stale == 2 * 255 + 2, "order/alternate", "%d of 1024 reads stale, want 512 (groups 0 and 2 forward, 1 and 3 reverse)", stale);

  // -- memory --
  char* m1 = alloc_(100, 256);
  check(m1 && ((uintptr_t)m1 & 255) == 0, "memory/alignment", "%p", (void*)m1);
  check(!alloc_(100, 48) && strstr(msg(), "power of two"), "memory/alignment-not-power-of-two", "%s", msg());
  check(!alloc_(5ull << 30, 16) && strstr(msg(), "beyond this device's limit"), "memory/beyond-max-buffer", "%s", msg());
  check(!alloc_(0, 16), "memory/zero-bytes", "%s", msg());
  check(free_(m1 + 50) == 0, "memory/free-inside", "%s", msg());
  check(free_(m1) == BN_MTL_INVALID && strstr(msg(), "not in a live Metal buffer"), "memory/double-free", "%s", msg());
  int stack_var = 0;
  check(free_(&stack_var) == BN_MTL_INVALID, "memory/free-stack-address", "%s", msg());

  // -- work is queued until bn_mtl_synchronize, and runs in order --
  const uint32_t n = 100000;
  float* x = alloc_(n * 4, 16);
  float* y = alloc_(n * 4, 16);
  for (uint32_t i = 0; i < n; i++) {
    x[i] = (float)i;
    y[i] = -1;
  }
  struct GridParams gp = {n, 2.0f, 1.0f};
  bn_mtl_arg ga[3] = {{&gp, sizeof gp}, {x, 0}, {y, 0}};
  int32_t st = dispatch(kg, 7, 3, 96, ga, 3);
  gp.a = 100.0f;  // the record was copied at dispatch
  check(st == 0 && y[0] == -1 && y[n - 1] == -1, "queue/nothing-runs-before-synchronize", "status %d, y[0] = %g", st, y[0]);
  st = sync_();
  int bad = 0;
  for (uint32_t i = 0; i < n; i++)
    if (y[i] != 2.0f * (float)i + 1.0f) bad++;
  check(st == 0 && bad == 0, "queue/2d-grid-and-parameters-copied", "status %d (%s), %d wrong", st, st ? msg() : "", bad);
  struct GridParams gp2 = {n, 3.0f, 0.0f};
  bn_mtl_arg ga2[3] = {{&gp2, sizeof gp2}, {y, 0}, {x, 0}};
  gp.a = 2.0f;
  st = dispatch(kg, 5, 1, 256, ga, 3);
  if (st == 0) st = dispatch(kg, 4, 2, 64, ga2, 3);
  if (st == 0) st = sync_();
  bad = 0;
  for (uint32_t i = 0; i < n; i++)
    if (x[i] != 3.0f * (2.0f * (float)i + 1.0f)) bad++;
  check(st == 0 && bad == 0, "queue/in-order", "status %d (%s), %d wrong (the second reads what the first wrote)", st, st ? msg() : "", bad);
  check(sync_() == 0, "queue/synchronize-empty", "%s", msg());
  // Memory freed while work is queued stays until the work ran; a later dispatch may not use it.
  float* z = alloc_(n * 4, 16);
  bn_mtl_arg za[3] = {{&gp, sizeof gp}, {x, 0}, {z, 0}};
  st = dispatch(kg, 4, 1, 128, za, 3);
  check(st == 0 && free_(z) == 0, "queue/free-while-queued", "%s", msg());
  st = dispatch(kg, 4, 1, 128, za, 3);
  check(st == BN_MTL_INVALID && strstr(msg(), "buffer 2") && strstr(msg(), "not in a live Metal buffer"), "queue/dispatch-to-freed", "status %d: %s", st,
        msg());
  check(sync_() == 0, "queue/freed-memory-used-by-queued-work", "%s", msg());

  // -- validation: refused at dispatch, nothing queued --
  bn_mtl_arg bad_size[3] = {{&gp, 8}, {x, 0}, {y, 0}};
  st = dispatch(kg, 1, 1, 32, bad_size, 3);
  check(st == BN_MTL_INVALID && !strcmp(msg(), "t_grid: a parameter record of 8 bytes, the kernel takes 12"), "validation/parameter-size", "%s", msg());
  bn_mtl_arg bad_addr[3] = {{&gp, sizeof gp}, {&stack_var, 0}, {y, 0}};
  st = dispatch(kg, 1, 1, 32, bad_addr, 3);
  check(st == BN_MTL_INVALID && strstr(msg(), "t_grid: buffer 1") && strstr(msg(), "not in a live Metal buffer"), "validation/address-outside-buffers",
        "%s", msg());
  bn_mtl_arg null_addr[3] = {{&gp, sizeof gp}, {x, 0}, {NULL, 0}};
  st = dispatch(kg, 1, 1, 32, null_addr, 3);
  check(st == BN_MTL_INVALID && strstr(msg(), "buffer 2"), "validation/null-address", "%s", msg());
  bn_mtl_arg null_bytes[3] = {{&gp, sizeof gp}, {NULL, 16}, {y, 0}};
  st = dispatch(kg, 1, 1, 32, null_bytes, 3);
  check(st == BN_MTL_INVALID && strstr(msg(), "bytes at NULL"), "validation/inline-bytes-at-null", "%s", msg());
  static char big_inline[4097];
  bn_mtl_arg too_inline[3] = {{&gp, sizeof gp}, {big_inline, sizeof big_inline}, {y, 0}};
  st = dispatch(kg, 1, 1, 32, too_inline, 3);
  check(st == BN_MTL_INVALID && strstr(msg(), "at most 4096"), "validation/inline-over-4k", "%s", msg());
  bn_mtl_arg seven[7] = {{&gp, sizeof gp}, {x, 0}, {y, 0}, {y, 0}, {y, 0}, {y, 0}, {y, 0}};
  st = dispatch(kg, 1, 1, 32, seven, 7);
  check(st == BN_MTL_INVALID && strstr(msg(), "7 buffers"), "validation/seven-buffers", "%s", msg());
  st = dispatch(kg, 1, 1, 32, ga, 0);
  check(st == BN_MTL_INVALID && strstr(msg(), "no buffer 0"), "validation/no-parameters", "%s", msg());
  st = dispatch(kg, 1, 1, 1025, ga, 3);
  check(st == BN_MTL_INVALID && strstr(msg(), "1025 threads"), "validation/1025-threads", "%s", msg());
  check(dispatch(kg, 1, 1, 0, ga, 3) == BN_MTL_INVALID, "validation/0-threads", "%s", msg());
  check(dispatch(kg, 0, 1, 32, ga, 3) == BN_MTL_INVALID && dispatch(kg, 1, 0, 32, ga, 3) == BN_MTL_INVALID, "validation/0-groups", "%s", msg());
  st = dispatch((void*)&gp, 1, 1, 32, ga, 3);
  check(st == BN_MTL_INVALID && strstr(msg(), "not a pipeline"), "validation/not-a-pipeline", "%s", msg());
  st = gemm(2, 1, 1, 1, x, 4, 0, x, 4, 0, y, 4);
  check(st == BN_MTL_INVALID && strstr(msg(), "dtype"), "validation/gemm-dtype", "%s", msg());
  st = gemm(0, 1, 1, 1, &stack_var, 4, 0, x, 4, 0, y, 4);
  check(st == BN_MTL_INVALID && strstr(msg(), "gemm: A") && strstr(msg(), "not in a live Metal buffer"), "validation/gemm-address", "%s", msg());
  y[0] = -7;
  st = gemm(0, 1, 1, 0, x, 4, 0, x, 4, 0, y, 4);
  check(st == 0, "validation/gemm-k-0-nothing", "%s", msg());
  st = sync_();
  check(st == 0 && y[0] == -7, "validation/nothing-queued-by-refusals", "status %d (%s), y[0] = %g", st, st ? msg() : "", y[0]);

  // -- threadgroup memory, barriers, simd_sum across simdgroups --
  test_reduce(100000, 1000, 256);
  test_reduce(3000, 1000, 100);  // a partial last simdgroup
  test_reduce(50, 7, 1);
  test_reduce(70000, 7000, 1024);

  // -- every simdgroup function, whole and partial simdgroups --
  test_simd(3, 100);
  test_simd(2, 64);
  test_simd(1, 1024);
  test_simd(1, 1);
  test_simd(2, 33);

  // -- misuse fails the command (naming the kernel and the group) instead of hanging; later work runs --
  float* d = alloc_(4096 * 4, 16);
  struct SimdParams dp = {10};
  bn_mtl_arg da[2] = {{&dp, sizeof dp}, {d, 0}};
  st = dispatch(pipe_("t_diverge"), 2, 1, 64, da, 2);
  if (st == 0) st = dispatch(kg, 7, 3, 96, ga, 3);
  for (uint32_t i = 0; i < n; i++) y[i] = -1;
  if (st == 0) st = sync_();
  printf("# t_diverge: %s\n", msg());
  check(st == BN_MTL_FAILED && strstr(msg(), "t_diverge: group (0, 0)") && strstr(msg(), "threadgroup_barrier"), "misuse/return-before-barrier",
        "status %d: %s", st, msg());
  check(y[0] == 2.0f * x[0] + 1.0f && y[n - 1] == 2.0f * x[n - 1] + 1.0f, "misuse/work-after-failure-runs", "y[n-1] = %g", y[n - 1]);
  dp.n = 64;
  st = run(pipe_("t_diverge"), 2, 1, 64, da, 2);
  check(st == 0 && d[0] == 1.0f, "misuse/every-thread-at-barrier-is-fine", "status %d (%s), d[0] = %g", st, st ? msg() : "", d[0]);
  dp.n = 16;
  st = run(pipe_("t_diverge_simd"), 2, 1, 64, da, 2);
  printf("# t_diverge_simd: %s\n", msg());
  check(st == BN_MTL_FAILED && strstr(msg(), "t_diverge_simd") && strstr(msg(), "simdgroup function"), "misuse/return-before-simd-function",
        "status %d: %s", st, msg());
  dp.n = 32;
  st = run(pipe_("t_diverge_simd"), 2, 1, 64, da, 2);
  check(st == 0 && d[5] == 496.0f && d[32 + 7] == 496.0f, "misuse/every-lane-at-simd-function-is-fine", "status %d (%s), d[5] = %g", st, st ? msg() : "", d[5]);
  st = run(pipe_("t_mismatch"), 1, 1, 32, da, 2);
  printf("# t_mismatch: %s\n", msg());
  check(st == BN_MTL_FAILED && strstr(msg(), "t_mismatch") && strstr(msg(), "different simdgroup functions") && strstr(msg(), "simd_max") &&
            strstr(msg(), "simd_sum"),
        "misuse/different-simd-functions", "status %d: %s", st, msg());
  st = run(pipe_("t_barrier_simd"), 1, 1, 64, da, 2);
  printf("# t_barrier_simd: %s\n", msg());
  check(st == BN_MTL_FAILED && strstr(msg(), "t_barrier_simd") && strstr(msg(), "threadgroup_barrier") && strstr(msg(), "simdgroup function"),
        "misuse/barrier-and-simd-function", "status %d: %s", st, msg());
  test_simd(3, 100);  // the fibers left inside a kernel start afresh
  test_reduce(3000, 1000, 100);

  // -- the language (emu.h) --
  float* mo = alloc_(16 * 4, 16);
  struct MathParams mp = {1, 3};
  bn_mtl_arg ma[2] = {{&mp, sizeof mp}, {mo, 0}};
  st = run(pipe_("t_math"), 2, 1, 33, ma, 2);
  const float me[16] = {1.0f, 3, 2.5f, 3, -1, -2, expf(1.0f), 0.5f, 3 + 29, 1.0f, 2.0f, 0.5f + 4, -5 + 4, 1, 10 + 30, 2 + 1.5f + 2 + 3};
  bad = 0;
  for (int i = 0; st == 0 && i < 16; i++)
    if (mo[i] != me[i] && bad++ < 5) printf("# t_math %d = %g, want %g\n", i, mo[i], me[i]);
  check(st == 0 && bad == 0, "language/overloads", "status %d (%s), %d wrong", st, st ? msg() : "", bad);
  float* vo = alloc_(16 * 4, 16);
  struct SimdParams p0 = {0};
  bn_mtl_arg va[2] = {{&p0, sizeof p0}, {vo, 0}};
  st = run(pipe_("t_vec"), 1, 1, 32, va, 2);
  const float ve[16] = {1, -2, 3, -4, 0.5f, 1.5f, 2, 3.5f, 0.25f, 4, 7, 9, 0, 2, 0.5f - 3.0f, 3};
  bad = 0;
  for (int i = 0; st == 0 && i < 16; i++)
    if (vo[i] != ve[i] && bad++ < 5) printf("# t_vec %d = %g, want %g\n", i, vo[i], ve[i]);
  check(st == 0 && bad == 0, "language/vector-constructors", "status %d (%s), %d wrong", st, st ? msg() : "", bad);
  {
    float* co = alloc_(3 * 96 * 4, 16);
    uint32_t* counter = alloc_(4, 16);
    float* in = alloc_(4, 16);
    uint32_t* tmax = alloc_(3 * 4, 16);
    *counter = 0;
    *in = 0.5f;
    bn_mtl_arg cargs[5] = {{&p0, sizeof p0}, {co, 0}, {counter, 0}, {in, 0}, {tmax, 0}};
    st = run(pipe_("t_constructs"), 3, 1, 96, cargs, 5);
    bad = 0;
    for (int i = 0; st == 0 && i < 3 * 96; i++)
      if (!isfinite(co[i]) || co[i] <= 0) bad++;
    check(st == 0 && bad == 0 && *counter == 3 * 96 && tmax[0] == 95 && tmax[1] == 95 && tmax[2] == 95, "language/constructs-and-atomics",
          "status %d (%s), %d outputs not finite and positive, device counter %u (want 288), threadgroup max %u %u %u (want 95)", st, st ? msg() : "",
          bad, *counter, tmax[0], tmax[1], tmax[2]);
  }

  // -- simdgroup matrices --
  {
    float* a = alloc_(16 * 8 * 4, 16);
    float* bt = alloc_(16 * 8 * 4, 16);
    float* c = alloc_(16 * 16 * 4, 16);
    for (int i = 0; i < 128; i++) {
      a[i] = (float)(i % 7) - 3;
      bt[i] = (float)(i % 5) - 2;
    }
    bn_mtl_arg args[4] = {{&p0, sizeof p0}, {a, 0}, {bt, 0}, {c, 0}};
    st = run(pipe_("t_mma"), 1, 1, 128, args, 4);
    bad = 0;
    for (int i = 0; st == 0 && i < 16; i++)
      for (int j = 0; j < 16; j++) {
        float e = 1;
        for (int k = 0; k < 8; k++) e += a[i * 8 + k] * bt[j * 8 + k];
        if (c[i * 16 + j] != e) bad++;
      }
    check(st == 0 && bad == 0, "mma/load-transpose-multiply-accumulate-store", "status %d (%s), %d of 256 wrong", st, st ? msg() : "", bad);
  }

  // -- the MPS product stand-in, every transpose, f32 and f16 --
  for (int f16 = 0; f16 < 2; f16++)
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++) test_gemm(f16, ta, tb);

  // -- several threads queue and synchronize at once --
  pthread_t th[4];
  for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, worker, (void*)(uintptr_t)(i + 1));
  for (int i = 0; i < 4; i++) {
    void* r;
    pthread_join(th[i], &r);
    check(r == NULL, nm("threads/worker-%d", i), "%ld wrong", (long)r);
  }

  // -- cost: 1000 groups x 256 threads (notes only, besides the runs succeeding) --
  float* bo = alloc_(1000 * 256 * 4, 16);
  for (uint32_t rounds = 0; rounds <= 4; rounds += 4) {
    struct BenchParams bp = {1000 * 256, rounds};
    bn_mtl_arg ba[2] = {{&bp, sizeof bp}, {bo, 0}};
    double best = 1e9;
    st = 0;
    for (int rep = 0; rep < 3 && st == 0; rep++) {
      const double t0 = now();
      st = run(pipe_("t_bench"), 1000, 1, 256, ba, 2);
      if (now() - t0 < best) best = now() - t0;
    }
    check(st == 0, nm("cost/barriers-%u", rounds), "%s", msg());
    printf("# t_bench, 1000 groups x 256 threads, %u barriers: %.1f ms (best of 3)\n", rounds, best * 1e3);
  }
  {
    struct BenchParams bp = {1000 * 256, 1};
    bn_mtl_arg ba[2] = {{&bp, sizeof bp}, {bo, 0}};
    double best = 1e9;
    st = 0;
    for (int rep = 0; rep < 3 && st == 0; rep++) {
      const double t0 = now();
      st = run(pipe_("t_bench_simd"), 1000, 1, 256, ba, 2);
      if (now() - t0 < best) best = now() - t0;
    }
    check(st == 0, "cost/shuffles", "%s", msg());
    printf("# t_bench_simd, 1000 groups x 256 threads, 10 shuffles + 2 barriers: %.1f ms (best of 3)\n", best * 1e3);
  }

  printf("%d checks, %d failed\n", checks, failures);
  return failures != 0;
}
