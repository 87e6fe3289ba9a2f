// The CUDA backend: found at run time, never required. Everywhere: the absence path (no throw at
// import, "cuda" not listed, typed errors that say why). Where a GPU is present (the H100 runs
// through the device tool): devices and their facts, large transfers through the pinned staging
// buffers, running out of device memory, and the GPU conformance suite (test/gpu_suite.ts: every
// kernel against the CPU's results, the pool, modules, refusals) on "cuda".
import { describe, expect, test } from "bun:test";
import * as bn from "../src/index.ts";
import { gpuConformance } from "./gpu_suite.ts";

const present = bn.devices().includes("cuda");
if (!present) console.log(`cuda tests: the GPU part is skipped here (no CUDA device); the absence path runs`);

const vals = (t: bn.Tensor) => Array.from(t._toFloat64("test"));

describe("CUDA absent", () => {
  test.skipIf(present)("nothing throws at import; to('cuda') and friends are DeviceErrors that say why", () => {
    expect(bn.devices()).toEqual(["cpu"]);
    expect(bn.autoSelectDevice()).toBe("cpu");
    using t = bn.ones([3]);
    expect(() => t.to("cuda")).toThrow(bn.DeviceError);
    expect(() => t.to("cuda")).toThrow(/"cuda" is not available: .+/);
    expect(() => t.toGpu()).toThrow(bn.DeviceError);
    expect(() => bn.zeros([2], { device: "cuda" })).toThrow(bn.DeviceError);
    expect(() => bn.memory.stats("cuda:1")).toThrow(bn.DeviceError);
    expect(() => bn.deviceCapabilities("cuda")).toThrow(bn.DeviceError);
    expect(() => t.to("tpu")).toThrow(/unknown device "tpu"/);
    expect(t.device).toBe("cpu");
    expect(vals(t)).toEqual([1, 1, 1]);
  });
});

describe("CUDA present", () => {
  test.if(present)("devices and their facts", () => {
    const caps = bn.deviceCapabilities("cuda") as bn.CudaCapabilities;
    console.log(`cuda: ${caps.name}, compute ${caps.computeCapability}, ${caps.multiprocessors} SMs, ${(caps.memory.total / 2 ** 30).toFixed(1)} GiB, driver ${caps.driverVersion}`);
    expect(caps.kind).toBe("cuda");
    expect(caps.multiprocessors).toBeGreaterThan(0);
    expect(caps.memory.free).toBeLessThanOrEqual(caps.memory.total);
    expect(bn.devices()[1]).toBe("cuda");
  });

  test.if(present)("large transfers (pinned staging, chunks of 8 MiB): every byte arrives, back to back", () => {
    // 22 MB, not a multiple of the chunk; several in flight before any is read back.
    const n = 5_500_001;
    const hosts = [0, 1, 2].map((k) => bn.arange(k, n + k, 1, { dtype: "f32" }));
    const gpus = hosts.map((h) => h.to("cuda")); // host→device copies return once queued
    for (const h of hosts) (h.data as Float32Array).fill(-1); // the sources may change at once
    gpus.forEach((g, k) => {
      using back = g.toCpu();
      const v = back.data as Float32Array;
      expect(v.length).toBe(n);
      let bad = 0;
      for (let i = 0; i < n; i++) if (v[i] !== i + k) bad++;
      expect(bad).toBe(0);
    });
    // A large strided view (packed on the host first) and a large i8 tensor.
    using big = bn.arange(0, 4 * 1_200_000, 1, { dtype: "f32" }).reshape([1_200_000, 4]);
    using col = big.slice([null, 2]);
    using gcol = col.to("cuda");
    using bcol = gcol.toCpu();
    const cv = bcol.data as Float32Array;
    expect(cv[0]).toBe(2);
    expect(cv[1_199_999]).toBe(4 * 1_199_999 + 2);
    using bytes = bn.full([9_000_000], -7, { dtype: "i8" });
    using gb = bytes.to("cuda");
    using s = bn.sum(gb.astype("i32"));
    expect(s.item()).toBe(-63_000_000);
    for (const t of [...hosts, ...gpus]) t.dispose();
  });

  test.if(present)("running out of device memory is an OutOfMemoryError; the pool stays usable", () => {
    const total = (bn.deviceCapabilities("cuda") as bn.CudaCapabilities).memory.total;
    expect(() => bn.empty([Math.ceil((2 * total) / 4)], { device: "cuda" })).toThrow(bn.OutOfMemoryError);
    using t = bn.ones([8], { device: "cuda" });
    expect(vals(t)).toEqual(new Array(8).fill(1));
  });
});

gpuConformance("cuda", present);
