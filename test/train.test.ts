// Quantization-aware training end to end: a BitLinear MLP learns a seeded synthetic task to a
// stated accuracy in a fixed number of steps, deterministically; the trained ternary weights go
// to GGUF and back into an inference model with the same outputs; a long loop holds steady memory;
// the layers, optimizers and losses reject bad input with typed errors.
import { describe, expect, test } from "bun:test";
import * as bn from "../src/index.ts";
import { tempDirs } from "./helpers.ts";

const tmp = tempDirs();

/** A synthetic task: `classes` Gaussian blobs in `dim` dimensions (seeded), labels = blob index. */
function blobs(n: number, dim: number, classes: number, seed: number): { x: bn.Tensor; y: bn.Tensor } {
  using centers = bn.randn([classes, dim], { seed: 1000 });
  const labels = Int32Array.from({ length: n }, (_, i) => (i * 7 + seed) % classes);
  using y0 = bn.tensor(labels, { dtype: "i32" });
  using c = bn.take(centers, y0, 0);
  using noise = bn.randn([n, dim], { seed, std: 0.6 });
  return { x: bn.add(c, noise), y: y0.clone() };
}

function mlp(seed: number, dim = 16, hidden = 64, classes = 4): bn.Sequential {
  return new bn.nn.Sequential(new bn.nn.BitLinear(dim, hidden, { seed }), bn.relu, new bn.nn.BitLinear(hidden, classes, { seed: seed + 1 }));
}

function accuracy(model: bn.Module, x: bn.Tensor, y: bn.Tensor): number {
  return bn.noGrad(() => {
    using logits = model.forward(x);
    using pred = logits.argmax({ axis: -1 });
    using hit = bn.eq(pred, y);
    using m = hit.mean();
    return m.item() as number;
  });
}

/** Trains `steps` AdamW steps on batches of 64 (a fixed schedule); returns the losses. */
function train(model: bn.Module, data: { x: bn.Tensor; y: bn.Tensor }, steps: number, onStep?: (i: number) => void): number[] {
  using opt = new bn.optim.AdamW(model.parameters(), { lr: 0.02, weightDecay: 0.01 });
  const n = data.x.shape[0]!;
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    const idx = Int32Array.from({ length: 64 }, (_, j) => (i * 64 + j * 13) % n);
    using ids = bn.tensor(idx, { dtype: "i32" });
    using xb = bn.take(data.x, ids, 0);
    using yb = bn.take(data.y, ids, 0);
    opt.zeroGrad();
    using logits = model.forward(xb);
    using loss = bn.nn.crossEntropy(logits, yb);
    loss.backward();
    opt.step();
    losses.push(loss.item() as number);
    onStep?.(i);
  }
  return losses;
}

