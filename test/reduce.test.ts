// Reductions and cumsum against an independent float64 reference (written here, row-major, from
// the definitions), over random shapes, axis sets, keepdims, strided views and every dtype; plus
// accuracy, determinism (threads, SIMD levels), edge cases, typed errors and NumPy golden values.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as bn from "../src/index.ts";
import { Ref, arbPerm, castRef, pyRange, toF16, wrapInt, INT_RANGE } from "./helpers.ts";

type DT = bn.DType;
type Op = "sum" | "mean" | "prod" | "min" | "max" | "argmin" | "argmax" | "var" | "std" | "logsumexp";

const OPS: Op[] = ["sum", "mean", "prod", "min", "max", "argmin", "argmax", "var", "std", "logsumexp"];
const FLOATS: DT[] = ["f32", "f16", "bf16"];
const INTS: DT[] = ["i8", "i16", "i32", "u8", "u16", "u32", "bool"];
const ALL: DT[] = [...FLOATS, ...INTS];
const isFloat = (d: DT) => FLOATS.includes(d);

/** The documented output dtype (the table in src/ops/reduce.ts). */
function outDtype(op: Op | "cumsum", d: DT): DT {
  if (op === "argmin" || op === "argmax") return "i32";
  if (op === "min" || op === "max") return d;
  if (op === "sum" || op === "prod" || op === "cumsum") return isFloat(d) ? d : d.startsWith("u") ? "u32" : "i32";
  return isFloat(d) ? d : "f32";
}

const fn: Record<Op, (t: bn.Tensor, o?: bn.VarOptions) => bn.Tensor> = {
  sum: bn.sum,
  mean: bn.mean,
  prod: bn.prod,
  min: bn.min,
  max: bn.max,
  argmin: (t, o) => bn.argmin(t, o as bn.ArgOptions),
  argmax: (t, o) => bn.argmax(t, o as bn.ArgOptions),
  var: bn.var,
  std: bn.std,
  logsumexp: bn.logsumexp,
};

// ---- the reference ------------------------------------------------------------------------------

/** One op over values in logical (row-major) order, in float64, with the documented integer rules. */
function apply(op: Op, xs: number[], d: DT, ddof = 0): number {
  const n = xs.length;
  const hasNaN = xs.some(Number.isNaN);
  switch (op) {
    case "sum": {
      const s = xs.reduce((a, b) => a + b, 0);
      return isFloat(d) ? s : wrapInt(s, outDtype("sum", d)); // exact: |s| < 2^53 here
    }
    case "mean":
      return n === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / n;
    case "prod": {
      if (isFloat(d)) return xs.reduce((a, b) => a * b, 1);
      let p = 1;
      for (const x of xs) p = Math.imul(p, x | 0); // 32-bit wrapping product (x | 0: u32 bits)
      return outDtype("prod", d) === "u32" ? p >>> 0 : p | 0;
    }
    case "min":
      return hasNaN ? NaN : Math.min(...xs);
    case "max":
      return hasNaN ? NaN : Math.max(...xs);
    case "argmin":
    case "argmax": {
      if (hasNaN) return xs.findIndex(Number.isNaN);
      let b = 0;
      for (let i = 1; i < n; i++) if (op === "argmin" ? xs[i]! < xs[b]! : xs[i]! > xs[b]!) b = i;
      return b;
    }
    case "var":
    case "std": {
      if (n === 0 || n - ddof <= 0) return NaN;
      const mu = xs.reduce((a, b) => a + b, 0) / n;
      const v = xs.reduce((a, x) => a + (x - mu) * (x - mu), 0) / (n - ddof);
      return op === "std" ? Math.sqrt(v) : v;
    }
    case "logsumexp": {
      if (hasNaN) return NaN;
      const m = n === 0 ? -Infinity : Math.max(...xs);
      if (!Number.isFinite(m)) return m;
      return m + Math.log(xs.reduce((a, x) => a + Math.exp(x - m), 0));
    }
  }
}

/** Reduces a Ref over `axes` (ascending); returns the reference and, per output, the values. */
function refReduce(op: Op, x: Ref, axes: number[], d: DT, ddof = 0): { out: Ref; groups: number[][] } {
  const nd = x.shape.length;
  const kept = [...Array(nd).keys()].filter((a) => !axes.includes(a));
  const redShape = axes.map((a) => x.shape[a]!);
  const nRed = redShape.reduce((a, b) => a * b, 1);
  const groups: number[][] = [];
  const st = x.strides();
  const redSt = axes.map((a) => st[a]!);
  const out = Ref.build(
    kept.map((a) => x.shape[a]!),
    (oidx) => {
      let base = 0;
      kept.forEach((a, i) => (base += oidx[i]! * st[a]!));
      const ridx = new Array<number>(axes.length).fill(0);
      const vals: number[] = [];
      let off = base;
      for (let k = 0; k < nRed; k++) {
        vals.push(x.data[off]!);
        for (let i = axes.length - 1; i >= 0; i--) {
          off += redSt[i]!;
          if (++ridx[i]! < redShape[i]!) break;
          off -= redSt[i]! * redShape[i]!;
          ridx[i] = 0;
        }
      }
      groups.push(vals);
      return apply(op, vals, d, ddof);
    },
  );
  return { out, groups };
}

