// The Metal backend (metal/shim.m through zig/gpu/metal.zig): found at run time, never required.
// Everywhere: the shim cross-compiles for both macOS architectures with the C ABI the engine opens,
// and the absence path (not listed, typed errors that say why, nothing at import). On a Mac with
// the shim (the macOS CI workflow, .github/workflows/macos.yml; this machine cannot run Metal):
// the device and its facts, the pool and its counters, transfers of every dtype and of views,
// matmul on MPS against the CPU's, and ops without Metal kernels refusing Metal tensors.
import { describe, expect, test } from "bun:test";
import * as bn from "../src/index.ts";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tempDirs } from "./helpers.ts";

const present = bn.devices().includes("metal");
if (!present) console.log(`metal tests: the GPU part is skipped here (no Metal device: ${process.platform === "darwin" ? "the shim did not load" : "not macOS"}); the shim build and the absence path run`);

const root = join(import.meta.dir, "..");
const tempDir = tempDirs();
const vals = (t: bn.Tensor) => Array.from(t._toFloat64("test"));

// The shim build needs Zig (scripts/setup.sh installs it); a machine that only runs the tests
// (the GPU machine, with Bun and the built library carried over) says so and skips that test.
const zig = Bun.spawnSync(["python3", "-m", "ziglang", "version"], { stderr: "pipe" }).exitCode === 0;
if (!zig) console.log("metal tests: no Zig here (python3 -m ziglang): the shim's cross-compilation is skipped");

