// The API fuzzer's view commands (see fuzzer.ts): reshape / view, transpose / T, permute, slice,
// expand, squeeze / unsqueeze, contiguous, clone, flatten, astype; their targets and models.
import * as bn from "../../src/index.ts";
import type { DType, Tensor } from "../../src/index.ts";
import { err, fmtArgs, fmtVal, operandFault, T, type Command, type Expect, type Rng, type TSnap } from "./common.ts";
import type { Fuzzer } from "./fuzzer.ts";
import { broadcastVals, cast, checkShape, cstrides, DTYPES, gather, inferShape, isFloat, normAxis, prod } from "./reference.ts";

export function genView(fz: Fuzzer): Command {
  const r = fz.r;
  const x = fz.dead.length > 0 && r.chance(0.04) ? r.pick(fz.dead) : fz.pick();
  const t = x instanceof bn.Tensor ? x : null;
  const shape = t && !t.disposed ? t.shape : [2, 3];
  const nd = shape.length;
  const n = prod(shape);
  const kind = r.pick(["reshape", "reshape", "view", "transpose", "T", "permute", "slice", "slice", "slice", "expand", "squeeze", "unsqueeze", "contiguous", "clone", "flatten", "astype", "astype"]);
  const mk = (op: string, run: () => unknown, desc: string, model: (s: TSnap) => Expect): Command => ({
    op,
    args: [x],
    run,
    desc: () => `(${fmtVal(x)}).${desc}`,
    model: (s) => operandFault(s, "DTypeError") ?? model(T(s[0]!)),
  });
  const X = x as Tensor;
  const same = (s: TSnap, ns: number[], viewOf?: Tensor): Expect => ({ throws: false, out: { shape: ns, dtype: s.dtype, vals: s.vals!, exact: true, viewOf } });
  switch (kind) {
    case "reshape":
    case "view": {
      const target = reshapeTarget(r, n);
      const varargs = kind === "reshape" && r.chance(0.2) && Array.isArray(target) && target.length > 0 && typeof target[0] === "number";
      const tv = target as number[];
      const run = varargs ? () => X.reshape(tv[0]!, ...tv.slice(1)) : kind === "view" ? () => X.view(tv) : () => X.reshape(tv);
      return mk(kind, run, `${kind}(${fmtVal(target)})`, (s) => {
        if (!Array.isArray(target)) return err(); // any BitNetError (ShapeError, presumably)
        const ns = inferShape(target, n);
        if (ns === null) return err("ShapeError");
        const e = same(s, ns, s.contiguous ? s.t : undefined);
        if (kind === "view") {
          if (s.contiguous) return e;
          e.throws = "maybe";
          e.cls = "ShapeError";
          e.out!.viewOf = s.t;
        }
        return e;
      });
    }
    case "T":
    case "transpose": {
      const noArgs = kind === "T" || r.chance(0.3);
      const a = r.chance(0.1) ? r.pick([5, -5, 0.5, "0"]) : r.int(-nd - 1, Math.max(nd - 1, 0));
      const b = r.chance(0.3) ? undefined : r.int(-nd, Math.max(nd - 1, 0));
      const run = kind === "T" ? () => X.T : noArgs ? () => X.transpose() : () => X.transpose(a as number, b);
      return mk(kind, run, kind === "T" ? "T" : noArgs ? "transpose()" : `transpose(${fmtArgs(a, b)})`, (s) => {
        let axes: number[];
        if (noArgs) axes = [...Array(nd).keys()].reverse();
        else {
          const p = normAxis(a, nd);
          const q = normAxis(b ?? -1, nd);
          if (p === null || q === null) return err("ShapeError");
          axes = [...Array(nd).keys()];
          axes[p] = q;
          axes[q] = p;
        }
        return permuteExpect(s, axes);
      });
    }
    case "permute": {
      let axes: unknown[] = r.shuffle([...Array(nd).keys()]).map((a) => (r.chance(0.3) ? a - nd : a));
      if (r.chance(0.1)) axes = r.pick([[...axes, 0], axes.slice(1), axes.map(() => 0), axes.map((a) => (a as number) + nd), [0.5]]);
      return mk("permute", () => X.permute(axes as number[]), `permute(${fmtVal(axes)})`, (s) => {
        if (axes.length !== nd) return err("ShapeError");
        const norm = axes.map((a) => normAxis(a, nd));
        if (norm.some((a) => a === null) || new Set(norm).size !== nd) return err("ShapeError");
        return permuteExpect(s, norm as number[]);
      });
    }
    case "slice": {
      const specs = sliceSpecs(r, shape);
      return mk("slice", () => X.slice(specs as bn.SliceSpec[]), `slice(${fmtVal(specs)})`, (s) => sliceExpect(s, specs));
    }
    case "expand": {
      const target = expandTarget(r, shape);
      return mk("expand", () => (r.chance(0.5) ? X.expand(target as number[]) : X.broadcastTo(target as number[])), `expand(${fmtVal(target)})`, (s) => {
        if (!Array.isArray(target)) return err("ShapeError");
        const off = target.length - nd;
        const mapped = target.map((v, i) => (v === -1 && i >= off ? shape[i - off] : v));
        const ts = checkShape(mapped);
        if (ts === null || off < 0) return err("ShapeError");
        for (let i = 0; i < nd; i++) if (shape[i] !== ts[off + i] && shape[i] !== 1) return err("ShapeError");
        return { throws: false, out: { shape: ts, dtype: s.dtype, vals: broadcastVals(s.vals!, shape, ts), exact: true, viewOf: s.t } };
      });
    }
    case "squeeze": {
      const axis: unknown = r.chance(0.3) ? undefined : r.chance(0.15) ? [r.int(-nd, nd), r.int(-nd, nd)] : r.chance(0.1) ? r.pick([nd, -nd - 1, 0.5, "0"]) : r.int(-nd, Math.max(nd - 1, 0));
      return mk("squeeze", () => X.squeeze(axis as number), `squeeze(${fmtVal(axis)})`, (s) => {
        let drop: Set<number>;
        if (axis === undefined) drop = new Set(shape.flatMap((v, i) => (v === 1 ? [i] : [])));
        else {
          const list = (Array.isArray(axis) ? axis : [axis]).map((a) => normAxis(a, nd));
          if (list.some((a) => a === null)) return err("ShapeError");
          drop = new Set(list as number[]);
          for (const a of drop) if (shape[a] !== 1) return err("ShapeError");
        }
        return same(s, shape.filter((_, i) => !drop.has(i)), s.t);
      });
    }
    case "unsqueeze": {
      const axis: unknown = r.chance(0.1) ? r.pick([nd + 1, -nd - 2, 0.5, null]) : r.int(-nd - 1, nd);
      return mk("unsqueeze", () => X.unsqueeze(axis as number), `unsqueeze(${fmtVal(axis)})`, (s) => {
        const a = normAxis(axis, nd, 1);
        if (a === null) return err("ShapeError");
        const ns = shape.slice();
        ns.splice(a, 0, 1);
        return same(s, ns, s.t);
      });
    }
    case "contiguous":
      return mk("contiguous", () => X.contiguous(), "contiguous()", (s) => {
        const e = same(s, shape, s.contiguous ? s.t : undefined);
        e.out!.extra = (res) => ((res as Tensor).isContiguous() ? null : "contiguous() returned a non-contiguous tensor");
        return e;
      });
    case "clone":
      return mk("clone", () => X.clone(), "clone()", (s) => {
        const e = same(s, shape);
        e.out!.extra = (res) => ((res as Tensor)._s === s.t._s ? "clone() shares storage" : null);
        return e;
      });
    case "flatten":
      return mk("flatten", () => X.flatten(), "flatten()", (s) => same(s, [n], s.contiguous ? s.t : undefined));
    default: {
      const to: unknown = r.chance(0.06) ? fz.badDtype() : fz.dtype();
      return mk("astype", () => X.astype(to as DType), `astype(${fmtVal(to)})`, (s) => {
        if (!(typeof to === "string" && (DTYPES as readonly string[]).includes(to))) return err("DTypeError");
        const vals = Float64Array.from(s.vals!, (v) => cast(v, s.dtype, to));
        // int -> bf16 may round twice (through f32): compare those with tolerance
        return { throws: false, out: { shape, dtype: to as DType, vals, exact: !(to === "bf16" && !isFloat(s.dtype)) } };
      });
    }
  }
}