const EPS: Partial<Record<DT, number>> = { f32: 2 ** -23, f16: 2 ** -10, bf16: 2 ** -7 };
const TINY: Partial<Record<DT, number>> = { f32: 2 ** -149, f16: 2 ** -24, bf16: 2 ** -133 };

/** Allowed error of a float result: one rounding to the output dtype plus the accumulation's. */
function tolerance(op: Op, od: DT, want: number, vals: number[]): number {
  const eps = EPS[od]!;
  const n = Math.max(vals.length, 1);
  const sumAbs = vals.reduce((a, x) => a + Math.abs(x), 0);
  const meanSq = vals.reduce((a, x) => a + x * x, 0) / n;
  let acc = 0; // f64 accumulation, far below one rounding: a generous bound all the same
  if (op === "sum") acc = 1e-12 * sumAbs;
  if (op === "mean") acc = (1e-12 * sumAbs) / n;
  if (op === "var") acc = 1e-12 * meanSq;
  if (op === "std") acc = 1e-9 * Math.sqrt(meanSq);
  if (op === "logsumexp") acc = 1e-12 * (Math.abs(want) + 1);
  if (op === "prod") acc = 1e-12 * Math.abs(want);
  return eps * Math.abs(want) + acc + TINY[od]!;
}

function flat(t: bn.Tensor): number[] {
  const a = t.toArray();
  const f = Array.isArray(a) ? (a as unknown[]).flat(Infinity) : [a];
  return f.map((v) => Number(v));
}

function close(got: number, want: number, tol: number): boolean {
  if (Number.isNaN(want)) return Number.isNaN(got);
  if (!Number.isFinite(want)) return got === want;
  return Math.abs(got - want) <= tol;
}

// ---- inputs -------------------------------------------------------------------------------------

/** mulberry32: a small seeded generator for test data. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const RANGE = INT_RANGE;

/** Values representable in `d`: floats in [-4, 4) (near 1 in magnitude for prod), integers anywhere in range. */
function values(d: DT, n: number, seed: number, op?: Op): Float64Array {
  const r = rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (isFloat(d)) {
      const v = op === "prod" ? (r() < 0.5 ? -1 : 1) * (0.5 + r()) : r() * 8 - 4;
      out[i] = castRef(v, d);
    } else {
      const [lo, hi] = RANGE[d]!;
      // Small values half the time, so sums and products do not always wrap.
      out[i] = r() < 0.5 ? Math.floor(lo + r() * (hi - lo + 1)) : Math.max(lo, Math.min(hi, Math.floor(r() * 7) - 3));
    }
  }
  return out;
}

/** How a tensor of the wanted logical shape is laid out in memory. */
type ViewKind = { perm: number[] | null; steps: number[] | null };

/**
 * A tensor of logical shape `shape` holding `data` (row-major), laid out as `view` says: made as
 * a contiguous base, then sliced (steps, possibly negative) and/or permuted. Returns the view
 * and a disposer for the base.
 */
function makeView(data: Float64Array, shape: number[], d: DT, view: ViewKind, device = "cpu"): { t: bn.Tensor; done: () => void } {
  const ref = new Ref(shape, data);
  const nd = shape.length;
  // Work backwards: the permuted-then-sliced base holds ref's elements in other places.
  const perm = view.perm ?? [...Array(nd).keys()];
  const inv = new Array<number>(nd);
  perm.forEach((p, i) => (inv[p] = i));
  // pre: the tensor before the final permute; its axis i is axis perm[i] of the result.
  const preShape = perm.map((p) => shape[p]!);
  const pre = ref.permute(perm);
  const steps = view.steps ?? new Array<number>(nd).fill(1);
  const baseShape = preShape.map((dim, i) => Math.abs(steps[i]!) * dim + 1);
  const specs = preShape.map((dim, i): [number | null, number | null, number | null] => {
    const s = steps[i]!;
    if (dim === 0) return [0, 0, 1];
    return s > 0 ? [1, 1 + s * dim, s] : [Math.abs(s) * dim - 1, null, s];
  });
  // The base: zeros (well, a marker) everywhere except where the slice reads.
  const baseData = new Float64Array(baseShape.reduce((a, b) => a * b, 1)).fill(castRef(7, d));
  const baseRef = new Ref(baseShape, baseData);
  const bst = baseRef.strides();
  const ranges = specs.map((sp, i) => pyRange(sp, baseShape[i]!));
  const idx = new Array<number>(nd).fill(0);
  for (let k = 0; k < pre.size; k++) {
    let off = 0;
    for (let i = 0; i < nd; i++) off += (ranges[i]![0] + idx[i]! * ranges[i]![2]) * bst[i]!;
    baseData[off] = pre.data[k]!;
    for (let i = nd - 1; i >= 0; i--) {
      if (++idx[i]! < preShape[i]!) break;
      idx[i] = 0;
    }
  }
  const base = bn.tensor(baseData, { dtype: d, shape: baseShape, device });
  const sliced = base.slice(specs);
  const t = sliced.permute(inv);
  return {
    t,
    done: () => {
      t.dispose();
      sliced.dispose();
      base.dispose();
    },
  };
}

