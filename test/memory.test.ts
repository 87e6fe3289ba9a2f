import { describe, expect, test } from "bun:test";
import * as bn from "../src/index.ts";

const stats = () => bn.memory.stats();

describe("lifetime", () => {
  test("dispose releases exactly once; use after dispose throws; twice is harmless", () => {
    bn.memory.collect(); // also resets the allocation-pressure counter: no collection mid-test
    const s0 = stats();
    const t = bn.zeros([100]);
    expect(stats().liveTensors).toBe(s0.liveTensors + 1);
    t.dispose();
    t.dispose();
    const s1 = stats();
    expect(s1.liveTensors).toBe(s0.liveTensors);
    expect(s1.frees - s0.frees).toBe(1);
    expect(s1.allocations - s0.allocations).toBe(1);
    expect(t.disposed).toBe(true);
    expect(() => t.toArray()).toThrow(bn.DisposedTensorError);
    expect(() => t.reshape([10, 10])).toThrow(bn.DisposedTensorError);
    expect(() => t.data).toThrow(/used after dispose/);
    expect(() => t.device).toThrow(bn.DisposedTensorError);
    expect(() => bn.concat([t])).toThrow(bn.DisposedTensorError);
    expect(String(t)).toContain("disposed");
  });

  test("`using` disposes at the end of the block", () => {
    bn.memory.collect();
    const before = stats().liveTensors;
    {
      using a = bn.ones([8]);
      expect(stats().liveTensors).toBe(before + 1);
      expect(a.size).toBe(8);
    }
    expect(stats().liveTensors).toBe(before);
  });

  test("views keep storage alive until the last one is disposed", () => {
    bn.memory.collect();
    const s0 = stats();
    const base = bn.arange(12);
    const v = base.reshape([3, 4]);
    const w = v.T;
    base.dispose();
    expect(stats().frees).toBe(s0.frees);
    expect(w.toArray()).toEqual([[0, 4, 8], [1, 5, 9], [2, 6, 10], [3, 7, 11]]);
    v.dispose();
    expect(stats().frees).toBe(s0.frees);
    w.dispose();
    expect(stats().frees).toBe(s0.frees + 1);
    expect(stats().liveTensors).toBe(s0.liveTensors);
  });

  test("t.data keeps memory alive after dispose until the array is unreachable", async () => {
    bn.memory.collect(); // baseline without garbage left by earlier tests
    const s0 = stats();
    let arr: Float32Array | undefined;
    (() => {
      using t = bn.full([1000], 3);
      arr = t.data as Float32Array;
    })();
    // Disposed, but the array still reads valid memory: nothing was freed.
    expect(stats().frees).toBe(s0.frees);
    bn.memory.collect();
    expect(arr![999]).toBe(3);
    const held = bn.memory.liveAllocations().filter((a) => a.heldByData);
    expect(held.length).toBeGreaterThanOrEqual(1);
    arr = undefined;
    // Once unreachable, a collection frees it.
    let freed = 0;
    for (let i = 0; i < 10 && freed === 0; i++) {
      await Bun.sleep(1);
      freed = bn.memory.collect();
    }
    expect(freed).toBeGreaterThanOrEqual(1);
    expect(stats().liveTensors).toBeLessThanOrEqual(s0.liveTensors);
  });

  test("the garbage collector releases tensors that were never disposed", async () => {
    bn.memory.collect();
    const s0 = stats();
    (() => {
      for (let i = 0; i < 200; i++) bn.zeros([64]);
    })();
    expect(stats().liveTensors).toBeGreaterThanOrEqual(s0.liveTensors + 1);
    let freed = 0;
    // The collector scans the stack conservatively: yield to the event loop between tries so no
    // stale stack slot keeps a handle alive.
    for (let i = 0; i < 20 && (stats().liveTensors > s0.liveTensors || freed < 200 - 10); i++) {
      await Bun.sleep(1);
      freed += bn.memory.collect();
    }
    expect(freed).toBeGreaterThanOrEqual(200 - 10);
    // <=: garbage left by earlier tests that the baseline collection missed may go too.
    expect(stats().liveTensors).toBeLessThanOrEqual(s0.liveTensors);
  });
});

