/*
 * The table of live buffers of the Metal shim (metal/shim.m) and of its CPU emulator (metal/emu.cpp):
 * address ranges [lo, hi) sorted by lo, so that any address inside a buffer maps back to it, and
 * bn_mtl_alloc's size rule. One implementation for both, so the emulator's tests exercise the
 * shim's. Not thread-safe: the callers hold their lock. C (the shim) and C++ (the emulator).
 */
#ifndef BN_METAL_RANGES_H
#define BN_METAL_RANGES_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_metal.h"

typedef struct bn_range {
  uintptr_t lo, hi; /* [base, base + length) */
  void* owner;      /* the shim's MTLBuffer; the emulator's malloc block (= lo) */
} bn_range;

typedef struct bn_range_table {
  bn_range* at;
  size_t n, cap;
} bn_range_table;

/* Index of the range holding p, or -1. */
static inline long bn_range_find(const bn_range_table* t, uintptr_t p) {
  size_t lo = 0, hi = t->n;
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (t->at[mid].hi <= p) lo = mid + 1;
    else hi = mid;
  }
  return lo < t->n && t->at[lo].lo <= p && p < t->at[lo].hi ? (long)lo : -1;
}

/* Adds [lo, hi) in order: 0, or -1 when there is no host memory for the table. */
static inline int bn_range_insert(bn_range_table* t, uintptr_t lo, uintptr_t hi, void* owner) {
  if (t->n == t->cap) {
    const size_t cap = t->cap ? 2 * t->cap : 64;
    bn_range* grown = (bn_range*)realloc(t->at, cap * sizeof(bn_range));
    if (!grown) return -1;
    t->at = grown;
    t->cap = cap;
  }
  size_t at = t->n;
  while (at > 0 && t->at[at - 1].lo > lo) at--;
  memmove(t->at + at + 1, t->at + at, (t->n - at) * sizeof(bn_range));
  t->at[at].lo = lo;
  t->at[at].hi = hi;
  t->at[at].owner = owner;
  t->n++;
  return 0;
}

/* Removes range i and returns its owner. */
static inline void* bn_range_remove(bn_range_table* t, size_t i) {
  void* owner = t->at[i].owner;
  memmove(t->at + i, t->at + i + 1, (t->n - i - 1) * sizeof(bn_range));
  t->n--;
  return owner;
}

/* bn_mtl_alloc's rule: a block of `bytes` at `*alignment` (raised to 16; a power of two) takes
 * bytes + alignment of a buffer, at most max_buffer. BN_MTL_OK with *total, or the status with
 * the message written to msg. */
static inline int32_t bn_alloc_plan(uint64_t bytes, uint64_t* alignment, uint64_t max_buffer, uint64_t* total, char* msg, size_t msg_len) {
  if (*alignment < 16) *alignment = 16;
  if ((*alignment & (*alignment - 1)) != 0) {
    snprintf(msg, msg_len, "alignment %llu is not a power of two", (unsigned long long)*alignment);
    return BN_MTL_INVALID;
  }
  *total = bytes + *alignment;
  if (bytes == 0 || *total < bytes || *total > max_buffer) {
    snprintf(msg, msg_len, "a Metal buffer of %llu bytes is beyond this device's limit of %llu", (unsigned long long)*total, (unsigned long long)max_buffer);
    return BN_MTL_OUT_OF_MEMORY;
  }
  return BN_MTL_OK;
}

/* The address aligned up inside a block from lo. */
static inline void* bn_align_up(uintptr_t lo, uint64_t alignment) { return (void*)((lo + alignment - 1) & ~(uintptr_t)(alignment - 1)); }

#endif