const arbView = (nd: number): fc.Arbitrary<ViewKind> =>
  fc.record({
    perm: fc.option(arbPerm(nd), { nil: null }),
    steps: fc.option(fc.array(fc.constantFrom(1, 2, -1, -2), { minLength: nd, maxLength: nd }), { nil: null }),
  });

/** Random axis argument for a rank: undefined, null, one (maybe negative) axis, or a set. */
function arbAxis(nd: number, single: boolean): fc.Arbitrary<number | number[] | undefined | null> {
  const one = nd === 0 ? fc.constantFrom(0, -1) : fc.integer({ min: -nd, max: nd - 1 });
  const opts: fc.Arbitrary<number | number[] | undefined | null>[] = [fc.constant(undefined), fc.constant(null), one];
  if (!single) opts.push(fc.shuffledSubarray([...Array(nd).keys()]).map((a) => a.map((x) => (x % 2 === 0 ? x : x - nd))));
  return fc.oneof(...opts);
}

function normAxes(axis: number | number[] | undefined | null, nd: number): number[] {
  if (axis === undefined || axis === null) return [...Array(nd).keys()];
  if (nd === 0) return [];
  const list = Array.isArray(axis) ? axis : [axis];
  return [...new Set(list.map((a) => (a < 0 ? a + nd : a)))].sort((a, b) => a - b);
}

// ---- properties ---------------------------------------------------------------------------------

const CUDA = bn.devices().includes("cuda");
if (!CUDA) console.log("reduce tests: no CUDA device here, the cuda run of the reference property is skipped");

