// Matrix products (linear algebra issue): f32 GEMM 256..2048, a linear layer's x @ W.T, GEMV
// 4096 x 4096, with NumPy (OpenBLAS, given the same thread count) and a plain-JS triple loop
// in the same run. GFLOPS = 2*M*N*K / time; GEMV is also given in GB/s of matrix read, beside
// the bandwidth of a memcpy of the same 64 MiB (Float32Array.set: bytes read + written).
import { bench, group } from "mitata";
import * as bn from "../src/index.ts";
import { gbps, header, numpyPeer, printTable, runAll } from "./util.ts";

const caps = bn.deviceCapabilities();
console.log(header(caps), `· ${caps.threads} threads`);

const SIZES = [256, 512, 1024, 2048];
const mats = new Map(SIZES.map((n) => [n, [bn.randn([n, n], { seed: n }), bn.randn([n, n], { seed: n + 1 })] as const]));
const x = bn.randn([64, 2048], { seed: 7 });
const w = bn.randn([2048, 2048], { seed: 8 });
const G = 4096;
const A = bn.randn([G, G], { seed: 9 });
const v = bn.randn([G], { seed: 10 });
const copySrc = Float32Array.from(A.data as Float32Array);
const copyDst = new Float32Array(G * G);

group("GEMM f32", () => {
  for (const n of SIZES) {
    const [a, b] = mats.get(n)!;
    bench(`bn.matmul ${n}x${n}x${n}`, () => {
      const c = bn.matmul(a, b);
      c.dispose();
      return c;
    });
  }
  bench("bn.matmul x[64,2048] @ w.T (linear layer)", () => {
    const c = bn.matmul(x, w.T);
    c.dispose();
    return c;
  });
});

const n0 = 256;
const ja = Float32Array.from(mats.get(n0)![0].data as Float32Array);
const jb = Float32Array.from(mats.get(n0)![1].data as Float32Array);
const jc = new Float32Array(n0 * n0);
group("plain JS", () => {
  bench(`plain JS i-k-j loop ${n0}x${n0}x${n0}`, () => {
    jc.fill(0);
    for (let i = 0; i < n0; i++) {
      for (let k = 0; k < n0; k++) {
        const aik = ja[i * n0 + k]!;
        const bo = k * n0;
        const co = i * n0;
        for (let j = 0; j < n0; j++) jc[co + j]! += aik * jb[bo + j]!;
      }
    }
    return jc;
  });
});

group("GEMV f32 4096x4096", () => {
  bench("bn.matmul A @ v", () => {
    const y = bn.matmul(A, v);
    y.dispose();
    return y;
  });
  bench("bn.matmul v @ A", () => {
    const y = bn.matmul(v, A);
    y.dispose();
    return y;
  });
  bench("copy: Float32Array.set of A (memcpy ceiling)", () => {
    copyDst.set(copySrc);
    return copyDst;
  });
});

const rows = await runAll();
const rng = (name: string, shape: string, seed: number) => `${name} = np.random.default_rng(${seed}).standard_normal(${shape}, dtype=np.float32)`;
const np = numpyPeer(
  [
    ...SIZES.map((n) => ({ name: `np: a @ b ${n}`, setup: `${rng("a", `(${n}, ${n})`, n)}; ${rng("b", `(${n}, ${n})`, n + 1)}`, stmt: "a @ b" })),
    { name: "np: x @ w.T", setup: `${rng("x", "(64, 2048)", 7)}; ${rng("w", "(2048, 2048)", 8)}`, stmt: "x @ w.T" },
    { name: "np: A @ v", setup: `${rng("A", `(${G}, ${G})`, 9)}; ${rng("v", `${G}`, 10)}`, stmt: "A @ v" },
    { name: "np: v @ A", setup: `${rng("A", `(${G}, ${G})`, 9)}; ${rng("v", `${G}`, 10)}`, stmt: "v @ A" },
  ],
  { OPENBLAS_NUM_THREADS: String(caps.threads), OMP_NUM_THREADS: String(caps.threads) },
);
if (np.error) console.log(`\nnumpy peer: not run (${np.error})`);
for (const [name, s] of Object.entries(np.times)) rows.push({ name, p50: s * 1e9, avg: s * 1e9 });
const peers: Record<string, string> = {
  "bn.matmul x[64,2048] @ w.T (linear layer)": "np: x @ w.T",
  "bn.matmul A @ v": "np: A @ v",
  "bn.matmul v @ A": "np: v @ A",
};
for (const n of SIZES) peers[`bn.matmul ${n}x${n}x${n}`] = `np: a @ b ${n}`;
printTable(`matmul (median; numpy ${np.version ?? "absent"} with ${caps.threads} BLAS threads)`, rows, peers);

const by = new Map(rows.map((r) => [r.name, r.p50]));
console.log("\n| product | bn GFLOPS | numpy GFLOPS | bn / numpy |\n| --- | ---: | ---: | ---: |");
const line = (label: string, flops: number, ours: string, theirs: string) => {
  const t = by.get(ours);
  const p = by.get(theirs);
  if (t === undefined) return;
  const g = flops / t;
  console.log(`| ${label} | ${g.toFixed(1)} | ${p ? (flops / p).toFixed(1) : "-"} | ${p ? (p / t).toFixed(2) : "-"} |`);
};
for (const n of SIZES) line(`${n}³`, 2 * n ** 3, `bn.matmul ${n}x${n}x${n}`, `np: a @ b ${n}`);
line("64x2048 @ (2048x2048)ᵀ", 2 * 64 * 2048 * 2048, "bn.matmul x[64,2048] @ w.T (linear layer)", "np: x @ w.T");
line(`plain JS ${n0}³`, 2 * n0 ** 3, `plain JS i-k-j loop ${n0}x${n0}x${n0}`, "");
const bytes = 4 * G * G;
const ceiling = gbps(2 * bytes, by.get("copy: Float32Array.set of A (memcpy ceiling)")!);
for (const name of ["bn.matmul A @ v", "bn.matmul v @ A"]) {
  const g = gbps(bytes, by.get(name)!);
  console.log(`${name}: ${g.toFixed(1)} GB/s of matrix read = ${((g / ceiling) * 100).toFixed(0)}% of the copy bandwidth (${ceiling.toFixed(1)} GB/s read+write, one thread)`);
}
