/*
 * The C ABI of the Metal shim (metal/shim.m), which zig/gpu/metal.zig opens with dlopen at run time
 * (libbitnet_metal.dylib next to libbitnet, or $BITNET_METAL_SHIM). It mirrors what the engine asks
 * of the CUDA driver (zig/gpu/cuda.zig): find the device, map memory for the device pool, queue
 * work, wait for it, a matrix product from the vendor library (MPS here, cuBLAS there), and the
 * engine's own kernels: metal/kernels.metal, which the engine hands over as source text (compiled
 * at run time, as NVRTC compiles the CUDA kernels) and launches by name.
 *
 * Memory is MTLBuffer storage in shared mode: on Apple's unified memory the CPU and the GPU see the
 * same bytes, so bn_mtl_alloc returns the buffer's CPU address and every other call names memory by
 * such addresses (any address inside a live buffer); the shim maps them back to (buffer, offset).
 * Work is queued in one command buffer at a time and runs in order; the CPU must not touch memory
 * the queued work uses before bn_mtl_synchronize returns (zig/gpu/metal.zig synchronizes before
 * every host read or write of device memory).
 *
 * Every function that can fail returns 0 on success or a nonzero status, with a message that
 * bn_mtl_message() returns until the next call on the same thread.
 */
#ifndef BN_METAL_H
#define BN_METAL_H
#include <stdint.h>

#define BN_MTL_ABI 2

typedef struct bn_mtl_info {
  char name[128];                   /* MTLDevice.name, NUL-terminated */
  uint64_t recommended_working_set; /* recommendedMaxWorkingSetSize, bytes */
  uint64_t max_buffer;              /* maxBufferLength, bytes */
  uint32_t unified;                 /* hasUnifiedMemory */
  uint32_t reserved;                /* 0 */
} bn_mtl_info;

/* Statuses (the engine maps them to its own: zig/gpu/metal.zig). */
enum { BN_MTL_OK = 0, BN_MTL_UNAVAILABLE = 1, BN_MTL_OUT_OF_MEMORY = 2, BN_MTL_INVALID = 3, BN_MTL_FAILED = 4 };

/* BN_MTL_ABI of the shim (the engine refuses another). */
int32_t bn_mtl_abi(void);
/* Opens Metal.framework and MetalPerformanceShaders.framework, the system default device and its
 * command queue (once; later calls return the same answer) and fills info. */
int32_t bn_mtl_init(bn_mtl_info* info);
/* The message of the last failure on this thread ("" when none). */
const char* bn_mtl_message(void);
/* A shared-storage buffer of at least `bytes`, returned at an address aligned to `alignment` (a
 * power of two); NULL when Metal refuses (message). */
void* bn_mtl_alloc(uint64_t bytes, uint64_t alignment);
/* Releases the buffer holding p (an address bn_mtl_alloc returned); BN_MTL_INVALID when none does. */
int32_t bn_mtl_free(void* p);
/* Commits the queued work and waits for it; a failed command buffer's error becomes the message. */
int32_t bn_mtl_synchronize(void);
/* Queues C = op(A) · op(B) on MPS (MPSMatrixMultiplication), row-major: op(A) is m × k, op(B)
 * k × n, C m × n. A is stored as k × m rows when trans_a (else m × k), B as n × k when trans_b
 * (else k × n); ld* are row strides in bytes. dtype 0: float32, 1: float16. */
int32_t bn_mtl_gemm(uint32_t dtype, uint64_t m, uint64_t n, uint64_t k, const void* a, uint64_t lda, uint32_t trans_a, const void* b, uint64_t ldb, uint32_t trans_b, void* c, uint64_t ldc);

/* A kernel argument: buffer index i of a dispatch binds args[i]. bytes > 0: the `bytes` bytes at ptr
 * are copied into the command (setBytes; the kernels' parameter records, at most 4 KiB); bytes == 0:
 * ptr is a device address (inside a live buffer from bn_mtl_alloc) bound with its offset. */
typedef struct bn_mtl_arg {
  const void* ptr;
  uint64_t bytes;
} bn_mtl_arg;

/* Compiles the kernels' Metal Shading Language source (fast math off: IEEE results, as the CPU's)
 * into the library that bn_mtl_pipeline reads. Once a process: later calls return the first
 * answer. A compiler error is the message. */
int32_t bn_mtl_library(const char* source, uint64_t length);
/* The compute pipeline of kernel `name` of the library (built on first request, then kept);
 * NULL when there is none (message). max_threads: the pipeline's maxTotalThreadsPerThreadgroup;
 * simd_width: its threadExecutionWidth (32 on Apple GPUs). */
void* bn_mtl_pipeline(const char* name, uint32_t* max_threads, uint32_t* simd_width);
/* Queues `pipeline` over groups_x × groups_y threadgroups of `threads` threads each (one
 * dimension), with buffers 0 .. nargs-1 bound from args. Runs after the work queued before it. */
int32_t bn_mtl_dispatch(void* pipeline, uint32_t groups_x, uint32_t groups_y, uint32_t threads, const bn_mtl_arg* args, uint32_t nargs);

#endif