describe("reductions match the float64 reference", () => {
  test("every op, dtype, axis set, keepdims and strided layout", () => referenceProperty("cpu", 600));
  // The same property on the GPU (zig/gpu/elementwise.cu bn_reduce), strided views made there.
  test.if(CUDA)("every op, dtype, axis set, keepdims and strided layout, on cuda", () => referenceProperty("cuda", 300));

  function referenceProperty(device: string, numRuns: number): void {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 0, maxLength: 4 }).chain((shape) =>
          fc.record({
            shape: fc.constant(shape),
            op: fc.constantFrom(...OPS),
            d: fc.constantFrom(...ALL),
            keepdims: fc.boolean(),
            view: arbView(shape.length),
            seed: fc.integer({ min: 0, max: 2 ** 31 }),
            ddof: fc.constantFrom(0, 1, 2),
          }).chain((r) => fc.record({ r: fc.constant(r), axis: arbAxis(shape.length, r.op === "argmin" || r.op === "argmax") })),
        ),
        ({ r, axis }) => {
          const { shape, op, d, keepdims, view, seed, ddof } = r;
          const nd = shape.length;
          const data = values(d, shape.reduce((a, b) => a * b, 1), seed, op);
          const { t, done } = makeView(data, shape, d, view, device);
          try {
            const axes = normAxes(axis, nd);
            const opts: bn.VarOptions = { axis, keepdims };
            if (op === "var" || op === "std") opts.ddof = ddof;
            const nRed = axes.reduce((a, ax) => a * shape[ax]!, 1);
            if (nRed === 0 && ["min", "max", "argmin", "argmax"].includes(op)) {
              expect(() => fn[op](t, opts)).toThrow(bn.ShapeError);
              return;
            }
            const out = fn[op](t, opts);
            try {
              const od = outDtype(op, d);
              const { out: want, groups } = refReduce(op, new Ref(shape, data), axes, d, ddof);
              expect(out.dtype).toBe(od);
              expect(out.shape).toEqual(keepdims ? shape.map((s, i) => (axes.includes(i) ? 1 : s)) : want.shape);
              const got = flat(out);
              expect(got.length).toBe(want.size);
              for (let i = 0; i < got.length; i++) {
                const w = want.data[i]!;
                if (!isFloat(od)) {
                  if (got[i] !== w) throw new Error(`${op} ${d} ${JSON.stringify(shape)} axis ${JSON.stringify(axis)}: [${i}] got ${got[i]} want ${w}`);
                  continue;
                }
                const ref = castRef(w, od);
                const tol = tolerance(op, od, w, groups[i]!);
                if (!close(got[i]!, ref, tol) && !close(got[i]!, w, tol)) {
                  throw new Error(`${op} ${d} ${JSON.stringify(shape)} axis ${JSON.stringify(axis)} view ${JSON.stringify(view)}: [${i}] got ${got[i]} want ${w} (tol ${tol})`);
                }
              }
            } finally {
              out.dispose();
            }
          } finally {
            done();
          }
        },
      ),
      { numRuns },
    );
  }

  test("cumsum along every axis and flattened, every dtype and layout", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 0, maxLength: 4 }).chain((shape) =>
          fc.record({
            shape: fc.constant(shape),
            d: fc.constantFrom(...ALL),
            view: arbView(shape.length),
            seed: fc.integer({ min: 0, max: 2 ** 31 }),
            axis: shape.length === 0 ? fc.constantFrom(undefined, 0, -1) : fc.option(fc.integer({ min: -shape.length, max: shape.length - 1 }), { nil: undefined }),
          }),
        ),
        ({ shape, d, view, seed, axis }) => {
          const data = values(d, shape.reduce((a, b) => a * b, 1), seed);
          const { t, done } = makeView(data, shape, d, view);
          try {
            const out = bn.cumsum(t, axis);
            try {
              const od = outDtype("cumsum", d);
              expect(out.dtype).toBe(od);
              // Reference: flattened when no axis (or 0-d), else along the axis.
              const nd = shape.length;
              const ref = axis === undefined || nd === 0 ? new Ref([data.length], data) : new Ref(shape, data);
              const ax = axis === undefined || nd === 0 ? 0 : axis < 0 ? axis + nd : axis;
              expect(out.shape).toEqual(ref.shape);
              const st = ref.strides();
              const len = ref.shape[ax]!;
              const want = new Float64Array(ref.size);
              for (let k = 0; k < ref.size; k++) {
                const i = Math.floor(k / st[ax]!) % len;
                if (i !== 0) continue; // start of a scan line
                let acc = 0;
                for (let j = 0; j < len; j++) {
                  acc += ref.data[k + j * st[ax]!]!;
                  want[k + j * st[ax]!] = isFloat(d) ? castRef(acc, od) : wrapInt(acc, od);
                }
              }
              const got = flat(out);
              for (let i = 0; i < got.length; i++) {
                if (!Object.is(got[i]! + 0, want[i]! + 0)) throw new Error(`cumsum ${d} ${JSON.stringify(shape)} axis ${axis}: [${i}] got ${got[i]} want ${want[i]}`);
              }
            } finally {
              out.dispose();
            }
          } finally {
            done();
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test("large inputs on every path (rows, columns, chunks) and through every thread split", () => {
    const cases: [number[], number | number[] | undefined][] = [
      [[300, 700], 0], // columns (a partial tile)
      [[300, 700], 1], // rows
      [[3, 70000], 1], // chunks, few outputs
      [[70000, 3], 0], // chunks over a strided axis
      [[140000], undefined], // chunks, one output
      [[40, 30, 90], [0, 2]], // rows over a two-axis sub-box
      [[90, 40, 30], [0, 1]], // columns, two reduced axes
    ];
    for (const d of ["f32", "bf16", "i16"] as DT[]) {
      for (const [shape, axis] of cases) {
        const data = values(d, shape.reduce((a, b) => a * b, 1), 99);
        using t = bn.tensor(data, { dtype: d, shape });
        const axes = normAxes(axis, shape.length);
        for (const op of ["sum", "mean", "var", "max", "argmax", "logsumexp"] as Op[]) {
          if ((op === "argmax" || op === "argmin") && Array.isArray(axis)) continue;
          using out = fn[op](t, { axis });
          const { out: want, groups } = refReduce(op, new Ref(shape, data), axes, d);
          const got = flat(out);
          const od = outDtype(op, d);
          for (let i = 0; i < got.length; i++) {
            const w = want.data[i]!;
            if (!isFloat(od)) expect(got[i]).toBe(w);
            else if (!close(got[i]!, castRef(w, od), tolerance(op, od, w, groups[i]!))) throw new Error(`${op} ${d} ${shape} axis ${axis}: [${i}] got ${got[i]} want ${w}`);
          }
        }
      }
    }
  });
});

// ---- accuracy -----------------------------------------------------------------------------------

