// Garbage-collector pressure under a memory limit (src/memory.ts): with bn.memory.setLimit, a loop
// that makes far more tensors than fit WITHOUT disposing them completes, because an allocation the
// pool refuses first collects the unreachable tensors; the pool's peak never passes the limit;
// reachable tensors are never collected (holding more than the limit is an OutOfMemoryError and
// the held tensors keep their values); setLimit(0) removes the cap.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import * as bn from "../src/index.ts";

const MiB = 1024 * 1024;
const ELEMS = 65536; // f32: 256 KiB a tensor (a large block: rounded to itself by the pool)
const TENSOR_BYTES = ELEMS * 4;

let previousLimit = 0;
let base = 0;
beforeEach(() => {
  previousLimit = bn.memory.stats().limit;
  bn.memory.collect(); // garbage of earlier tests must not count against the limit
  base = bn.memory.stats().bytesInUse;
});
afterEach(() => {
  bn.memory.setLimit(previousLimit);
  bn.memory.collect();
});

/** Asserts a ring of reachable tensors still holds the values they were filled with. */
function checkRing(ring: { t: bn.Tensor; v: number }[]): void {
  for (const { t, v } of ring) {
    using lo = bn.min(t);
    using hi = bn.max(t);
    expect([lo.item(), hi.item()]).toEqual([v, v]);
  }
}

describe("garbage collection under a memory limit", () => {
  test("setLimit(0) means no limit; stats().limit reports the cap", () => {
    bn.memory.setLimit(base + 4 * MiB);
    expect(bn.memory.stats().limit).toBe(base + 4 * MiB);
    expect(() => bn.empty([(5 * MiB) / 4])).toThrow(bn.OutOfMemoryError); // 5 MiB: over the cap
    bn.memory.setLimit(0);
    expect(bn.memory.stats().limit).toBe(0);
    using big = bn.zeros([16 * ELEMS]); // 16 MiB, four times the old cap
    expect(big.size).toBe(16 * ELEMS);
  });

  test("2000 × 256 KiB tensors never disposed, under a 32 MiB limit: no OutOfMemoryError, peak ≤ limit", () => {
    const limit = base + 32 * MiB;
    bn.memory.setLimit(limit);
    bn.memory.resetPeak();
    const s0 = bn.memory.stats();
    expect(s0.peakBytes).toBe(base);
    const N = 2000;
    const ring: { t: bn.Tensor; v: number }[] = [];
    let made = 0;
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const t = bn.full([ELEMS], i % 1000); // dropped without dispose (unless kept in the ring)
      made++;
      // Keep the last 8 reachable: the collector must never free those.
      ring.push({ t, v: i % 1000 });
      if (ring.length > 8) ring.shift();
      if (i % 97 === 0) checkRing(ring);
      expect(bn.memory.stats().bytesInUse).toBeLessThanOrEqual(limit);
    }
    const ms = performance.now() - t0;
    checkRing(ring);
    const s1 = bn.memory.stats();
    console.log(
      `gc_pressure: ${made} × ${TENSOR_BYTES / 1024} KiB (${(made * TENSOR_BYTES) / MiB} MiB) under a ${(limit - base) / MiB} MiB limit in ${ms.toFixed(0)} ms: ` +
        `peak ${s1.peakBytes} bytes (${(s1.peakBytes / MiB).toFixed(2)} MiB, limit ${limit}), ${s1.frees - s0.frees} frees, ${s1.liveTensors} live`,
    );
    expect(made).toBe(N);
    expect(s1.peakBytes).toBeLessThanOrEqual(limit);
    // The limit was really reached (so the collector had to run), and nearly everything was freed.
    expect(s1.peakBytes).toBeGreaterThan(base + 16 * MiB);
    expect(s1.allocations - s0.allocations).toBeGreaterThanOrEqual(N);
    expect(s1.frees - s0.frees).toBeGreaterThanOrEqual(N - (limit - base) / TENSOR_BYTES);
    // What is still allocated fits the limit; dropping the ring and collecting returns to the start.
    ring.length = 0;
    bn.memory.collect();
    expect(bn.memory.stats().bytesInUse).toBe(base);
  });

  test("tensors whose .data arrays were handed out and dropped are collected too", () => {
    const limit = base + 16 * MiB;
    bn.memory.setLimit(limit);
    bn.memory.resetPeak();
    let checksum = 0;
    for (let i = 0; i < 600; i++) {
      const t = bn.full([ELEMS], i);
      const d = t.data as Float32Array; // exported: only the collector may free this block now
      checksum += d[i % ELEMS]! - i;
      if (i % 3 === 0) t.dispose(); // dispose does not free an exported block either
    }
    const s = bn.memory.stats();
    console.log(`gc_pressure: 600 × 256 KiB with .data exported under a 16 MiB limit: peak ${s.peakBytes} bytes`);
    expect(checksum).toBe(0);
    expect(s.peakBytes).toBeLessThanOrEqual(limit);
    expect(s.peakBytes).toBeGreaterThan(base + 8 * MiB);
  });

  test("reachable tensors are never collected: holding more than the limit is an OutOfMemoryError", () => {
    const limit = base + 8 * MiB;
    bn.memory.setLimit(limit);
    bn.memory.resetPeak();
    const held: bn.Tensor[] = [];
    let err: unknown;
    try {
      for (let i = 0; i < 64; i++) held.push(bn.full([ELEMS], i));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(bn.OutOfMemoryError);
    expect(err).toBeInstanceOf(bn.BitNetError);
    expect(held.length).toBe((limit - base) / TENSOR_BYTES); // exactly 32 fit
    expect(bn.memory.stats().peakBytes).toBe(limit);
    bn.memory.setLimit(0); // room for the checks' results
    held.forEach((t, i) => {
      using m = bn.max(t);
      expect(m.item()).toBe(i);
    });
    for (const t of held) t.dispose();
    expect(bn.memory.stats().bytesInUse).toBe(base);
  });
});
