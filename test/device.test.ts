import { describe, expect, test } from "bun:test";
import * as bn from "../src/index.ts";

describe("devices", () => {
  test("cpu is always present and auto-selected when no GPU is", () => {
    expect(bn.devices()).toContain("cpu");
    expect(bn.devices()).toContain(bn.autoSelectDevice());
  });

  test("capabilities report the SIMD level the engine detected, cores and caches", () => {
    const c = bn.deviceCapabilities();
    expect(c.device).toBe("cpu");
    expect(["avx512", "avx2", "sse", "neon", "scalar"]).toContain(c.simd);
    expect(c.simdCompiled).toContain(c.simd);
    expect(c.simdCompiled).toContain("scalar");
    expect(c.cores).toBeGreaterThanOrEqual(1);
    expect(c.library.abi).toBeGreaterThanOrEqual(1);
    if (process.arch === "x64") {
      // Cross-check with /proc/cpuinfo: the detected level must be one this CPU advertises.
      const flags = (await_read("/proc/cpuinfo").match(/^flags\s*:(.*)$/m)?.[1] ?? "").split(/\s+/);
      const want = flags.includes("avx512f") && flags.includes("avx512bw") && flags.includes("avx512vl") && flags.includes("avx512dq")
        ? "avx512"
        : flags.includes("avx2") && flags.includes("fma") ? "avx2" : flags.includes("sse4_2") ? "sse" : "scalar";
      expect(c.simdDetected).toBe(want);
      expect(c.features.includes("avx2")).toBe(flags.includes("avx2"));
    }
    if (process.platform === "linux") expect(c.caches.l1d).toBeGreaterThan(0);
    expect(() => bn.deviceCapabilities("cuda:3")).toThrow(bn.DeviceError);
  });

  test("every SIMD level the CPU runs gives identical results (copy, fill, ranges, random)", () => {
    const levels = bn.deviceCapabilities().simdCompiled;
    const detected = bn.deviceCapabilities().simdDetected;
    const results: Record<string, unknown> = {};
    try {
      for (const level of levels) {
        try {
          bn.setSimdLevel(level);
        } catch (e) {
          expect(e).toBeInstanceOf(bn.DeviceError); // above this CPU: refused, never run
          continue;
        }
        expect(bn.deviceCapabilities().simd).toBe(level);
        using x = bn.randn([7, 33], { seed: 11 });
        using y = x.T.astype("bf16");
        using z = bn.linspace(-3, 5, 101, { dtype: "f16" });
        using w = bn.full([5, 3], -7.6, { dtype: "i8" });
        results[level] = [x.toArray(), y.toArray(), z.toArray(), w.toArray()];
      }
    } finally {
      bn.setSimdLevel(detected);
    }
    const all = Object.values(results);
    expect(all.length).toBeGreaterThanOrEqual(2);
    for (const r of all) expect(r).toEqual(all[0]);
    expect(() => bn.setSimdLevel("mmx")).toThrow(bn.DeviceError);
  });

  test("to(): cpu gives a new view object; absent devices are DeviceErrors", () => {
    using t = bn.ones([2]);
    using c = t.to("cpu");
    expect(c).not.toBe(t);
    expect(c.toArray()).toEqual([1, 1]);
    using c2 = t.toCpu();
    expect(c2.device).toBe("cpu");
    if (!bn.devices().includes("cuda")) {
      expect(() => t.to("cuda")).toThrow(bn.DeviceError);
      expect(() => t.toGpu()).toThrow(/"cuda" is not available/);
    }
    expect(() => t.to("cuda:7")).toThrow(bn.DeviceError);
  });
});

function await_read(path: string): string {
  return require("node:fs").readFileSync(path, "utf8");
}