describe("accuracy", () => {
  test("1e6 values of 0.1 in f32 sum to 1e5 (pairwise or better; naive f32 is off by 1%)", () => {
    using x = bn.full([1_000_000], 0.1);
    using s = x.sum();
    expect(Math.abs((s.item() as number) - 1e5) / 1e5).toBeLessThan(1e-6);
    using m = x.mean();
    expect(m.item()).toBe(Math.fround(0.1));
    // Along axis 0 (the columns path) as well.
    using y = bn.full([100_000, 10], 0.1);
    using c = y.sum({ axis: 0 });
    for (const v of flat(c)) expect(Math.abs(v - 1e4) / 1e4).toBeLessThan(1e-6);
  });

  test("f16 and bf16 accumulate in f32 or better and round once", () => {
    using h = bn.full([10_000], 0.1, { dtype: "f16" });
    using s = h.sum();
    expect(s.dtype).toBe("f16");
    expect(s.item()).toBe(toF16(10_000 * toF16(0.1)));
    using b = bn.full([4096], 1, { dtype: "bf16" });
    using sb = b.sum();
    expect(sb.item()).toBe(4096); // f32/f64 accumulation; bf16 steps of 1 stop at 256
  });

  test("var of data with a large mean (ill-conditioned for E[x²] - E[x]²)", () => {
    const n = 100_000;
    const data = Float64Array.from({ length: n }, (_, i) => 1e4 + ((i % 7) - 3) / 8);
    using x = bn.tensor(data, { dtype: "f32" });
    const mu = 1e4 + data.reduce((a, v) => a + (v - 1e4), 0) / n;
    const want = data.reduce((a, v) => a + (v - mu) ** 2, 0) / n;
    using v = x.var();
    expect(Math.abs((v.item() as number) - want) / want).toBeLessThan(1e-6);
  });

  test("logsumexp is shifted: no overflow at 1000, no underflow at -1000", () => {
    using a = bn.tensor([1000, 1000, 1000]);
    using la = a.logsumexp();
    expect(la.item()).toBeCloseTo(1000 + Math.log(3), 3);
    using b = bn.tensor([-1000, -1000]);
    using lb = b.logsumexp();
    expect(lb.item()).toBeCloseTo(-1000 + Math.log(2), 3);
    using c = bn.randn([5000], { seed: 3 });
    const cd = flat(c);
    const m = Math.max(...cd);
    using lc = c.logsumexp();
    expect(Math.abs((lc.item() as number) - (m + Math.log(cd.reduce((s, v) => s + Math.exp(v - m), 0))))).toBeLessThan(1e-5);
  });

  test("golden values from NumPy (test/fixtures/gen_reduce.py): at least as accurate as NumPy", () => {
    const fx = JSON.parse(readFileSync(join(import.meta.dir, "fixtures", "reduce_golden.json"), "utf8")) as {
      cases: { name: string; formula: string; shape: number[]; dtype: DT; op: Op; axis: number | null; ddof: number; golden: number[]; numpy: number[] }[];
    };
    expect(fx.cases.length).toBeGreaterThan(5);
    const formula = (f: string, i: number, n: number): number => {
      switch (f) {
        case "offset":
          return 1e4 + (((i * 7919) % 1000) - 500) / 256;
        case "cancel":
          return (i % 2 === 1 ? -65536 : 65536) + ((i * 31) % 64) / 64;
        case "big":
          return 1000 + ((i * 13) % 100) / 10;
        case "tenth":
          return 0.1;
        case "ramp":
          return i / n - 0.5;
      }
      throw new Error(f);
    };
    for (const c of fx.cases) {
      const n = c.shape.reduce((a, b) => a * b, 1);
      using x = bn.tensor(
        Float64Array.from({ length: n }, (_, i) => formula(c.formula, i, n)),
        { dtype: c.dtype, shape: c.shape },
      );
      const opts: bn.VarOptions = { axis: c.axis };
      if (c.op === "var" || c.op === "std") opts.ddof = c.ddof;
      using out = fn[c.op](x, opts);
      const got = flat(out);
      expect(got.length).toBe(c.golden.length);
      for (let i = 0; i < got.length; i++) {
        const g = c.golden[i]!;
        const ours = Math.abs(got[i]! - g);
        const theirs = Math.abs(c.numpy[i]! - g);
        const halfUlp = (EPS[c.dtype]! / 2) * Math.abs(g) * 1.0001;
        if (ours > Math.max(theirs, halfUlp)) throw new Error(`${c.name} [${i}]: ours ${got[i]} (err ${ours}), NumPy ${c.numpy[i]} (err ${theirs}), exact ${g}`);
      }
    }
  });
});

// ---- determinism --------------------------------------------------------------------------------

const DETERMINISM_SCRIPT = `
import * as bn from ${JSON.stringify(join(import.meta.dir, "..", "src", "index.ts"))};
const x = bn.randn([1_500_000], { seed: 5 });
const m = bn.randn([600, 900], { seed: 6 });
const h = m.astype("bf16");
const outs = [
  bn.sum(x), bn.var(x), bn.mean(x), bn.logsumexp(x), bn.std(x, { ddof: 1 }),
  bn.sum(m, { axis: 0 }), bn.var(m, { axis: 1 }), bn.mean(m.T, { axis: 1 }), bn.sum(h, { axis: 0 }),
  bn.logsumexp(m, { axis: 0 }), bn.sum(m.slice([[null, null, -1]]), { axis: 1 }), bn.cumsum(m, 0),
];
const bits = outs.map((t) => Buffer.from(t.contiguous().data.buffer).toString("base64"));
console.log(JSON.stringify(bits));
`;

