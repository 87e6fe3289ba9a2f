// The API fuzzer's reduction commands (see fuzzer.ts): sum, mean, max / min, argmax / argmin,
// prod, var / std, logsumexp (over axes, keepdims, ddof) and cumsum; their models.
import * as bn from "../../src/index.ts";
import type { DType, Tensor } from "../../src/index.ts";
import { err, fmtArgs, fmtVal, T, type Command, type Expect, type Snap } from "./common.ts";
import type { Fuzzer } from "./fuzzer.ts";
import { cstrides, isFloat, prod, wrapInt } from "./reference.ts";

export function genReduce(fz: Fuzzer): Command {
  const r = fz.r;
  const op = r.pick(["sum", "sum", "mean", "max", "min", "argmax", "argmin", "prod", "var", "std", "logsumexp", "cumsum"]);
  const x = fz.operand(0.05);
  const nd = x instanceof bn.Tensor && !x.disposed ? x.ndim : 2;
  const ax = () => (r.chance(0.08) ? r.pick<unknown>([nd, -nd - 1, 0.5, "0", NaN, 0n]) : r.int(-nd, Math.max(nd - 1, 0)));
  const X = x as Tensor;
  if (op === "cumsum") {
    const axis = r.chance(0.3) ? (r.chance(0.5) ? undefined : null) : ax();
    return {
      op,
      args: [x],
      run: r.chance(0.5) && x instanceof bn.Tensor ? () => X.cumsum(axis as number) : () => bn.cumsum(X, axis as number),
      desc: () => `bn.cumsum(${fmtArgs(x, axis)})`,
      model: (s) => cumsumModel(s[0]!, axis),
    };
  }
  let opts: unknown;
  const u = r.next();
  if (u < 0.2) opts = undefined;
  else if (u < 0.23) opts = r.pick<unknown>([5, "x", [], null]);
  else {
    const o: Record<string, unknown> = {};
    const v = r.next();
    if (v < 0.25) o.axis = r.chance(0.5) ? undefined : null;
    else if (v < 0.7) o.axis = ax();
    else if (v < 0.8) o.axis = [];
    else {
      const k = r.int(1, Math.max(nd, 1));
      o.axis = r.shuffle([...Array(nd).keys()]).slice(0, k).map((a) => (r.chance(0.3) ? a - nd : a));
      if (r.chance(0.1)) (o.axis as unknown[]).push((o.axis as unknown[])[0] ?? 0);
    }
    if (r.chance(0.5)) o.keepdims = r.chance(0.05) ? "yes" : r.chance(0.5);
    if ((op === "var" || op === "std") && r.chance(0.5)) o.ddof = r.chance(0.05) ? NaN : r.pick([0, 1, 2, 5, 0.5]);
    else if (r.chance(0.02)) o.ddof = 1;
    opts = o;
  }
  const method = x instanceof bn.Tensor && r.chance(0.5);
  const fname = op === "var" ? "var_" : op;
  const fn = (bn as unknown as Record<string, (x: unknown, o: unknown) => Tensor>)[fname]!;
  return {
    op,
    args: [x],
    run: method ? () => (X as unknown as Record<string, (o: unknown) => Tensor>)[op]!(opts) : () => fn(x, opts),
    desc: () => (method ? `(${fmtVal(x)}).${op}(${fmtVal(opts)})` : `bn.${fname}(${fmtArgs(x, opts)})`),
    model: (s) => reduceModel(op, s[0]!, opts),
  };
}