describe("Metal shim", () => {
  test.if(zig)("cross-compiles for arm64 and x86_64 macOS with the C ABI of metal/bn_metal.h", () => {
    const out = tempDir("bitnet-shim-");
    const r = Bun.spawnSync(["python3", "-m", "ziglang", "build", "metal-shim", "-p", out], { cwd: root, stderr: "pipe" });
    expect(r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
    const header = readFileSync(join(root, "metal/bn_metal.h"), "utf8");
    const abi = [...header.matchAll(/\b(bn_mtl_\w+)\(/g)].map((m) => m[1]!);
    expect(abi.length).toBeGreaterThanOrEqual(7);
    for (const [dir, cpu] of [["darwin-arm64", 0x0100000c], ["darwin-x64", 0x01000007]] as const) {
      const file = join(out, "metal", dir, "libbitnet_metal.dylib");
      expect(existsSync(file)).toBe(true);
      const bytes = readFileSync(file);
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      expect(dv.getUint32(0, true)).toBe(0xfeedfacf); // MH_MAGIC_64
      expect(dv.getUint32(4, true)).toBe(cpu);
      expect(dv.getUint32(12, true)).toBe(6); // MH_DYLIB
      const text = bytes.toString("latin1");
      for (const name of abi) expect(text).toContain(`_${name}\0`); // exported (Mach-O names carry a leading _)
      // The frameworks are opened at run time, not linked: the engine must load where Metal is absent.
      expect(text).not.toContain("/System/Library/Frameworks/Metal.framework/Versions");
    }
  }, 120_000);

  test("the engine and the shim agree on the ABI version and the info record", () => {
    const header = readFileSync(join(root, "metal/bn_metal.h"), "utf8");
    const zig = readFileSync(join(root, "zig/gpu/metal.zig"), "utf8");
    expect(Number(/#define BN_MTL_ABI (\d+)/.exec(header)![1])).toBe(Number(/pub const abi_version: i32 = (\d+);/.exec(zig)![1]));
    // bn_mtl_info's fields, in order, as C declares them and Zig mirrors them.
    const cFields = [.../typedef struct bn_mtl_info \{([^}]*)\}/.exec(header)![1]!.matchAll(/(\w+)(?:\[\d+\])?;/g)].map((m) => m[1]);
    const zFields = [.../pub const Info = extern struct \{([^}]*)\}/.exec(zig)![1]!.matchAll(/(\w+):/g)].map((m) => m[1]);
    expect(zFields).toEqual(cFields);
  });
});

describe("Metal absent", () => {
  test.skipIf(present)("not listed; to('metal') and friends are DeviceErrors that say why", () => {
    expect(bn.devices()).not.toContain("metal");
    using t = bn.ones([3]);
    expect(() => t.to("metal")).toThrow(bn.DeviceError);
    const why = process.platform === "darwin" ? /"metal" is not available: .+/ : /"metal" is not available: Metal runs on macOS only/;
    expect(() => t.to("metal")).toThrow(why);
    expect(() => bn.zeros([2], { device: "metal" })).toThrow(bn.DeviceError);
    expect(() => bn.memory.stats("metal")).toThrow(bn.DeviceError);
    expect(() => bn.deviceCapabilities("metal")).toThrow(bn.DeviceError);
    expect(() => bn.synchronize("metal")).toThrow(bn.DeviceError);
    expect(vals(t)).toEqual([1, 1, 1]);
  });
});

describe("Metal present", () => {
  test.if(present)("the device, its facts and its pool", () => {
    const caps = bn.deviceCapabilities("metal");
    console.log(`metal: ${caps.name}, working set ${(caps.memory.recommendedWorkingSet / 2 ** 30).toFixed(1)} GiB, unified ${caps.unifiedMemory}`);
    expect(caps.kind).toBe("metal");
    expect(caps.name.length).toBeGreaterThan(0);
    expect(caps.memory.maxBuffer).toBeGreaterThan(0);
    const before = bn.memory.stats("metal").bytesInUse;
    const t = bn.zeros([1000], { device: "metal" });
    expect(t.device).toBe("metal");
    expect(bn.memory.stats("metal").bytesInUse).toBeGreaterThanOrEqual(before + 4000);
    expect(vals(t.toCpu())).toEqual(new Array(1000).fill(0));
    t.dispose();
    expect(bn.memory.stats("metal").bytesInUse).toBe(before);
  });

  test.if(present)("transfers: every dtype, views, large buffers, round trips", () => {
    for (const dtype of ["f32", "f16", "bf16", "i8", "i16", "i32", "u8", "u16", "u32", "bool"] as const) {
      using x = bn.arange(37).astype(dtype);
      using g = x.to("metal");
      using back = g.toCpu();
      expect(back.dtype).toBe(dtype);
      expect(vals(back)).toEqual(vals(x));
    }
    using big = bn.randn([3, 1 << 20], { seed: 1 });
    using gb = big.to("metal");
    using view = big.slice([null, [null, null, 7]]);
    using gv = view.to("metal");
    expect(vals(gb.toCpu())).toEqual(vals(big));
    expect(vals(gv.toCpu())).toEqual(vals(view));
  });

  test.if(present)("matmul on MPS equals the CPU's within f32 rounding (2-D, batched, broadcast, transposed, vector)", () => {
    const cases: [number[], number[], boolean][] = [
      [[64, 48], [48, 80], false],
      [[3, 17, 33], [3, 33, 9], false],
      [[4, 2, 20, 30], [30, 25], false],
      [[40, 30], [50, 30], true], // b.T read in place (transposed operand)
      [[30], [30, 12], false],
    ];
    let seed = 10;
    for (const [sa, sb, tb] of cases) {
      using a = bn.randn(sa, { seed: seed++ });
      using b = bn.randn(sb, { seed: seed++ });
      using bt = tb ? b.T : b.view(sb);
      using want = bn.matmul(a, bt);
      using ga = a.to("metal");
      using gb = b.to("metal");
      using gbt = tb ? gb.T : gb.view(sb);
      using got = bn.matmul(ga, gbt);
      expect(got.device).toBe("metal");
      expect(got.shape).toEqual(want.shape);
      const w = vals(want);
      const g = vals(got);
      const k = sa[sa.length - 1]!;
      for (let i = 0; i < w.length; i++) expect(Math.abs(g[i]! - w[i]!)).toBeLessThanOrEqual(1e-5 * k * 4);
    }
    // f16 operands give an f16 result; K = 0 gives zeros
    using h = bn.randn([16, 8], { seed: 3 }).astype("f16");
    using gh = h.to("metal");
    using hh = bn.matmul(gh, gh.T);
    expect(hh.dtype).toBe("f16");
    using hw = bn.matmul(h.astype("f32"), h.astype("f32").T);
    const hv = vals(hh);
    const hwv = vals(hw);
    for (let i = 0; i < hv.length; i++) expect(Math.abs(hv[i]! - hwv[i]!)).toBeLessThanOrEqual(0.02 * Math.max(1, Math.abs(hwv[i]!)));
    using e = bn.zeros([3, 0], { device: "metal" });
    using e2 = bn.zeros([0, 4], { device: "metal" });
    expect(vals(bn.matmul(e, e2))).toEqual(new Array(12).fill(0));
  });

  test.if(present)("refusals: bf16 and integer products, ops without Metal kernels, mixing devices", () => {
    using a = bn.ones([4, 4], { device: "metal" });
    using bf = bn.ones([4, 4]).astype("bf16").to("metal");
    expect(() => bn.matmul(bf, bf)).toThrow(bn.DTypeError);
    using i = bn.ones([4, 4]).astype("i32").to("metal");
    expect(() => bn.matmul(i, i)).toThrow(bn.DeviceError);
    expect(() => bn.add(a, a)).toThrow(/no Metal kernel yet/);
    using c = bn.ones([4, 4]);
    expect(() => bn.matmul(a, c)).toThrow(/operands are on metal and cpu/);
    bn.synchronize("metal");
  });
});
