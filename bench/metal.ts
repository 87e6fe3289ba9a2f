// The Metal backend on a Mac (run by the macOS workflow, .github/workflows/macos.yml; skipped where
// there is no Metal device): host→device and device→host copies of 1 MiB and 256 MiB, matmul n³ in
// f32 and f16 through MPS, and the engine's own Metal kernels (metal/kernels.metal): add and sum
// over 64 MiB, softmax and rmsNorm of [4096, 4096], and the ternary GEMV of a 4096 × 4096 i2 layer
// for one token beside PyTorch's f16 GEMV, each beside PyTorch's MPS backend on the same machine in
// the same run (bench/peers/torch_mps.py; absent torch is said, not guessed). Every timed call
// synchronises: the median of 10 after 3 warm-ups, as the peer does.
import * as bn from "../src/index.ts";
import { printTable } from "./util.ts";

if (!bn.devices().includes("metal")) {
  console.log(`bench/metal.ts: no Metal device here (${process.platform === "darwin" ? "the shim did not load" : "not macOS"}): skipped`);
  process.exit(0);
}
const caps = bn.deviceCapabilities("metal");
if (caps.name.includes("emulator")) {
  console.log("bench/metal.ts: the Metal device is the shim's CPU emulator (BITNET_METAL_SHIM): nothing to time");
  process.exit(0);
}
console.log(`${caps.name} · unified memory ${caps.unifiedMemory} · Bun ${Bun.version}`);

const median = (f: () => void, reps = 10, warm = 3): number => {
  for (let i = 0; i < warm; i++) f();
  bn.synchronize("metal");
  const ts: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = Bun.nanoseconds();
    f();
    bn.synchronize("metal");
    ts.push(Bun.nanoseconds() - t0);
  }
  ts.sort((a, b) => a - b);
  return ts[ts.length >> 1]!;
};

const SIZES = [1 << 20, 256 << 20];
const NS = [1024, 4096];
const rows: { name: string; p50: number; avg: number }[] = [];
const ours = new Map<string, number>();
for (const bytes of SIZES) {
  using x = bn.randn([bytes / 4], { seed: 1 });
  using g = x.to("metal");
  ours.set(`h2d_${bytes}`, median(() => x.to("metal").dispose()));
  ours.set(`d2h_${bytes}`, median(() => g.toCpu().dispose()));
}
for (const n of NS) {
  for (const dt of ["f32", "f16"] as const) {
    using a = bn.randn([n, n], { seed: 2 }).astype(dt).to("metal");
    using b = bn.randn([n, n], { seed: 3 }).astype(dt).to("metal");
    ours.set(`gemm_${dt}_${n}`, median(() => bn.matmul(a, b).dispose()));
  }
}
{
  const n = 16 << 20;
  using a = bn.randn([n], { seed: 4 }).to("metal");
  using b = bn.randn([n], { seed: 5 }).to("metal");
  ours.set("add", median(() => bn.add(a, b).dispose()));
  ours.set("sum", median(() => bn.sum(a).dispose()));
  using r = bn.randn([4096, 4096], { seed: 6 }).to("metal");
  ours.set("softmax", median(() => bn.softmax(r).dispose()));
  using w = bn.ones([4096], { device: "metal" });
  ours.set("rmsnorm", median(() => bn.rmsNorm(r, { weight: w }).dispose()));
  using wf = bn.randn([4096, 4096], { seed: 7 });
  using qc = bn.quant.ternary(wf, { granularity: "channel" });
  using q = qc.to("metal");
  using x = bn.randn([1, 4096], { seed: 8 }).to("metal");
  ours.set("gemv", median(() => bn.quant.ternaryMatmul(x, q).dispose()));
}
const p = Bun.spawnSync(["python3", `${import.meta.dir}/peers/torch_mps.py`, JSON.stringify(SIZES), JSON.stringify(NS)]);
const peer = p.exitCode === 0 ? JSON.parse(p.stdout.toString()) : { error: p.stderr.toString().trim().split("\n").pop() };
if (peer.error) console.log(`(PyTorch MPS peer absent: ${peer.error})`);
const KERNELS: Record<string, [string, string]> = {
  add: ["add f32 64 MiB", "add f32 64 MiB"],
  sum: ["sum f32 64 MiB", "sum f32 64 MiB"],
  softmax: ["softmax [4096, 4096] f32", "softmax [4096, 4096] f32"],
  rmsnorm: ["rmsNorm [4096, 4096] f32", "rms_norm [4096, 4096] f32"],
  gemv: ["ternary GEMV 4096² i2, 1 token", "f16 GEMV 4096², 1 token"],
};
const label = (k: string, who = "bn") =>
  KERNELS[k] ? KERNELS[k]![who === "bn" ? 0 : 1] : k.startsWith("gemm") ? `matmul ${k.split("_")[2]}³ ${k.split("_")[1]}` : `${k.startsWith("h2d") ? "host→device" : "device→host"} ${Number(k.split("_")[1]) >> 20} MiB`;
const map: Record<string, string> = {};
for (const [k, ns] of ours) {
  rows.push({ name: `bn ${label(k)}`, p50: ns, avg: ns });
  if (!peer.error && peer[k] !== undefined) {
    rows.push({ name: `torch ${label(k, "torch")}`, p50: peer[k] * 1e9, avg: peer[k] * 1e9 });
    map[`bn ${label(k)}`] = `torch ${label(k, "torch")}`;
  }
}
printTable(`Metal (${caps.name}; PyTorch MPS ${peer.torch ?? "absent"})`, rows, map);
for (const [k, ns] of ours) {
  if (!k.startsWith("gemm")) continue;
  const n = Number(k.split("_")[2]);
  const tf = (s: number) => ((2 * n ** 3) / s / 1e12).toFixed(2);
  console.log(`${label(k)}: bn ${tf(ns / 1e9)} TFLOPS${peer[k] ? `, torch ${tf(peer[k])} TFLOPS` : ""}`);
}