function reduceModel(op: string, sx: Snap, opts: unknown): Expect {
  if (sx.kind === "other") return err("ValueError");
  if (sx.kind === "tensor" && sx.disposed) return err("DisposedTensorError");
  const t = T(sx);
  let axis: unknown;
  let keepdims = false;
  let ddof = 0;
  if (opts !== undefined && opts !== null) {
    if (typeof opts !== "object" || Array.isArray(opts)) return err("ValueError");
    const o = opts as Record<string, unknown>;
    const kd = o.keepdims ?? false;
    if (typeof kd !== "boolean") return err("ValueError");
    keepdims = kd;
    if (o.ddof !== undefined) {
      if (op !== "var" && op !== "std") return err("ValueError");
      if (typeof o.ddof !== "number" || !Number.isFinite(o.ddof)) return err("ValueError");
      ddof = o.ddof;
    }
    axis = o.axis;
  }
  const nd = t.shape.length;
  const single = op === "argmin" || op === "argmax";
  let red: number[];
  if (axis === undefined || axis === null) red = [...Array(nd).keys()];
  else {
    if (single && typeof axis !== "number") return err("ShapeError");
    const list: unknown[] = typeof axis === "number" ? [axis] : Array.isArray(axis) ? axis : [axis];
    const seen = new Set<number>();
    const n = Math.max(nd, 1);
    for (const a of list) {
      if (typeof a !== "number" || !Number.isInteger(a) || a < -n || a >= n) return err("ShapeError");
      const x = a < 0 ? a + n : a;
      if (seen.has(x)) return err("ShapeError");
      seen.add(x);
    }
    red = nd === 0 ? [] : [...seen].sort((p, q) => p - q);
  }
  const nRed = prod(red.map((a) => t.shape[a]!));
  if (nRed === 0 && (op === "min" || op === "max" || single)) return err("ShapeError");
  const kept = [...Array(nd).keys()].filter((a) => !red.includes(a));
  const outShape = keepdims ? t.shape.map((d, i) => (red.includes(i) ? 1 : d)) : kept.map((a) => t.shape[a]!);
  const d = t.dtype;
  const fl = isFloat(d);
  let od: DType;
  if (op === "sum" || op === "prod") od = fl ? d : d.startsWith("u") ? "u32" : "i32";
  else if (op === "mean" || op === "var" || op === "std" || op === "logsumexp") od = fl ? d : "f32";
  else if (op === "min" || op === "max") od = d;
  else od = "i32";
  // Buckets: the reduced elements of each output, in row-major order of the reduced axes.
  const outN = prod(outShape);
  const buckets: number[][] = Array.from({ length: outN }, () => []);
  const keptShape = kept.map((a) => t.shape[a]!);
  const ks = cstrides(keptShape);
  const n = t.vals!.length;
  const idx = new Array<number>(nd).fill(0);
  for (let k = 0; k < n; k++) {
    let o = 0;
    for (let j = 0; j < kept.length; j++) o += idx[kept[j]!]! * ks[j]!;
    buckets[o]!.push(t.vals![k]!);
    for (let a = nd - 1; a >= 0; a--) {
      if (++idx[a]! < t.shape[a]!) break;
      idx[a] = 0;
    }
  }
  const vals = new Float64Array(outN);
  const mag = new Float64Array(outN);
  for (let i = 0; i < outN; i++) {
    const b = buckets[i]!;
    const sAbs = b.reduce((p, v) => p + Math.abs(v), 0);
    switch (op) {
      case "sum":
        vals[i] = fl ? b.reduce((p, v) => p + v, 0) : wrapInt(b.reduce((p, v) => p + v, 0), od);
        mag[i] = sAbs;
        break;
      case "prod":
        vals[i] = fl ? b.reduce((p, v) => p * v, 1) : wrapInt(b.reduce((p, v) => Math.imul(p, v), 1), od);
        break;
      case "mean":
        vals[i] = b.length === 0 ? NaN : b.reduce((p, v) => p + v, 0) / b.length;
        mag[i] = b.length === 0 ? 0 : sAbs / b.length;
        break;
      case "max":
      case "min": {
        let m = b[0]!;
        for (const v of b) {
          if (Number.isNaN(m)) break;
          if (Number.isNaN(v) || (op === "max" ? v > m : v < m)) m = v;
        }
        vals[i] = m;
        break;
      }
      case "argmax":
      case "argmin": {
        let j = 0;
        for (let q = 0; q < b.length; q++) {
          if (Number.isNaN(b[j]!)) break;
          if (Number.isNaN(b[q]!) || (op === "argmax" ? b[q]! > b[j]! : b[q]! < b[j]!)) j = q;
        }
        vals[i] = j;
        break;
      }
      case "var":
      case "std": {
        const m = b.reduce((p, v) => p + v, 0) / b.length;
        const ss = b.reduce((p, v) => p + (v - m) * (v - m), 0);
        const div = b.length - ddof;
        const v = b.length === 0 || div <= 0 ? NaN : ss / div;
        vals[i] = op === "std" ? Math.sqrt(v) : v;
        break;
      }
      case "logsumexp": {
        if (b.length === 0) vals[i] = -Infinity;
        else if (b.some(Number.isNaN)) vals[i] = NaN;
        else {
          const m = Math.max(...b);
          if (!Number.isFinite(m)) vals[i] = m;
          else vals[i] = m + Math.log(b.reduce((p, v) => p + Math.exp(v - m), 0));
          mag[i] = Math.abs(m) + 1;
        }
        break;
      }
    }
  }
  return { throws: false, out: { shape: outShape, dtype: od, vals, mag, atol: op === "logsumexp" ? 1e-6 : 0 } };
}

function cumsumModel(sx: Snap, axis: unknown): Expect {
  if (sx.kind === "other") return err("ValueError");
  if (sx.disposed) return err("DisposedTensorError");
  const t = T(sx);
  const nd = t.shape.length;
  let shape: number[];
  let ax: number;
  if (axis === undefined || axis === null) {
    shape = [t.vals!.length];
    ax = 0;
  } else {
    const n = Math.max(nd, 1);
    if (typeof axis !== "number" || !Number.isInteger(axis) || axis < -n || axis >= n) return err("ShapeError");
    ax = axis < 0 ? axis + n : axis;
    shape = nd === 0 ? [1] : t.shape;
  }
  const d = t.dtype;
  const fl = isFloat(d);
  const od: DType = fl ? d : d.startsWith("u") ? "u32" : "i32";
  const vals = new Float64Array(t.vals!.length);
  const mag = new Float64Array(vals.length);
  const cs = cstrides(shape);
  const len = shape[ax]!;
  const step = cs[ax]!;
  for (let k = 0; k < vals.length; k++) {
    const i = Math.floor(k / step) % len;
    const prev = i === 0 ? 0 : vals[k - step]!;
    const prevMag = i === 0 ? 0 : mag[k - step]!;
    const v = t.vals![k]!;
    vals[k] = prev + v;
    mag[k] = prevMag + Math.abs(v);
  }
  if (!fl) for (let k = 0; k < vals.length; k++) vals[k] = wrapInt(vals[k]!, od);
  return { throws: false, out: { shape, dtype: od, vals, mag } };
}
