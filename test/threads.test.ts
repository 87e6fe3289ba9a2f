// Bun Workers sharing the engine. A Worker imports the library (src/index.ts) in its own thread of
// the same process: bun:ffi opens the same native library, so the memory pool is process-wide
// (each thread has its own mailbox and its own JS-side tensor table). Three workers create,
// compute with (add, matmul, sum) and dispose tensors in a loop while the main thread does the
// same; afterwards every worker's results equal an exact float64 reference computed here, the
// intervals overlapped (so the engine really ran calls from several threads at once), and the
// process-wide pool is back exactly where it started: bytesInUse, allocations = frees, no live
// allocation left from the run.
import { describe, expect, test } from "bun:test";
import * as bn from "../src/index.ts";
import type { Done, IterResult } from "./fixtures/thread_worker.ts";

const WORKERS = 3;
const ITERS = 400;
const N = 24;

/** The worker's operands (the same formula as test/fixtures/thread_worker.ts: integers in [-4, 4]). */
function operand(seed: number, n: number, which: number): number[] {
  const out = new Array<number>(n * n);
  for (let i = 0; i < n * n; i++) out[i] = ((i * (7 + which) + seed * 13 + which * 5) % 9) - 4;
  return out;
}

/** The exact reference of one iteration (float64 over integers: exact, order-free). */
function reference(seed: number, n: number): IterResult {
  const a = operand(seed, n, 0);
  const b = operand(seed, n, 1);
  let sumAdd = 0;
  for (let i = 0; i < n * n; i++) sumAdd += a[i]! + b[i]!;
  const m = new Array<number>(n * n).fill(0);
  const mi = new Array<number>(n * n).fill(0);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k]!;
      const cik = aik + b[i * n + k]!;
      for (let j = 0; j < n; j++) {
        m[i * n + j]! += aik * b[k * n + j]!;
        mi[i * n + j]! += cik * b[k * n + j]!;
      }
    }
  }
  return {
    sumAdd,
    sumMatmul: m.reduce((x, y) => x + y, 0),
    element: m[(seed % n) * n + ((3 * seed) % n)]!,
    sumInt: mi.reduce((x, y) => x + y, 0),
  };
}

function spawn(): Promise<Worker> {
  const w = new Worker(new URL("./fixtures/thread_worker.ts", import.meta.url));
  return new Promise((resolve, reject) => {
    w.onerror = (e) => reject(new Error(`worker failed to start: ${e.message}`));
    w.onmessage = (e: MessageEvent<{ type: string }>) => {
      if (e.data.type === "ready") resolve(w);
    };
  });
}

function run(w: Worker, id: number, iters: number, n: number, seed0: number): Promise<Done> {
  return new Promise((resolve, reject) => {
    w.onerror = (e) => reject(new Error(`worker ${id}: ${e.message}`));
    w.onmessage = (e: MessageEvent<Done>) => {
      if (e.data.type === "done") resolve(e.data);
    };
    w.postMessage({ type: "go", id, iters, n, seed0 });
  });
}

function terminated(w: Worker): Promise<void> {
  return new Promise((resolve) => {
    w.addEventListener("close", () => resolve(), { once: true });
    w.terminate();
  });
}