function permuteExpect(s: TSnap, axes: number[]): Expect {
  const cs = cstrides(s.shape);
  const ns = axes.map((a) => s.shape[a]!);
  return { throws: false, out: { shape: ns, dtype: s.dtype, vals: gather(ns, axes.map((a) => cs[a]!), 0, s.vals!), exact: true, viewOf: s.t } };
}

function reshapeTarget(r: Rng, n: number): unknown {
  if (r.chance(0.015)) return r.pick<unknown>([null, undefined, "ab", {}, 3n]); // not a shape at all
  if (r.chance(0.08)) return r.pick<unknown[]>([[n + 1], [-1, -1], [-2, -n], [2.5], [NaN], ["2"], new Array(33).fill(1), [0, -1]]);
  // Distribute the prime factors of n over 0..4 axes.
  const nd = n === 1 ? r.int(0, 3) : r.int(1, 4);
  const dims = new Array<number>(nd).fill(1);
  if (n === 0) {
    if (nd === 0) return [0];
    for (let i = 0; i < nd; i++) dims[i] = r.int(0, 3);
    dims[r.int(0, nd - 1)] = 0;
  } else {
    let m = n;
    for (let p = 2; m > 1; p++) {
      while (m % p === 0) {
        dims[r.int(0, nd - 1)]! *= p;
        m /= p;
      }
      if (p * p > m && m > 1) {
        dims[r.int(0, nd - 1)]! *= m;
        m = 1;
      }
    }
  }
  const out: unknown[] = dims;
  if (nd > 0 && r.chance(0.3)) out[r.int(0, nd - 1)] = -1;
  return out;
}