describe("pool metrics and control", () => {
  test("stats count allocations, frees, hits and misses", () => {
    const s0 = stats();
    const a = bn.empty([16]);
    a.dispose();
    const b = bn.empty([16]); // same size class: served from the cache
    const s1 = stats();
    expect(s1.allocations - s0.allocations).toBe(2);
    expect(s1.poolHits - s0.poolHits).toBeGreaterThanOrEqual(1);
    expect(s1.bytesInUse).toBeGreaterThanOrEqual(s0.bytesInUse + 64);
    expect(s1.peakBytes).toBeGreaterThanOrEqual(s1.bytesInUse);
    b.dispose();
    expect(stats().bytesInUse).toBe(s0.bytesInUse);
  });

  test("trim returns cached memory: reserved <= 1.05 x in use after a mixed workload", () => {
    bn.memory.collect();
    const keep: bn.Tensor[] = [];
    const drop: bn.Tensor[] = [];
    const sizes = [3, 17, 100, 1000, 5000, 40_000, 300_000, 1_500_000];
    for (let round = 0; round < 6; round++) {
      for (const n of sizes) {
        (round % 2 === 0 ? drop : keep).push(bn.empty([n]));
        drop.push(bn.empty([n + round]));
      }
    }
    for (const t of drop) t.dispose();
    const before = stats();
    expect(before.bytesReserved).toBeGreaterThan(before.bytesInUse);
    bn.memory.trim();
    const after = stats();
    expect(after.bytesReserved).toBeLessThan(before.bytesReserved);
    expect(after.bytesReserved).toBeLessThanOrEqual(1.05 * after.bytesInUse);
    for (const t of keep) t.dispose();
    bn.memory.trim();
  });

  test("setLimit: past the limit an allocation throws OutOfMemoryError and changes nothing", () => {
    bn.memory.collect();
    const s0 = stats();
    bn.memory.setLimit(s0.bytesInUse + 4 * 1024 * 1024);
    try {
      const a = bn.empty([512 * 1024]); // 2 MiB
      expect(() => bn.zeros([1024 * 1024])).toThrow(bn.OutOfMemoryError);
      expect(() => bn.zeros([1024 * 1024])).toThrow(/memory limit/);
      expect(stats().allocations).toBe(s0.allocations + 1);
      a.dispose();
      using b = bn.zeros([768 * 1024]); // fits again
      expect(b.size).toBe(768 * 1024);
    } finally {
      bn.memory.setLimit(0);
    }
    expect(stats().limit).toBe(0);
  });

  test("at the limit, unreachable tensors are collected before giving up", () => {
    bn.memory.collect();
    const s0 = stats();
    bn.memory.setLimit(s0.bytesInUse + 3 * 1024 * 1024);
    try {
      for (let i = 0; i < 20; i++) bn.empty([256 * 1024]); // 1 MiB each, never disposed
      expect(stats().bytesInUse).toBeLessThanOrEqual(s0.bytesInUse + 3 * 1024 * 1024);
    } finally {
      bn.memory.setLimit(0);
      bn.memory.collect();
    }
  });

  test("liveAllocations reports size, dtype, shape and tag", () => {
    const t = bn.memory.withTag("weights", () => bn.zeros([3, 5], { dtype: "i16" }));
    const entry = bn.memory.liveAllocations().find((a) => a.tag === "weights");
    expect(entry).toBeDefined();
    expect(entry!.dtype).toBe("i16");
    expect(entry!.shape).toEqual([3, 5]);
    expect(entry!.bytes).toBe(30);
    expect(entry!.device).toBe("cpu");
    t.dispose();
    expect(bn.memory.liveAllocations().find((a) => a.tag === "weights")).toBeUndefined();
  });

  test("resetPeak and bad arguments", () => {
    bn.memory.resetPeak();
    expect(stats().peakBytes).toBe(stats().bytesInUse);
    expect(() => bn.memory.setLimit(-1)).toThrow(bn.BitNetError);
    expect(() => bn.memory.setLimit(1.5)).toThrow(bn.ValueError);
    expect(() => bn.memory.stats("cuda:7")).toThrow(bn.DeviceError);
    expect(() => bn.zeros([2], { device: "cuda:7" })).toThrow(bn.DeviceError);
  });
});

describe("failing calls leak nothing and change nothing", () => {
  test("every bad call leaves the pool and the operand as they were", () => {
    using t = bn.arange(6).reshape([2, 3]);
    bn.memory.collect();
    const s0 = stats();
    const before = t.toArray();
    const bad: (() => unknown)[] = [
      () => bn.zeros([-1]),
      () => bn.tensor([[1], [2, 3]]),
      () => bn.tensor([1, 2], { shape: [3] }),
      () => bn.tensor([1], { dtype: "x" as never }),
      () => t.reshape([7]),
      () => t.view([3, 2, 2]),
      () => t.slice([5]),
      () => t.expand([3, 3]),
      () => t.astype("q" as never),
      () => bn.concat([t, bn.zeros([3, 3])], 1),
      () => bn.rand([2], { dtype: "u8" }),
      () => bn.arange(0, 1, 0),
      () => t.to("cuda:7"),
    ];
    for (const f of bad) expect(f).toThrow(bn.BitNetError);
    bn.memory.collect();
    const s1 = stats();
    // <=: the second collection may also free garbage the first one missed.
    expect(s1.liveTensors).toBeLessThanOrEqual(s0.liveTensors);
    expect(s1.bytesInUse).toBeLessThanOrEqual(s0.bytesInUse);
    expect(s1.allocations - s0.allocations).toBe(s1.frees - s0.frees);
    expect(t.toArray()).toEqual(before);
  });
});
