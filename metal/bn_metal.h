/*
 * The C ABI of the Metal shim (metal/shim.m), which zig/gpu/metal.zig opens with dlopen at run time
 * (libbitnet_metal.dylib next to libbitnet, or $BITNET_METAL_SHIM). It mirrors what the engine asks
 * of the CUDA driver (zig/gpu/cuda.zig): find the device, map memory for the device pool, queue
 * work, wait for it, and a matrix product from the vendor library (MPS here, cuBLAS there).
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

#define BN_MTL_ABI 1

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

#endif