describe("Bun Workers sharing the engine", () => {
  test("a worker imports the library and sees the process-wide pool", async () => {
    bn.memory.collect();
    const w = await spawn();
    try {
      // A tensor held by the main thread is visible in the worker's pool counters (same pool).
      using held = bn.zeros([1 << 16]); // 256 KiB
      const before = bn.memory.stats().bytesInUse;
      const done = await run(w, 99, 2, 8, 1);
      expect(done.problems).toEqual([]);
      expect(done.results.length).toBe(2);
      expect(before).toBeGreaterThanOrEqual(held.size * 4);
      // The worker's stats include the main thread's 256 KiB block: one pool for the process.
      expect(done.poolBytesInUse).toBeGreaterThanOrEqual(held.size * 4);
    } finally {
      await terminated(w);
    }
  });

  test(`${WORKERS} workers and the main thread compute concurrently; results exact; pool accounting exact afterwards`, async () => {
    bn.memory.collect();
    const ids0 = new Set(bn.memory.liveAllocations().map((a) => a.id));
    const s0 = bn.memory.stats();

    const workers = await Promise.all(Array.from({ length: WORKERS }, spawn));
    let dones: Done[] = [];
    let mainT0 = 0;
    let mainT1 = 0;
    const mainProblems: string[] = [];
    let mainIters = 0;
    try {
      const pending = workers.map((w, id) => run(w, id, ITERS, N, 1000 * (id + 1)));
      // The main thread works at the same time (synchronously: worker messages queue meanwhile).
      mainT0 = performance.timeOrigin + performance.now();
      for (let it = 0; it < ITERS; it++) {
        const seed = 50_000 + it;
        using a = bn.tensor(operand(seed, N, 0), { shape: [N, N] });
        using b = bn.tensor(operand(seed, N, 1), { shape: [N, N] });
        using c = a.add(b);
        using m = a.matmul(b);
        using sc = c.sum();
        using sm = m.sum();
        const ref = reference(seed, N);
        if (sc.item() !== ref.sumAdd || sm.item() !== ref.sumMatmul) mainProblems.push(`main iteration ${it}: ${sc.item()} ${sm.item()} vs ${ref.sumAdd} ${ref.sumMatmul}`);
        mainIters++;
      }
      mainT1 = performance.timeOrigin + performance.now();
      dones = await Promise.all(pending);
    } finally {
      await Promise.all(workers.map(terminated));
    }

    expect(mainProblems).toEqual([]);
    expect(mainIters).toBe(ITERS);
    let checked = 0;
    for (const d of dones) {
      expect(d.problems).toEqual([]);
      expect(d.results.length).toBe(ITERS);
      expect(d.expectedErrors).toBe(Math.ceil(ITERS / 25));
      // Each worker's own table: everything it made was disposed.
      expect(d.leftover).toBe(0);
      expect(d.liveTensors).toBe(0);
      for (let it = 0; it < ITERS; it++) {
        expect(d.results[it]).toEqual(reference(1000 * (d.id + 1) + it, N));
        checked++;
      }
    }
    expect(checked).toBe(WORKERS * ITERS);
    // The loops overlapped in time: each worker's with the main thread's or another worker's.
    const spans = [...dones.map((d) => [d.t0, d.t1] as const), [mainT0, mainT1] as const];
    const overlaps = (x: readonly [number, number], y: readonly [number, number]) => x[0] < y[1] && y[0] < x[1];
    let overlapping = 0;
    for (let i = 0; i < spans.length; i++) if (spans.some((s, j) => j !== i && overlaps(spans[i]!, s))) overlapping++;
    console.log(
      `threads: ${WORKERS} workers × ${ITERS} iterations + main ${ITERS}; spans (ms) ${spans.map(([a, b]) => `${(a - mainT0).toFixed(0)}..${(b - mainT0).toFixed(0)}`).join(", ")}`,
    );
    expect(overlapping).toBeGreaterThanOrEqual(2);

    // Process-wide pool accounting, seen from the main thread once every worker has terminated.
    const s1 = bn.memory.stats();
    console.log(`threads: pool bytesInUse ${s0.bytesInUse} -> ${s1.bytesInUse}, allocations +${s1.allocations - s0.allocations}, frees +${s1.frees - s0.frees}`);
    expect(s1.bytesInUse).toBe(s0.bytesInUse);
    expect(s1.allocations - s0.allocations).toBe(s1.frees - s0.frees);
    // Every worker iteration allocated at least 12 blocks (a, b, c, m, 2 sums, i32 a/b/c, mi, sum; the
    // slice is a view), the main thread at least 6: all of them went through this one pool.
    expect(s1.allocations - s0.allocations).toBeGreaterThanOrEqual(WORKERS * ITERS * 11 + ITERS * 6);
    expect(s1.liveTensors).toBe(s0.liveTensors);
    expect(bn.memory.liveAllocations().filter((a) => !ids0.has(a.id))).toEqual([]);
  });

  test("terminating a worker in the middle of its loop does not disturb the main thread", async () => {
    bn.memory.collect();
    const s0 = bn.memory.stats();
    const w = await spawn();
    const started = run(w, 7, 100_000, 32, 3);
    void started.catch(() => {});
    await Bun.sleep(60); // let it run a while, mid-loop
    await terminated(w);
    const leaked = bn.memory.stats().bytesInUse - s0.bytesInUse;
    // The engine still works from the main thread, and exactly.
    using a = bn.tensor(operand(5, 16, 0), { shape: [16, 16] });
    using b = bn.tensor(operand(5, 16, 1), { shape: [16, 16] });
    using m = a.matmul(b);
    using s = m.sum();
    expect(s.item()).toBe(reference(5, 16).sumMatmul);
    expect(bn.memory.stats().liveTensors).toBe(s0.liveTensors + 4);
    // Whatever the worker held when it was stopped is not returned to the pool (no finalizers run
    // in a terminated worker): logged, not asserted.
    console.log(`threads: a worker terminated mid-loop left ${leaked} bytes in the pool`);
  });
});
