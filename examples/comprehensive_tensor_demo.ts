// A tour of bitnet-bun. Run it with `bun run demo` (after `bun run setup` in a clone), or
// `bun examples/comprehensive_tensor_demo.ts`.
//
// Part 1 — tensors: creation, dtypes, zero-copy views, where native memory goes.
// (Later parts — math, linear algebra, BitNet layers — arrive with their issues.)
import * as bn from "../src/index.ts";

const caps = bn.deviceCapabilities();
console.log(`bitnet-bun on ${caps.platform}-${caps.arch}: ${caps.cores} cores, SIMD ${caps.simd} (${caps.vectorBits}-bit), engine: ${caps.library.source}`);
console.log(`devices: ${bn.devices().join(", ")} (auto: ${bn.autoSelectDevice()})\n`);

// ---- creation ---------------------------------------------------------------------------------
console.log("== creation ==");
using a = bn.tensor([[1, 2, 3], [4, 5, 6]]);
console.log("bn.tensor([[1, 2, 3], [4, 5, 6]]) =", String(a));
using r = bn.arange(0, 2, 0.25);
console.log("bn.arange(0, 2, 0.25) =", String(r));
using l = bn.linspace(-1, 1, 5, { dtype: "f16" });
console.log("bn.linspace(-1, 1, 5, { dtype: 'f16' }) =", String(l));
using e = bn.eye(3, 4, { k: 1, dtype: "i8" });
console.log("bn.eye(3, 4, { k: 1, dtype: 'i8' }) =\n" + String(e));
using n = bn.randn([2, 4], { seed: 42 });
console.log("bn.randn([2, 4], { seed: 42 }) — the same numbers on every platform =\n" + String(n));

// ---- dtypes -----------------------------------------------------------------------------------
console.log("\n== dtypes ==");
using x = bn.tensor([0.1, 1.5, -2.5, 300.7, NaN]);
for (const d of ["f16", "bf16", "i8", "u8", "bool"] as const) {
  using y = x.astype(d);
  console.log(`astype(${d.padEnd(4)}) ->`, String(y));
}
using bf = bn.tensor([1, -2], { dtype: "bf16" });
console.log("bf16 .data is raw bits:", Array.from(bf.data as Uint16Array).map((b) => "0x" + b.toString(16)));

// ---- views ------------------------------------------------------------------------------------
console.log("\n== views (no copies) ==");
using m = bn.arange(12).reshape([3, 4]);
const before = bn.memory.stats().allocations;
using t = m.T;
using s = m.slice([[null, null, -1], [1, 4, 2]]);
using ex = m.slice([0]).expand([2, 4]);
console.log("m =", String(m));
console.log("m.T =", String(t), "contiguous:", t.isContiguous(), "strides:", t.strides);
console.log("m.slice([[null, null, -1], [1, 4, 2]]) =", String(s));
console.log("m.slice([0]).expand([2, 4]) =", String(ex), "strides:", ex.strides);
console.log("allocations made by those views:", bn.memory.stats().allocations - before);
(m.data as Float32Array)[1] = 100; // t.data is zero-copy: writes show through every view
console.log("after m.data[1] = 100, m.T =", String(t));
using parts = bn.stack(bn.split(bn.arange(6), 3), 1);
console.log("bn.stack(bn.split(bn.arange(6), 3), 1) =", String(parts));

// ---- memory -----------------------------------------------------------------------------------
console.log("\n== memory ==");
const s0 = bn.memory.stats();
{
  using big = bn.zeros([1024, 1024]);
  bn.memory.withTag("scratch", () => bn.ones([256])).dispose();
  const mid = bn.memory.stats();
  console.log(`a 4 MiB tensor: bytesInUse ${s0.bytesInUse} -> ${mid.bytesInUse}, live tensors ${mid.liveTensors}, shape ${big.shape}`);
}
const leaked = bn.memory.withTag("forgotten", () => bn.full([10], 7));
console.log("liveAllocations (tagged):", bn.memory.liveAllocations().filter((e) => e.tag).map((e) => `${e.tag}: ${e.dtype}[${e.shape}] ${e.bytes} B`));
leaked.dispose();
bn.memory.trim();
const s1 = bn.memory.stats();
console.log(`after dispose + trim: bytesInUse ${s1.bytesInUse}, bytesReserved ${s1.bytesReserved}, peak ${s1.peakBytes}, hits/misses ${s1.poolHits}/${s1.poolMisses}`);
try {
  m.dispose();
  m.toArray();
} catch (err) {
  console.log(`use after dispose -> ${(err as Error).name}: ${(err as Error).message}`);
}
