// Training steps per second (the autograd issue): one AdamW step (zeroGrad, forward, cross-entropy,
// backward, update) of the same MLP, 256 → 256 → 256 → 10 at batch 64, in float form (Linear) and
// in BitLinear form (quantization-aware: int8 activations, ternary weights, straight-through
// gradients), beside the same float MLP step written in NumPy (forward, backward and AdamW by
// hand; OpenBLAS with our thread count) in the same run. Also the inference forward of each.
import { bench, group } from "mitata";
import * as bn from "../src/index.ts";
import { header, numpyPeer, printTable, runAll } from "./util.ts";

const caps = bn.deviceCapabilities();
console.log(header(caps), `· ${caps.threads} threads`);

const D = 256;
const H = 256;
const C = 10;
const B = 64;

const floatModel = () => new bn.nn.Sequential(new bn.nn.Linear(D, H, { seed: 1 }), bn.relu, new bn.nn.Linear(H, H, { seed: 2 }), bn.relu, new bn.nn.Linear(H, C, { seed: 3 }));
const bitModel = () =>
  new bn.nn.Sequential(new bn.nn.BitLinear(D, H, { seed: 1 }), bn.relu, new bn.nn.BitLinear(H, H, { seed: 2 }), bn.relu, new bn.nn.BitLinear(H, C, { seed: 3 }));

const x = bn.randn([B, D], { seed: 10 });
const y = bn.tensor(Int32Array.from({ length: B }, (_, i) => (i * 7) % C), { dtype: "i32" });

function stepper(model: bn.Module): () => void {
  const opt = new bn.optim.AdamW(model.parameters(), { lr: 1e-3 });
  return () => {
    opt.zeroGrad();
    using logits = model.forward(x);
    using loss = bn.nn.crossEntropy(logits, y);
    loss.backward();
    opt.step();
  };
}

const fm = floatModel();
const tm = bitModel();
const NAMES = {
  float: "train step: float MLP (Linear)",
  bit: "train step: BitLinear MLP (QAT)",
  np: "np: train step float MLP (hand-written)",
  fInf: "inference: float MLP forward",
  tInf: "inference: BitLinear MLP forward (ternary kernel)",
  npInf: "np: inference float MLP forward",
};

group(`MLP ${D}-${H}-${H}-${C}, batch ${B}`, () => {
  bench(NAMES.float, stepper(fm));
  bench(NAMES.bit, stepper(tm));
  const fe = floatModel().eval();
  const te = bitModel().eval();
  bench(NAMES.fInf, () => bn.noGrad(() => fe.forward(x).dispose()));
  bench(NAMES.tInf, () => bn.noGrad(() => te.forward(x).dispose()));
});

const rows = await runAll();

// The same float step in NumPy: forward, softmax cross-entropy, backward and AdamW by hand.
const setup = `
rng = np.random.default_rng(1)
sizes = [(${D}, ${H}), (${H}, ${H}), (${H}, ${C})]
W = [rng.uniform(-1 / np.sqrt(i), 1 / np.sqrt(i), (o, i)).astype(np.float32) for i, o in sizes]
bs = [np.zeros(o, np.float32) for _, o in sizes]
params = W + bs
m = [np.zeros_like(p) for p in params]
v = [np.zeros_like(p) for p in params]
x = rng.standard_normal((${B}, ${D})).astype(np.float32)
y = (np.arange(${B}) * 7) % ${C}
t = [0]
def forward(x):
    hs = [x]
    h = x
    for i in range(3):
        h = h @ W[i].T + bs[i]
        if i < 2:
            h = np.maximum(h, 0)
        hs.append(h)
    return hs
def step():
    hs = forward(x)
    z = hs[-1]
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z); p /= p.sum(axis=1, keepdims=True)
    g = p; g[np.arange(${B}), y] -= 1; g /= ${B}
    grads_w = [None] * 3; grads_b = [None] * 3
    for i in (2, 1, 0):
        grads_w[i] = g.T @ hs[i]
        grads_b[i] = g.sum(axis=0)
        if i > 0:
            g = (g @ W[i]) * (hs[i] > 0)
    t[0] += 1
    b1, b2, lr, eps, wd = 0.9, 0.999, 1e-3, 1e-8, 0.01
    for k, (pp, gg) in enumerate(zip(params, grads_w + grads_b)):
        pp *= 1 - lr * wd
        m[k] = b1 * m[k] + (1 - b1) * gg
        v[k] = b2 * v[k] + (1 - b2) * gg * gg
        pp -= lr * (m[k] / (1 - b1 ** t[0])) / (np.sqrt(v[k] / (1 - b2 ** t[0])) + eps)
`;
const np = numpyPeer(
  [
    { name: NAMES.np, setup, stmt: "step()" },
    { name: NAMES.npInf, setup, stmt: "forward(x)" },
  ],
  { OPENBLAS_NUM_THREADS: String(caps.threads), OMP_NUM_THREADS: String(caps.threads) },
);
if (np.error) console.log(`\n(NumPy peer absent: ${np.error})`);
for (const [name, sec] of Object.entries(np.times)) rows.push({ name, p50: sec * 1e9, avg: sec * 1e9 });

printTable(`training and inference, steps/s = 1e9 / median ns (NumPy ${np.version ?? "absent"})`, rows, {
  [NAMES.float]: NAMES.np,
  [NAMES.bit]: NAMES.np,
  [NAMES.fInf]: NAMES.npInf,
  [NAMES.tInf]: NAMES.npInf,
});
console.log("");
for (const r of rows) console.log(`${r.name}: ${(1e9 / r.p50).toFixed(0)} per second`);
