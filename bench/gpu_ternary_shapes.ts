// The ternary matmul on a CUDA device over shapes and token counts: x[batch, k] @ W[n, k]ᵀ with W
// absmean-quantized ("i2", one scale), per call = 200 back-to-back calls and one synchronisation;
// "host enqueue" times the same 200 calls before synchronising (the CPU side of a call: argument
// checks, the output's allocation, two kernel launches). An elementwise add of 1024 floats shows
// the floor of a one-launch op. Each shape runs through every kernel path of the device in the
// same run (zig/gpu/door.zig tq_path): the library's choice, no tensor cores (the dp4a kernels of
// devices before sm_80), no one-launch GEMV. Then the block-scaled formats at 8192²: "i2" with
// group scales (1024 weights a scale) and TQ2_0 (an f16 scale a 256-weight block) beside "i2" with
// a channel scale.
// Run on a machine with a CUDA device: `bun bench/gpu_ternary_shapes.ts` (`... formats`: the
// formats part alone).
import * as bn from "../src/index.ts";
import { check, sym } from "../src/native.ts";
import { perCallNs } from "./util.ts";

if (!bn.devices().includes("cuda")) {
  console.log("bench/gpu_ternary_shapes.ts: no CUDA device here: skipped");
  process.exit(0);
}
const sync = () => bn.synchronize("cuda");
/** µs a call: 200 calls back to back, one synchronisation (median of 15). */
const perCall = (f: () => void, hostOnly = false) => perCallNs(f, sync, { calls: 200, reps: 15, hostOnly }) / 1e3;
const PATHS = [
  [0, "auto"],
  [1, "no tensor cores"],
  [2, "no one-launch GEMV"],
] as const;
const formatsOnly = process.argv[2] === "formats";
for (const [n, k] of formatsOnly ? [] : ([[8192, 8192], [32768, 8192], [8192, 32768]] as [number, number][])) {
  const wf = bn.randn([n, k], { seed: 4 });
  const q = bn.quant.ternary(wf);
  const w = q.to("cuda");
  q.dispose();
  wf.dispose();
  for (const b of [1, 4, 16, 64]) {
    const x = bn.randn([b, k], { seed: 5, device: "cuda" });
    for (const [path, name] of PATHS) {
      check(sym.bn_cuda_debug_tq_path(path), "bench");
      const full = perCall(() => bn.quant.ternaryMatmul(x, w).dispose());
      const host = perCall(() => bn.quant.ternaryMatmul(x, w).dispose(), true);
      console.log(`ternary ${n}x${k} batch ${b} [${name}]: ${full.toFixed(1)} µs/call (host enqueue ${host.toFixed(1)} µs), ${(w.bytes / full / 1e3).toFixed(0)} GB/s`);
    }
    check(sym.bn_cuda_debug_tq_path(0), "bench");
    x.dispose();
  }
  w.dispose();
}
{
  const [n, k] = [8192, 8192];
  const wf = bn.randn([n, k], { seed: 4 });
  const formats: [string, bn.TernaryTensor][] = [
    ["i2 channel", bn.quant.ternary(wf, { granularity: "channel" })],
    ["i2 group 1024", bn.quant.ternary(wf, { granularity: { group: 1024 } })],
    ["tq2_0", bn.quant.ternary(wf, { format: "tq2_0" })],
  ];
  wf.dispose();
  for (const [fname, q] of formats) {
    const w = q.to("cuda");
    q.dispose();
    for (const b of [1, 16]) {
      const x = bn.randn([b, k], { seed: 5, device: "cuda" });
      for (const [path, name] of PATHS) {
        check(sym.bn_cuda_debug_tq_path(path), "bench");
        const full = perCall(() => bn.quant.ternaryMatmul(x, w).dispose());
        console.log(`ternary ${fname} ${n}x${k} batch ${b} [${name}]: ${full.toFixed(1)} µs/call, ${(w.bytes / full / 1e3).toFixed(0)} GB/s`);
      }
      check(sym.bn_cuda_debug_tq_path(0), "bench");
      x.dispose();
    }
    w.dispose();
  }
}
const a = bn.ones([1024], { device: "cuda" });
console.log(`add 1024 (host-bound op): ${perCall(() => bn.add(a, a).dispose()).toFixed(1)} µs/call`);