describe("determinism", () => {
  // Under qemu-user (scripts/test-arm64.sh) a child Bun cannot be started: the native suite runs this.
  test.skipIf(process.env.BITNET_EMULATED === "1")("results do not depend on the thread count (BITNET_THREADS=1, 3 and the default agree bit for bit)", () => {
    const run = (threads?: string) => {
      const env: Record<string, string | undefined> = { ...process.env };
      if (threads) env.BITNET_THREADS = threads;
      else delete env.BITNET_THREADS;
      const r = Bun.spawnSync([process.execPath, "-e", DETERMINISM_SCRIPT], { env, stdout: "pipe", stderr: "pipe" });
      if (r.exitCode !== 0) throw new Error(r.stderr.toString());
      return r.stdout.toString().trim();
    };
    const one = run("1");
    expect(one.length).toBeGreaterThan(1000);
    expect(run()).toBe(one);
    expect(run("3")).toBe(one);
  }, 60_000);

  test("every SIMD level the CPU runs gives identical bits", () => {
    const caps = bn.deviceCapabilities();
    const results: Record<string, string[]> = {};
    try {
      for (const level of caps.simdCompiled) {
        try {
          bn.setSimdLevel(level);
        } catch (e) {
          expect(e).toBeInstanceOf(bn.DeviceError);
          continue;
        }
        using x = bn.randn([70, 513], { seed: 9 });
        using xh = x.astype("f16");
        using xi = x.astype("i16");
        const r: string[] = [];
        for (const t of [x, xh, xi]) {
          for (const op of OPS) {
            for (const axis of [undefined, 0, 1]) {
              using o = fn[op](t, { axis });
              using c = o.contiguous();
              r.push(Buffer.from(c.data.buffer, c.data.byteOffset, c.data.byteLength).toString("base64"));
            }
          }
          using cs = bn.cumsum(t, 0);
          r.push(Buffer.from(cs.data.buffer, cs.data.byteOffset, cs.data.byteLength).toString("base64"));
        }
        results[level] = r;
      }
    } finally {
      bn.setSimdLevel(caps.simdDetected);
    }
    const all = Object.values(results);
    expect(all.length).toBeGreaterThanOrEqual(2); // x86-64: scalar, sse, avx2 (+ avx512); arm64: scalar, neon
    for (const r of all) expect(r).toEqual(all[0]!);
  });
});

// ---- edge cases ---------------------------------------------------------------------------------

