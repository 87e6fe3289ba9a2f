// A tour of bitnet-bun. Run it with `bun run demo` (after `bun run setup` in a clone), or
// `bun examples/comprehensive_tensor_demo.ts`.
//
// Part 1 — tensors: creation, dtypes, zero-copy views, where native memory goes.
// Part 2 — math and linear algebra: broadcasting, reductions, matmul, a least-squares fit with
// qr, a low-rank approximation with svd.
// (Later parts — BitNet layers, training — arrive with their issues.)
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

// =================================================================================================
// Part 2 — math and linear algebra
// =================================================================================================
console.log("\n== math: broadcasting, reductions, activations ==");
{
  using xs = bn.linspace(-2, 2, 5);
  using grid = bn.tensor([[0], [1], [2]]).add(xs); // [3, 1] + [5] -> [3, 5], no copies of either
  console.log("[[0],[1],[2]] + linspace(-2, 2, 5) =\n" + String(grid));
  using rowSum = grid.sum({ axis: 1 });
  using colMax = grid.max({ axis: 0, keepdims: true });
  console.log("sum over axis 1 =", String(rowSum), " max over axis 0 (keepdims) =", String(colMax));
  using sm = bn.softmax(grid);
  using g = bn.gelu(xs);
  console.log("softmax rows sum to", String(sm.sum({ axis: -1 })), " gelu(linspace) =", String(g));
}

console.log("\n== matmul ==");
{
  using w = bn.randn([3, 4], { seed: 1 });
  using xb = bn.randn([2, 5, 4], { seed: 2 });
  using y = bn.matmul(xb, w.T); // batched [2, 5, 4] @ [4, 3]: w.T is read in place, no copy
  console.log(`x ${fmt(xb.shape)} @ w.T ${fmt(w.T.shape)} -> ${fmt(y.shape)}`);
  using v = bn.tensor([1, 2, 3, 4]);
  using wv = bn.matmul(w, v);
  console.log("w @ [1, 2, 3, 4] =", String(wv), " dot(v, v) =", String(bn.dot(v, v)));
}

console.log("\n== least squares with qr: fit y = c0 + c1 t + c2 t² to noisy samples ==");
{
  const n = 50;
  using t = bn.linspace(0, 1, n);
  using noise = bn.randn([n], { seed: 3 }).mul(0.01);
  using yObs = t.mul(t).mul(-3).add(t.mul(2)).add(0.5).add(noise); // truth: 0.5 + 2t - 3t²
  using ones = bn.ones([n]);
  using t2 = t.mul(t);
  using A = bn.stack([ones, t, t2], 1); // the [n, 3] design matrix
  const { Q, R } = bn.linalg.qr(A); // reduced: Q [n, 3], R [3, 3]
  using qty = bn.matmul(Q.T, yObs);
  using coef = bn.linalg.solve(R, qty); // R c = Qᵀ y
  console.log("coefficients (truth 0.5, 2, -3):", String(coef));
  using resid = bn.matmul(A, coef).sub(yObs);
  console.log("residual norm:", Number(bn.linalg.norm(resid).item()).toFixed(4), "(noise 0.01 per sample)");
  Q.dispose();
  R.dispose();
}

console.log("\n== low-rank approximation with svd ==");
{
  // A rank-2 matrix plus a little noise: two singular values stand out.
  using u = bn.randn([40, 2], { seed: 4 });
  using vt = bn.randn([2, 30], { seed: 5 });
  using M = bn.matmul(u, vt).add(bn.randn([40, 30], { seed: 6 }).mul(0.01));
  const { U, S, Vt } = bn.linalg.svd(M, { fullMatrices: false });
  console.log("largest singular values:", String(S.slice([[0, 4]])));
  using U2 = U.slice([null, [0, 2]]);
  using S2 = S.slice([[0, 2]]);
  using Vt2 = Vt.slice([[0, 2]]);
  using approx = bn.matmul(U2.mul(S2), Vt2); // U[:, :2] diag(S[:2]) Vt[:2]
  using err = approx.sub(M);
  const rel = Number(bn.linalg.norm(err).item()) / Number(bn.linalg.norm(M).item());
  console.log(`rank-2 approximation: relative error ${rel.toExponential(2)} (Frobenius), ${U2.size + S2.size + Vt2.size} numbers instead of ${M.size}`);
  for (const x of [U, S, Vt]) x.dispose();
}

console.log("\n== linear algebra checks ==");
{
  using B = bn.randn([4, 4], { seed: 7 });
  using spd = bn.matmul(B.T, B).add(bn.eye(4).mul(4));
  using L = bn.linalg.cholesky(spd);
  using back = bn.matmul(L, L.T).sub(spd);
  console.log("cholesky: max |L Lᵀ - A| =", Number(bn.abs(back).max().item()).toExponential(2));
  using Ainv = bn.linalg.inv(spd);
  using I = bn.matmul(spd, Ainv).sub(bn.eye(4));
  console.log("inv: max |A A⁻¹ - I| =", Number(bn.abs(I).max().item()).toExponential(2), " det =", Number(bn.linalg.det(spd).item()).toFixed(3));
  const { eigenvalues, eigenvectors } = bn.linalg.eigh(spd);
  console.log("eigh: eigenvalues (ascending) =", String(eigenvalues));
  eigenvalues.dispose();
  eigenvectors.dispose();
  try {
    bn.linalg.inv(bn.zeros([3, 3]));
  } catch (err) {
    console.log(`inv of a singular matrix -> ${(err as Error).name}: ${(err as Error).message}`);
  }
}

function fmt(shape: number[]): string {
  return `[${shape.join(", ")}]`;
}
