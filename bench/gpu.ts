// GPU (the CUDA issue, first parts): host→device, device→host and the round trip of 1 MiB and
// 256 MiB f32 tensors, and on the device an f32 add and a copy of 256 MiB and a softmax over the
// rows of an 8192 x 8192 f32 matrix, beside PyTorch on the
// same card in the same run (bench/peers/torch_gpu.py; pageable host memory on both sides).
// Every timed call returns after the work completed (device synchronised). On a machine without
// a CUDA device it says so and exits.
import { bench, group } from "mitata";
import * as bn from "../src/index.ts";
import { header, printTable, runAll } from "./util.ts";

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
const rows = await runAll();

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
printTable(`CUDA transfers (${caps.name}; PyTorch ${peer.torch ?? "absent"})`, rows, map);
console.log("");
for (const r of rows) {
  const n = r.name.includes("256 MiB") ? 256 << 20 : 1 << 20;
  // Bytes moved: a round trip crosses twice; on the device add reads 2 and writes 1, a copy reads 1 and writes 1.
  const bytes = r.name.includes("softmax") ? 2 * 8192 * 8192 * 4 : r.name.includes("round trip") ? 2 * n : r.name.includes(" add ") ? 3 * n : r.name.includes("clone") || r.name.includes("copy") ? 2 * n : n;
  console.log(`${r.name}: ${(bytes / r.p50).toFixed(2)} GB/s`);
}