describe("edge cases", () => {
  test("0-d tensors: every op, axis 0 / -1 / [] allowed, keepdims keeps 0-d", () => {
    using x = bn.tensor(2.5);
    for (const op of OPS) {
      using a = fn[op](x);
      expect(a.shape).toEqual([]);
      using b = fn[op](x, { axis: 0, keepdims: true });
      expect(b.shape).toEqual([]);
      using c = fn[op](x, { axis: -1 });
      expect(c.item()).toBe(a.item());
    }
    using s = bn.sum(x, { axis: [] });
    expect(s.item()).toBe(2.5);
    using v = bn.var(x);
    expect(v.item()).toBe(0);
    using c = bn.cumsum(x);
    expect(c.shape).toEqual([1]);
    expect(c.toArray()).toEqual([2.5]);
  });

  test("empty reductions give the identity: sum 0, prod 1, mean/var/std NaN, logsumexp -inf", () => {
    using e = bn.zeros([0, 3]);
    const expectAll = (t: bn.Tensor, v: number) => {
      for (const x of flat(t)) expect(x).toBe(v);
    };
    using s = bn.sum(e, { axis: 0 });
    expect(s.shape).toEqual([3]);
    expectAll(s, 0);
    using p = bn.prod(e, { axis: 0 });
    expectAll(p, 1);
    using m = bn.mean(e, { axis: 0 });
    expectAll(m, NaN);
    using v = bn.var(e);
    expect(v.item()).toBeNaN();
    using sd = bn.std(e, { axis: 0 });
    expectAll(sd, NaN);
    using l = bn.logsumexp(e, { axis: 0 });
    expectAll(l, -Infinity);
    using si = bn.sum(bn.zeros([0], { dtype: "u8" }));
    expect(si.item()).toBe(0);
    expect(si.dtype).toBe("u32");
    // Output empty, reduction not: fine for every op.
    using mx = bn.max(e, { axis: 1 });
    expect(mx.shape).toEqual([0]);
    using am = bn.argmax(e, { axis: 1 });
    expect(am.shape).toEqual([0]);
    using cs = bn.cumsum(e, 0);
    expect(cs.shape).toEqual([0, 3]);
  });

  test("prod: partial products never overflow into inf · 0 = NaN (found by the API fuzzer), on every device", () => {
    const n = 1957;
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = i % 2 ? 1e30 : 1e-30; // lanes of huge and of tiny factors
    let ref = 1;
    for (const x of v) ref *= x; // float64, in order: stays near 1
    for (const device of CUDA ? ["cpu", "cuda"] : ["cpu"]) {
      using t = bn.tensor(v, { device });
      const p = t.prod().item() as number;
      expect(Math.abs(p - ref) / ref).toBeLessThan(1e-6);
      v[0] = 0; // a zero among them: exactly 0
      using z = bn.tensor(v, { device });
      expect(z.prod().item()).toBe(0);
      v[0] = 1e-30;
      // Really out of range: inf and 0, not NaN.
      using big = bn.full([300], 1e30, { device });
      expect(big.prod().item()).toBe(Infinity);
      using tiny = bn.full([300], 1e-30, { device });
      expect(tiny.prod().item()).toBe(0);
    }
  });

  test("NaN: propagates through sum/mean/prod/min/max/var/std/logsumexp; argmin/argmax take the first NaN", () => {
    using x = bn.tensor([[1, NaN, 3, NaN], [4, 5, 6, 7]]);
    for (const op of ["sum", "mean", "prod", "min", "max", "var", "std", "logsumexp"] as Op[]) {
      using r = fn[op](x, { axis: 1 });
      const v = flat(r);
      expect(v[0]).toBeNaN();
      expect(Number.isNaN(v[1]!)).toBe(false);
    }
    using a = bn.argmax(x, { axis: 1 });
    expect(a.toArray()).toEqual([1, 3]);
    using b = bn.argmin(x);
    expect(b.item()).toBe(1);
  });

  test("argmin/argmax: first occurrence, flattened row-major without an axis, i32, keepdims", () => {
    using x = bn.tensor([[3, 1, 1], [0, 9, 0], [9, 0, 9]]);
    using a = x.argmax();
    expect(a.item()).toBe(4);
    expect(a.dtype).toBe("i32");
    using b = x.argmin({ axis: 0 });
    expect(b.toArray()).toEqual([1, 2, 1]);
    using c = x.T.argmin(); // flattened in the view's logical order
    expect(c.item()).toBe(1);
    using d = x.argmax({ axis: -1, keepdims: true });
    expect(d.shape).toEqual([3, 1]);
    expect(d.toArray()).toEqual([[0], [1], [0]]);
    using e = x.argmax({ keepdims: true });
    expect(e.shape).toEqual([1, 1]);
    using i = bn.tensor([-128, 127, -128, 127], { dtype: "i8" });
    using ia = i.argmax();
    using ib = i.argmin();
    expect([ia.item(), ib.item()]).toEqual([1, 0]);
    using u = bn.tensor([4294967295, 0, 4294967295], { dtype: "u32" });
    using ua = u.argmax();
    expect(ua.item()).toBe(0);
    using bo = bn.tensor([false, false, true, true], { dtype: "bool" });
    using ba = bo.argmax();
    expect(ba.item()).toBe(2);
  });

  test("argmin/argmax of constant extreme values give index 0 on every path", () => {
    for (const n of [5, 1000, 70_000]) {
      using a = bn.full([n], Infinity);
      using b = bn.full([n], -Infinity);
      using c = bn.full([n], 127, { dtype: "i8" });
      using u = bn.full([n], 0, { dtype: "u16" });
      for (const r of [a.argmin(), b.argmax(), c.argmin(), c.argmax(), u.argmin(), u.argmax()]) {
        expect(r.item()).toBe(0);
        r.dispose();
      }
    }
    using m = bn.full([3, 2000], -Infinity);
    using m0 = m.argmax({ axis: 0 });
    using m1 = m.argmax({ axis: 1 });
    expect(flat(m0).every((v) => v === 0)).toBe(true);
    expect(flat(m1)).toEqual([0, 0, 0]);
  });

  test("var/std: ddof, ddof >= n gives NaN", () => {
    using x = bn.tensor([1, 2, 3, 4]);
    using a = x.var();
    expect(a.item()).toBe(1.25);
    using b = x.var({ ddof: 1 });
    expect(b.item()).toBeCloseTo(5 / 3, 6);
    using c = x.std({ ddof: 4 });
    expect(c.item()).toBeNaN();
    using d = x.var({ ddof: 5 });
    expect(d.item()).toBeNaN();
  });

  test("logsumexp: all -inf gives -inf, any +inf gives +inf", () => {
    using a = bn.tensor([-Infinity, -Infinity]);
    using la = a.logsumexp();
    expect(la.item()).toBe(-Infinity);
    using b = bn.tensor([1, Infinity, -Infinity]);
    using lb = b.logsumexp();
    expect(lb.item()).toBe(Infinity);
    using c = bn.tensor([0, -Infinity]);
    using lc = c.logsumexp();
    expect(lc.item()).toBe(0);
  });

  test("integer sums and products wrap in 32 bits; min/max keep the dtype", () => {
    using a = bn.full([3], 2147483647, { dtype: "i32" });
    using s = a.sum();
    expect(s.item()).toBe(wrapInt(3 * 2147483647, "i32"));
    using m = a.mean();
    expect(m.dtype).toBe("f32");
    expect(m.item()).toBe(Math.fround(2147483647));
    using u = bn.full([2], 4294967295, { dtype: "u32" });
    using us = u.sum();
    expect(us.item()).toBe(4294967294);
    using p = bn.full([5], 200, { dtype: "u8" });
    using pp = p.prod();
    expect(pp.dtype).toBe("u32");
    expect(pp.item()).toBe(Number(200n ** 5n % 2n ** 32n));
    using b = bn.tensor([true, true, false], { dtype: "bool" });
    using bs = b.sum();
    expect([bs.dtype, bs.item()]).toEqual(["i32", 2]);
    using bm = b.max();
    expect([bm.dtype, bm.item()]).toEqual(["bool", true]);
    using i8 = bn.tensor([-128, 5], { dtype: "i8" });
    using i8m = i8.min();
    expect([i8m.dtype, i8m.item()]).toEqual(["i8", -128]);
  });

  test("methods equal the functions; var is exported as var and var_", () => {
    using x = bn.randn([4, 5], { seed: 1 });
    for (const op of OPS) {
      const m = (x as unknown as Record<string, (o?: object) => bn.Tensor>)[op]!.call(x, { axis: 1 });
      using a = m;
      using b = fn[op](x, { axis: 1 });
      expect(a.toArray()).toEqual(b.toArray());
    }
    expect(bn.var).toBe(bn.var_);
    using c1 = x.cumsum(1);
    using c2 = bn.cumsum(x, 1);
    expect(c1.toArray()).toEqual(c2.toArray());
  });

  test("reductions over a broadcast (stride 0) view", () => {
    using a = bn.tensor([1, 2, 3]);
    using e = a.expand([4, 3]);
    using s0 = e.sum({ axis: 0 });
    expect(s0.toArray()).toEqual([4, 8, 12]);
    using s1 = e.sum({ axis: 1 });
    expect(s1.toArray()).toEqual([6, 6, 6, 6]);
    using am = e.argmax({ axis: 0 });
    expect(am.toArray()).toEqual([0, 0, 0]);
  });
});

