// bn.linalg (CPU linalg issue): inv, solve, det, cholesky, qr, svd and eigh of f32 matrices at
// n = 64 and 256 (and 512 for inv, solve and cholesky), with NumPy (LAPACK via OpenBLAS) on the same
// cases in the same run. Target: within 2x of NumPy.
import { bench, group } from "mitata";
import * as bn from "../src/index.ts";
import { header, numpyPeer, printTable, runAll, type NumpyCase } from "./util.ts";

const caps = bn.deviceCapabilities();
console.log(header(caps), `· ${caps.threads} threads`);

const L = bn.linalg;
type Op = "inv" | "solve" | "det" | "cholesky" | "qr" | "svd" | "eigh";
const SIZES: Record<Op, number[]> = {
  inv: [64, 256, 512],
  solve: [64, 256, 512],
  det: [64, 256],
  cholesky: [64, 256, 512],
  qr: [64, 256],
  svd: [64, 256],
  eigh: [64, 256],
};

const dispose = (r: bn.Tensor | Record<string, bn.Tensor>) => {
  if (r instanceof bn.Tensor) r.dispose();
  else for (const t of Object.values(r)) t.dispose();
};

const peers: Record<string, string> = {};
const cases: NumpyCase[] = [];
for (const n of [64, 256, 512]) {
  const a = bn.randn([n, n], { seed: 1 });
  // Symmetric positive definite: AᵀA + nI.
  using ata = bn.matmul(a.T, a);
  using nI = bn.mul(bn.eye(n), n);
  const spd = bn.add(ata, nI);
  const b = bn.randn([n], { seed: 2 });
  const calls: Record<Op, () => bn.Tensor | Record<string, bn.Tensor>> = {
    inv: () => L.inv(a),
    solve: () => L.solve(a, b),
    det: () => L.det(a),
    cholesky: () => L.cholesky(spd),
    qr: () => L.qr(a) as unknown as Record<string, bn.Tensor>,
    svd: () => L.svd(a) as unknown as Record<string, bn.Tensor>,
    eigh: () => L.eigh(spd) as unknown as Record<string, bn.Tensor>,
  };
  group(`n = ${n}`, () => {
    for (const op of Object.keys(SIZES) as Op[]) {
      if (!SIZES[op].includes(n)) continue;
      const name = `bn.linalg.${op} ${n}x${n} f32`;
      bench(name, () => {
        const r = calls[op]();
        dispose(r);
        return r;
      });
      peers[name] = `np: ${op} ${n}`;
      cases.push({ name: `np: ${op} ${n}`, linalg: { op, n } } as unknown as NumpyCase);
    }
  });
}

const rows = await runAll();
// NumPy twice: OpenBLAS with its default threads (the cores) and with one thread. On a loaded
// machine OpenBLAS's spinning threads can be slower than one thread by 10-100x, so each peer row
// is the faster of the two: the stricter comparison.
const np = numpyPeer(cases);
const saved = process.env.OPENBLAS_NUM_THREADS;
process.env.OPENBLAS_NUM_THREADS = "1";
const np1 = numpyPeer(cases);
if (saved === undefined) delete process.env.OPENBLAS_NUM_THREADS;
else process.env.OPENBLAS_NUM_THREADS = saved;
if (np.error) console.log(`\nnumpy peer: not run (${np.error})`);
for (const [name, s] of Object.entries(np.times)) {
  const one = np1.times[name];
  const best = one !== undefined && one < s ? one : s;
  rows.push({ name, p50: best * 1e9, avg: best * 1e9 });
  console.log(`${name}: OpenBLAS default threads ${(s * 1e3).toFixed(3)} ms, 1 thread ${one !== undefined ? (one * 1e3).toFixed(3) : "?"} ms`);
}
printTable(`linalg, f32 (median; numpy ${np.version ?? "absent"}, the faster of OpenBLAS default threads / 1 thread)`, rows, peers);
const by = new Map(rows.map((r) => [r.name, r.p50]));
const worst = Object.entries(peers)
  .filter(([, p]) => by.has(p))
  .map(([k, p]) => [k, by.get(k)! / by.get(p)!] as const)
  .sort((x, y) => y[1] - x[1])[0];
if (worst) console.log(`\nslowest relative to numpy: ${worst[0]} at ${worst[1].toFixed(2)}x (target: within 2x)`);
