// GPU (the CUDA issue): host→device, device→host and the round trip of 1 MiB and 256 MiB f32
// tensors; on the device an f32 add and a copy of 256 MiB, a softmax over the rows of an
// 8192 x 8192 f32 matrix, GEMM 4096³ and 8192³ in f32 and bf16 (cuBLAS), and the ternary GEMV
// x[batch, 8192] @ W[8192, 8192]ᵀ (2-bit weights, int8 activations) at batch 1 and 16 against
// PyTorch's f16 GEMV; PyTorch on the same card in the same run (bench/peers/torch_gpu.py; pageable
// host memory on both sides). Every timed call returns after the work completed (device
// synchronised); the GEMVs are timed as 100 back-to-back calls and one synchronisation (per call),
// on both sides. On a machine without a CUDA device it says so and exits.
import { bench, group } from "mitata";
import * as bn from "../src/index.ts";
import { header, perCallNs, printTable, runAll } from "./util.ts";

if (!bn.devices().includes("cuda")) {
  console.log("bench/gpu.ts: no CUDA device here: skipped");
  process.exit(0);
}
const caps = bn.deviceCapabilities("cuda") as bn.CudaCapabilities;
console.log(header(bn.deviceCapabilities()), `· ${caps.name} (compute ${caps.computeCapability}, driver ${caps.driverVersion})`);

const SIZES = [1 << 20, 256 << 20];
const label = (n: number) => (n >= 1 << 20 ? `${n >> 20} MiB` : `${n >> 10} KiB`);
const names = (n: number) => ({ h2d: `bn host→device ${label(n)}`, d2h: `bn device→host ${label(n)}`, rt: `bn round trip ${label(n)}` });

for (const n of SIZES) {
  const x = bn.ones([n / 4]);
  const g = x.to("cuda");
  const k = names(n);
  group(label(n), () => {
    bench(k.h2d, () => x.to("cuda").dispose());
    bench(k.d2h, () => g.toCpu().dispose());
    bench(k.rt, () => {
      const a = x.to("cuda");
      a.toCpu().dispose();
      a.dispose();
    });
  });
}
// Elementwise on the device: a + b and a copy (clone) of 256 MiB f32, synchronised.
const N = 256 << 20;
const ea = bn.ones([N / 4], { device: "cuda" });
const eb = bn.ones([N / 4], { device: "cuda" });
const EW = { add: "bn add 256 MiB (f32, on device)", copy: "bn clone 256 MiB (on device)", softmax: "bn softmax [8192, 8192] f32 (on device)" };
const sx = bn.randn([8192, 8192], { seed: 1, device: "cuda" });
group("elementwise on the device", () => {
  bench(EW.add, () => {
    bn.add(ea, eb).dispose();
    bn.synchronize("cuda");
  });
  bench(EW.copy, () => {
    ea.clone().dispose();
    bn.synchronize("cuda");
  });
  bench(EW.softmax, () => {
    bn.softmax(sx).dispose();
    bn.synchronize("cuda");
  });
});
// GEMM (cuBLAS) of square n x n matrices, f32 and bf16.
const GEMM = [4096, 8192].flatMap((n) => (["f32", "bf16"] as const).map((dtype) => ({ n, dtype, name: `bn matmul ${n}³ ${dtype}` })));
const gemmIn = new Map<string, [bn.Tensor, bn.Tensor]>();
for (const g of GEMM) {
  const a = bn.randn([g.n, g.n], { seed: 2, device: "cuda" });
  const b = bn.randn([g.n, g.n], { seed: 3, device: "cuda" });
  gemmIn.set(g.name, g.dtype === "f32" ? [a, b] : [a.astype(g.dtype), b.astype(g.dtype)]);
}
const rows = await runAll();

// GEMM: 3 warm-up calls, then the median of 10 synchronised calls, exactly as the peer times
// PyTorch's (long mitata runs of 20 ms products heat the card and lower its clocks).
const median = (f: () => void, reps = 10): number => {
  for (let i = 0; i < 3; i++) f();
  const ts: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = Bun.nanoseconds();
    f();
    ts.push(Bun.nanoseconds() - t0);
  }
  ts.sort((a, b) => a - b);
  return ts[ts.length >> 1]!;
};
for (const g of GEMM) {
  const [a, b] = gemmIn.get(g.name)!;
  const ns = median(() => {
    bn.matmul(a, b).dispose();
    bn.synchronize("cuda");
  });
  rows.push({ name: g.name, p50: ns, avg: ns });
}