describe("quantization-aware training of a BitLinear MLP", () => {
  test("learns the blobs task to >= 95% held-out accuracy in 150 steps, deterministically", () => {
    const trainSet = blobs(512, 16, 4, 1);
    const testSet = blobs(256, 16, 4, 2);
    using model = mlp(7);
    const before = accuracy(model.eval(), testSet.x, testSet.y);
    model.train();
    const losses = train(model, trainSet, 150);
    model.eval();
    const after = accuracy(model, testSet.x, testSet.y); // the packed ternary kernel
    expect(before).toBeLessThan(0.6);
    expect(after).toBeGreaterThanOrEqual(0.95);
    expect(losses[losses.length - 1]!).toBeLessThan(losses[0]! / 3);
    // The same seed gives the same losses, bit for bit.
    using again = mlp(7);
    expect(train(again, trainSet, 150)).toEqual(losses);
    for (const t of [trainSet.x, trainSet.y, testSet.x, testSet.y]) t.dispose();
  });

  test("training-mode forward equals the packed-kernel forward up to f32 rounding", () => {
    using layer = new bn.nn.BitLinear(40, 24, { seed: 3, bias: true, norm: "layer" });
    using x = bn.randn([5, 40], { seed: 4 });
    using yTrain = layer.forward(x); // recorded: quantized values as floats, STE gradients
    expect(yTrain.requiresGrad).toBe(true);
    using yEval = bn.noGrad(() => layer.forward(x)); // the ternary kernel on int8 activations
    expect(yEval.requiresGrad).toBe(false);
    const a = Array.from(yTrain._toFloat64("t"));
    const b = Array.from(yEval._toFloat64("t"));
    a.forEach((v, i) => expect(Math.abs(v - b[i]!)).toBeLessThanOrEqual(1e-5 + 1e-5 * Math.abs(b[i]!)));
  });

  test("straight-through gradients: the weight gradient is that of a float linear layer over the quantized values", () => {
    using layer = new bn.nn.BitLinear(8, 3, { seed: 5, norm: "none" });
    using x = bn.randn([4, 8], { seed: 6 });
    using y = layer.forward(x);
    using s = y.sum();
    s.backward();
    // d sum(xq @ wqᵀ)/dW = (column sums of ones) ⊗ xq: every row of the gradient is sum over tokens of xq.
    using xq = bn.quant.int8(x, { granularity: "token" }).dequantize();
    using colsum = xq.sum({ axis: 0 });
    const g = layer.weight.grad!.toArray() as number[][];
    const want = colsum.toArray() as number[];
    for (const row of g) row.forEach((v, j) => expect(v).toBeCloseTo(want[j]!, 5));
  });

  test("the trained ternary weights go to GGUF and back into an inference model with the same outputs", () => {
    const data = blobs(256, 256, 4, 3);
    using model = new bn.nn.Sequential(new bn.nn.BitLinear(256, 256, { seed: 1, format: "tq2_0" }), bn.relu, new bn.nn.BitLinear(256, 4, { seed: 2, format: "tq2_0" }));
    train(model, data, 20);
    model.eval();
    const [l1, , l2] = (model as bn.Sequential).layers as [bn.BitLinear, unknown, bn.BitLinear];
    const path = `${tmp("bn-train-")}/mlp.gguf`;
    bn.gguf.write(path, {
      metadata: { "general.architecture": "bitnet-mlp" },
      tensors: { "l1.weight": l1.quantized, "l1.norm": l1.normWeight!, "l2.weight": l2.quantized, "l2.norm": l2.normWeight! },
    });
    const file = bn.gguf.read(path);
    const t = file.tensors as Record<string, bn.TernaryTensor | bn.Tensor>;
    expect((t["l1.weight"] as bn.TernaryTensor).format).toBe("tq2_0");
    // An inference model over the stored ternary weights (no float masters from training needed).
    using i1 = bn.nn.BitLinear.fromTernary(t["l1.weight"] as bn.TernaryTensor);
    using i2 = bn.nn.BitLinear.fromTernary(t["l2.weight"] as bn.TernaryTensor);
    i1.loadStateDict({ normWeight: t["l1.norm"] as bn.Tensor }, { strict: false });
    i2.loadStateDict({ normWeight: t["l2.norm"] as bn.Tensor }, { strict: false });
    using inference = new bn.nn.Sequential(i1, bn.relu, i2).eval();
    using a = model.forward(data.x);
    using b = inference.forward(data.x);
    expect(a.requiresGrad).toBe(false); // eval mode: the packed kernel, no graph
    expect(Array.from(b._toFloat64("t"))).toEqual(Array.from(a._toFloat64("t")));
    for (const v of Object.values(t)) v.dispose();
    data.x.dispose();
    data.y.dispose();
  });

  test("1,000 training steps end with the bytes in use of the first steps", () => {
    const data = blobs(128, 16, 4, 4);
    using model = mlp(9, 16, 32, 4);
    // Everything allocated inside the loop is tagged: count what is still live at the same point
    // of steps 5 and 1000 (explicitly released memory only; the garbage collector plays no part).
    const live = () => bn.memory.liveAllocations().filter((a) => a.tag === "loop");
    const bytes = () => live().reduce((n, a) => n + a.bytes, 0);
    let early = -1;
    let last = -1;
    let most = 0;
    bn.memory.withTag("loop", () =>
      train(model, data, 1000, (i) => {
        const b = bytes();
        if (i === 4) early = b;
        if (i === 999) last = b;
        most = Math.max(most, b);
      }),
    );
    expect(early).toBeGreaterThan(0);
    expect(last).toBe(early); // nothing piles up
    expect(most).toBe(early);
    data.x.dispose();
    data.y.dispose();
  });
});