// ---- errors -------------------------------------------------------------------------------------

describe("errors", () => {
  test("bad axes, options and empty reductions throw typed errors naming the op; nothing changes or leaks", () => {
    using x = bn.arange(6).reshape([2, 3]);
    using z03 = bn.zeros([0, 3]);
    using z0 = bn.zeros([0]);
    using z20 = bn.zeros([2, 0]);
    using z00 = bn.zeros([0, 0]);
    using s0 = bn.tensor(1);
    const before = x.toArray();
    Bun.gc(true);
    const stats0 = bn.memory.stats();
    const bad: [() => unknown, new (...a: never[]) => Error, RegExp][] = [
      [() => bn.sum(x, { axis: 3 }), bn.ShapeError, /^sum: axis 3 is out of range for a tensor of 2 dimensions \(f32 \[2, 3\]\)/],
      [() => bn.mean(x, { axis: -3 }), bn.ShapeError, /mean: axis -3 is out of range/],
      [() => bn.max(x, { axis: [0, -2] }), bn.ShapeError, /max: axis 0 repeated/],
      [() => bn.prod(x, { axis: 1.5 }), bn.ShapeError, /prod: axis must be an integer/],
      [() => bn.sum(x, { axis: "0" as unknown as number }), bn.ShapeError, /sum: axis must be an integer/],
      [() => bn.argmax(x, { axis: [0] as unknown as number }), bn.ShapeError, /argmax: axis must be a single integer/],
      [() => bn.var(x, { ddof: NaN }), bn.ValueError, /var: ddof must be a finite number/],
      [() => bn.sum(x, { ddof: 1 } as bn.ReduceOptions), bn.ValueError, /sum: ddof applies to var and std only/],
      [() => bn.sum(x, { keepdims: 1 as unknown as boolean }), bn.ValueError, /sum: keepdims must be a boolean/],
      [() => bn.sum(x, 3 as unknown as bn.ReduceOptions), bn.ValueError, /sum: options must be an object/],
      [() => bn.sum(3 as unknown as bn.Tensor), bn.ValueError, /sum: expects a Tensor/],
      [() => bn.cumsum(x, 2), bn.ShapeError, /cumsum: axis 2 is out of range/],
      [() => bn.min(z03, { axis: 0 }), bn.ShapeError, /^min: zero-size array to reduction operation min which has no identity/],
      [() => bn.max(z0), bn.ShapeError, /max: zero-size array/],
      [() => bn.argmin(z20, { axis: 1 }), bn.ShapeError, /argmin: zero-size array/],
      [() => bn.argmax(z00, { axis: 0 }), bn.ShapeError, /argmax: zero-size array/],
      [() => bn.sum(s0, { axis: 1 }), bn.ShapeError, /axis 1 is out of range for a tensor of 0 dimensions/],
    ];
    for (const [f, E, re] of bad) {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(E);
      expect(err).toBeInstanceOf(bn.BitNetError);
      expect(String((err as Error).message)).toMatch(re);
    }
    Bun.gc(true);
    expect(x.toArray()).toEqual(before);
    const stats1 = bn.memory.stats();
    expect(stats1.bytesInUse).toBe(stats0.bytesInUse);
    expect(stats1.liveTensors).toBe(stats0.liveTensors);
  });

  test("a disposed tensor throws DisposedTensorError", () => {
    const x = bn.ones([3]);
    x.dispose();
    expect(() => bn.sum(x)).toThrow(bn.DisposedTensorError);
    expect(() => x.cumsum()).toThrow(bn.DisposedTensorError);
  });
});