function sliceSpecs(r: Rng, shape: number[]): unknown {
  if (r.chance(0.03)) return r.pick<unknown>(["0", 5, null]);
  const nd = shape.length;
  const len = r.chance(0.05) ? nd + 1 : r.int(0, nd);
  const specs: unknown[] = [];
  for (let ax = 0; ax < len; ax++) {
    const dim = shape[ax] ?? 3;
    const u = r.next();
    if (u < 0.2) specs.push(r.chance(0.8) ? null : undefined);
    else if (u < 0.4) specs.push(r.chance(0.9) ? r.int(-dim, dim - 1) : r.pick<unknown>([dim, -dim - 1, 0.5, NaN, 0n]));
    else if (u < 0.43) specs.push(r.pick<unknown>(["1", {}, [0, 1, 0], [0, 1, 1.5], [0.5, 2]]));
    else {
      const b = () => (r.chance(0.25) ? null : r.int(-dim - 2, dim + 2));
      const step = r.chance(0.3) ? null : r.pick([1, 1, 2, 3, -1, -1, -2, -3, dim + 1]);
      specs.push(r.chance(0.2) ? [b(), b()] : [b(), b(), step]);
    }
  }
  return specs;
}

function sliceExpect(s: TSnap, specs: unknown): Expect {
  const shape = s.shape;
  const nd = shape.length;
  if (!Array.isArray(specs) || specs.length > nd) return err("ShapeError");
  const cs = cstrides(shape);
  let off = 0;
  const ns: number[] = [];
  const st: number[] = [];
  for (let ax = 0; ax < nd; ax++) {
    const dim = shape[ax]!;
    const spec: unknown = ax < specs.length ? specs[ax] : null;
    if (spec === null || spec === undefined) {
      ns.push(dim);
      st.push(cs[ax]!);
    } else if (typeof spec === "number") {
      if (!Number.isInteger(spec) || spec < -dim || spec >= dim) return err("ShapeError");
      off += (spec < 0 ? spec + dim : spec) * cs[ax]!;
    } else if (Array.isArray(spec)) {
      const step = spec[2] ?? 1;
      if (!Number.isInteger(step) || step === 0) return err("ShapeError");
      const bound = (v: unknown, dflt: number, lo: number, hi: number): number | null => {
        if (v === null || v === undefined) return dflt;
        if (typeof v !== "number" || !Number.isInteger(v)) return null;
        const x = v < 0 ? v + dim : v;
        return x < lo ? lo : x > hi ? hi : x;
      };
      const start = step > 0 ? bound(spec[0], 0, 0, dim) : bound(spec[0], dim - 1, -1, dim - 1);
      const stop = step > 0 ? bound(spec[1], dim, 0, dim) : bound(spec[1], -1, -1, dim - 1);
      if (start === null || stop === null) return err("ShapeError");
      const len = step > 0 ? (stop > start ? Math.ceil((stop - start) / step) : 0) : start > stop ? Math.ceil((start - stop) / -step) : 0;
      if (len > 0) off += start * cs[ax]!;
      ns.push(len);
      st.push(cs[ax]! * step);
    } else return err("ShapeError");
  }
  return { throws: false, out: { shape: ns, dtype: s.dtype, vals: gather(ns, st, off, s.vals!), exact: true, viewOf: s.t } };
}

function expandTarget(r: Rng, shape: number[]): unknown {
  if (r.chance(0.04)) return r.pick<unknown>(["3", null, 4]);
  let t: unknown[] = shape.map((d) => (d === 1 && r.chance(0.6) ? r.int(0, 5) : r.chance(0.2) ? -1 : d));
  const lead = r.int(0, 2);
  for (let i = 0; i < lead; i++) t.unshift(r.chance(0.1) ? 0 : r.int(1, 4));
  if (r.chance(0.1)) {
    const i = r.int(0, Math.max(t.length - 1, 0));
    t = t.length > 0 ? t.map((v, j) => (j === i ? r.pick([-1, 7, -2, 1.5]) : v)) : [1];
  }
  if (r.chance(0.03)) t = t.slice(1);
  while (t.length > 0 && prod(t.map((v) => (typeof v === "number" && v > 0 ? v : 1))) > 4096) t.shift();
  return t;
}