describe("layers, optimizers and losses", () => {
  test("Linear and friends: parameters, stateDict round trip, SGD reduces an mse loss", () => {
    using model = new bn.nn.Sequential(new bn.nn.Linear(3, 8, { seed: 1 }), bn.tanh, new bn.nn.LayerNorm(8), new bn.nn.Linear(8, 2, { seed: 2 }), new bn.nn.RMSNorm(2));
    expect(model.namedParameters().map(([k]) => k)).toEqual(["0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias", "4.weight"]);
    expect(model.numParameters()).toBe(3 * 8 + 8 + 8 + 8 + 8 * 2 + 2 + 2);
    using x = bn.randn([16, 3], { seed: 3 });
    using target = bn.randn([16, 2], { seed: 4 });
    using opt = new bn.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    const loss = () => {
      using y = model.forward(x);
      return bn.nn.mse(y, target);
    };
    const l0 = bn.noGrad(() => loss().item() as number);
    for (let i = 0; i < 30; i++) {
      opt.zeroGrad();
      using l = loss();
      l.backward();
      opt.step();
    }
    const l1 = bn.noGrad(() => loss().item() as number);
    expect(l1).toBeLessThan(l0 * 0.7);
    // stateDict → loadStateDict into a fresh model gives the same outputs.
    using copy = new bn.nn.Sequential(new bn.nn.Linear(3, 8, { seed: 9 }), bn.tanh, new bn.nn.LayerNorm(8), new bn.nn.Linear(8, 2, { seed: 8 }), new bn.nn.RMSNorm(2));
    copy.loadStateDict(model.stateDict());
    using ya = bn.noGrad(() => model.forward(x));
    using yb = bn.noGrad(() => copy.forward(x));
    expect(yb.toArray()).toEqual(ya.toArray());
  });

  test("Embedding gathers rows and trains", () => {
    using emb = new bn.nn.Embedding(10, 4, { seed: 1 });
    using ids = bn.tensor([[1, 1], [9, -1]], { dtype: "i32" });
    using e = emb.forward(ids);
    expect(e.shape).toEqual([2, 2, 4]);
    const w = emb.weight.toArray() as number[][];
    expect((e.toArray() as number[][][])[1]![1]).toEqual(w[9]!);
    using s = e.sum();
    s.backward();
    const g = emb.weight.grad!.toArray() as number[][];
    expect(g[1]).toEqual([2, 2, 2, 2]);
    expect(g[9]).toEqual([2, 2, 2, 2]);
    expect(g[0]).toEqual([0, 0, 0, 0]);
    using bad = bn.tensor([10], { dtype: "i32" });
    expect(() => emb.forward(bad)).toThrow(bn.ShapeError);
    using f = bn.tensor([1.5]);
    expect(() => emb.forward(f)).toThrow(bn.DTypeError);
  });

  test("bad input: optimizers, losses and modules", () => {
    using p = bn.zeros([3], { requiresGrad: true });
    using q = bn.zeros([3]);
    using r = p.mul(2);
    expect(() => new bn.optim.SGD([q], { lr: 0.1 })).toThrow(bn.AutogradError); // does not require grad
    expect(() => new bn.optim.AdamW([r])).toThrow(bn.AutogradError); // not a leaf
    expect(() => new bn.optim.AdamW([p, p])).toThrow(bn.ValueError);
    expect(() => new bn.optim.AdamW([1 as never])).toThrow(bn.DTypeError);
    expect(() => new bn.optim.SGD([p], { lr: -1 })).toThrow(bn.ValueError);
    expect(() => new bn.optim.SGD([p], { lr: 0.1, nesterov: true })).toThrow(bn.ValueError);
    using logits = bn.zeros([2, 3], { requiresGrad: true });
    using t3 = bn.tensor([0, 1, 2], { dtype: "i32" });
    using tf = bn.tensor([0, 1]);
    using tBig = bn.tensor([0, 3], { dtype: "i32" });
    expect(() => bn.nn.crossEntropy(logits, t3)).toThrow(bn.ShapeError);
    expect(() => bn.nn.crossEntropy(logits, tf)).toThrow(bn.DTypeError);
    expect(() => bn.nn.crossEntropy(logits, tBig)).toThrow(/target 3 is outside \[0, 3\)/);
    using a = bn.zeros([2, 3]);
    using b = bn.zeros([3, 2]);
    expect(() => bn.nn.mse(a, b)).toThrow(bn.ShapeError);
    using lin = new bn.nn.Linear(3, 2);
    using x4 = bn.zeros([1, 4]);
    expect(() => lin.forward(x4)).toThrow(bn.ShapeError);
    using w = bn.zeros([5, 5]);
    expect(() => lin.loadStateDict({ weight: w, bias: w })).toThrow(bn.ShapeError);
    expect(() => lin.loadStateDict({ weight: w })).toThrow(bn.ValueError);
    lin.dispose();
    expect(() => lin.forward(x4)).toThrow(bn.DisposedTensorError);
  });
});