// Ternary GEMV: W [8192, 8192] absmean-quantized (i2, one scale; and TQ2_0), x f32 [batch, 8192].
const perCall = (f: () => void) => perCallNs(f, () => bn.synchronize("cuda"));
const wf = bn.randn([8192, 8192], { seed: 4 });
const GEMV: { name: string; batch: number; fmt: "i2" | "tq2_0"; bytes: number; ns: number }[] = [];
for (const fmt of ["i2", "tq2_0"] as const) {
  using wq = bn.quant.ternary(wf, { format: fmt });
  using wg = wq.to("cuda");
  for (const batch of [1, 16]) {
    using x = bn.randn([batch, 8192], { seed: 5, device: "cuda" });
    const ns = perCall(() => bn.quant.ternaryMatmul(x, wg).dispose());
    GEMV.push({ name: `bn ternary GEMV ${fmt} batch ${batch}`, batch, fmt, bytes: wg.bytes, ns });
    rows.push({ name: GEMV[GEMV.length - 1]!.name, p50: ns, avg: ns });
  }
}
wf.dispose();
for (const [a, b] of gemmIn.values()) {
  a.dispose();
  b.dispose();
}
bn.memory.trim("cuda"); // leave the card's memory to the peer

const p = Bun.spawnSync(["python3", `${import.meta.dir}/peers/torch_gpu.py`, JSON.stringify(SIZES)]);
const peer = p.exitCode === 0 ? JSON.parse(p.stdout.toString()) : { error: p.stderr.toString().trim().split("\n").pop() };
const map: Record<string, string> = {};
if (peer.error) console.log(`\n(PyTorch peer absent: ${peer.error})`);
else {
  for (const n of SIZES) {
    const k = names(n);
    for (const [kind, ours] of [["h2d", k.h2d], ["d2h", k.d2h], ["rt", k.rt]] as const) {
      const name = `torch ${ours.slice(3)}`;
      rows.push({ name, p50: peer[`${kind}_${n}`] * 1e9, avg: peer[`${kind}_${n}`] * 1e9 });
      map[ours] = name;
    }
  }
  for (const [k, ours] of [["add", EW.add], ["copy", EW.copy], ["softmax", EW.softmax]] as const) {
    const name = k === "softmax" ? "torch softmax [8192, 8192] f32 (on device)" : `torch ${k} 256 MiB (on device)`;
    const sec = k === "softmax" ? peer.softmax_8192 : peer[`${k}_${N}`];
    rows.push({ name, p50: sec * 1e9, avg: sec * 1e9 });
    map[ours] = name;
  }
}
if (!peer.error) {
  for (const g of GEMM) {
    const name = `torch matmul ${g.n}³ ${g.dtype}`;
    rows.push({ name, p50: peer[`gemm_${g.dtype}_${g.n}`] * 1e9, avg: peer[`gemm_${g.dtype}_${g.n}`] * 1e9 });
    map[g.name] = name;
  }
  for (const g of GEMV) {
    const name = `torch f16 GEMV batch ${g.batch}`;
    if (!rows.some((r) => r.name === name)) rows.push({ name, p50: peer[`gemv_f16_${g.batch}`] * 1e9, avg: peer[`gemv_f16_${g.batch}`] * 1e9 });
    map[g.name] = name;
  }
}
printTable(`CUDA (${caps.name}; PyTorch ${peer.torch ?? "absent"})`, rows, map);
console.log("");
// HBM peak from the memory clock and bus width (double data rate).
const hbm = (caps.memoryClockKHz * 1e3 * caps.memoryBusBits * 2) / 8;
for (const r of rows) {
  const gm = /matmul (\d+)³/.exec(r.name);
  if (gm) {
    const n = Number(gm[1]);
    console.log(`${r.name}: ${((2 * n ** 3) / r.p50 / 1e3).toFixed(1)} TFLOPS`);
    continue;
  }
  const gv = GEMV.find((g) => g.name === r.name);
  if (gv || r.name.includes("GEMV")) {
    const bytes = gv ? gv.bytes : 8192 * 8192 * 2;
    console.log(`${r.name}: ${(bytes / r.p50).toFixed(0)} GB/s of weights = ${((100 * bytes) / r.p50 / (hbm / 1e9)).toFixed(0)}% of HBM (${(hbm / 1e12).toFixed(2)} TB/s)`);
    continue;
  }
  const n = r.name.includes("256 MiB") ? 256 << 20 : 1 << 20;
  // Bytes moved: a round trip crosses twice; on the device add reads 2 and writes 1, a copy reads 1 and writes 1.
  const bytes = r.name.includes("softmax") ? 2 * 8192 * 8192 * 4 : r.name.includes("round trip") ? 2 * n : r.name.includes(" add ") ? 3 * n : r.name.includes("clone") || r.name.includes("copy") ? 2 * n : n;
  console.log(`${r.name}: ${(bytes / r.p50).toFixed(2)} GB/s`);
}
