// The API fuzzer's matmul and ternary commands (see fuzzer.ts): matmul (batched, vectors, any
// view), quant.ternary (formats, granularities) and quant.ternaryMatmul; their models.
import * as bn from "../../src/index.ts";
import type { DType, Tensor, TernaryTensor } from "../../src/index.ts";
import { err, fmtArgs, fmtVal, T, type Command, type Expect, type Snap } from "./common.ts";
import type { Fuzzer } from "./fuzzer.ts";
import { broadcastShape, broadcastVals, cast, isFloat, prod, promote, unaryRef, wrapInt } from "./reference.ts";

export function genMatmul(fz: Fuzzer): Command {
  const r = fz.r;
  const small = () => (r.chance(0.05) ? 0 : r.chance(0.85) ? r.int(1, 12) : r.int(13, 40));
  const m = small();
  const k = small();
  const n = small();
  const form = r.int(0, 7);
  let sa: number[];
  let sb: number[];
  const b1 = r.int(1, 3);
  switch (form) {
    case 0:
    case 1:
      sa = [m, k];
      sb = [k, n];
      break;
    case 2:
      sa = [k];
      sb = [k, n];
      break;
    case 3:
      sa = [m, k];
      sb = [k];
      break;
    case 4:
      sa = [k];
      sb = [k];
      break;
    case 5:
      sa = [b1, m, k];
      sb = [k, n];
      break;
    case 6:
      sa = [b1, m, k];
      sb = [r.chance(0.5) ? b1 : 1, k, n];
      break;
    default:
      sa = [r.int(1, 2), 1, m, k];
      sb = [b1, k, n];
  }
  const bad = r.next();
  if (bad < 0.05) sb[Math.max(sb.length - 2, 0)]! += 1; // inner mismatch
  else if (bad < 0.07 && sa.length >= 3 && sb.length >= 3) sb[0] = sa[0]! + 1;
  else if (bad < 0.08) sa = [];
  const da = r.chance(0.7) ? fz.floatDtype() : fz.dtype();
  const db = r.chance(0.7) ? da : fz.dtype();
  let a: unknown;
  let b: unknown;
  if (r.chance(0.3)) {
    // A pool tensor (any view: transposed, stepped, expanded with stride 0) on one side.
    const p = fz.pick((t) => t.ndim >= 1 && t.ndim <= 3 && t.size <= 2048);
    const ps = p.shape;
    const pk = ps[ps.length - 1]!;
    if (ps.length >= 2 && r.chance(0.4)) {
      // p on the right: [..., K, N]
      const kk = ps[ps.length - 2]!;
      a = fz.fresh(r.chance(0.3) ? [kk] : [...ps.slice(0, -2).map((d) => (r.chance(0.3) ? 1 : d)), m, kk], da);
      b = p;
    } else {
      a = p;
      b = fz.fresh(r.chance(0.3) ? [pk] : [pk, n], db);
    }
  } else {
    a = r.chance(0.04) ? fz.operand(1) : fz.fresh(sa, da);
    b = r.chance(0.03) ? fz.operand(1) : fz.fresh(sb, db);
  }
  const method = a instanceof bn.Tensor && r.chance(0.5);
  return {
    op: "matmul",
    args: [a, b],
    run: method ? () => (a as Tensor).matmul(b as Tensor) : () => bn.matmul(a as Tensor, b as Tensor),
    desc: () => (method ? `(${fmtVal(a)}).matmul(${fmtVal(b)})` : `bn.matmul(${fmtArgs(a, b)})`),
    model: (s) => matmulModel(s[0]!, s[1]!),
  };
}

function matmulModel(sa: Snap, sb: Snap): Expect {
  for (const s of [sa, sb]) {
    if (s.kind !== "tensor") return err("DTypeError");
    if (s.disposed) return err("DisposedTensorError");
  }
  const A = T(sa);
  const B = T(sb);
  if (A.shape.length === 0 || B.shape.length === 0) return err("ShapeError");
  const rd = promote(A.dtype, B.dtype);
  const xs = A.shape.length === 1 ? [1, A.shape[0]!] : A.shape;
  const ys = B.shape.length === 1 ? [B.shape[0]!, 1] : B.shape;
  const M = xs[xs.length - 2]!;
  const K = xs[xs.length - 1]!;
  const K2 = ys[ys.length - 2]!;
  const N = ys[ys.length - 1]!;
  if (K !== K2) return err("ShapeError");
  const batch = broadcastShape(xs.slice(0, -2), ys.slice(0, -2));
  if (batch === null) return err("ShapeError");
  const fl = isFloat(rd);
  // The kernel's operands: the promoted float dtype, or i32 for integers and bool (exact widening / wrap).
  const kd: DType = fl ? rd : "i32";
  const av = broadcastVals(Float64Array.from(A.vals!, (v) => cast(v, A.dtype, kd)), xs, [...batch, M, K]);
  const bv = broadcastVals(Float64Array.from(B.vals!, (v) => cast(v, B.dtype, kd)), ys, [...batch, K, N]);
  const nb = prod(batch);
  const vals = new Float64Array(nb * M * N);
  const mag = new Float64Array(vals.length);
  for (let p = 0; p < nb; p++) {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let acc = 0;
        let g = 0;
        for (let q = 0; q < K; q++) {
          const x = av[(p * M + i) * K + q]!;
          const y = bv[(p * K + q) * N + j]!;
          if (fl) {
            acc += x * y;
            g += Math.abs(x * y);
          } else acc = (acc + Math.imul(x, y)) | 0;
        }
        const o = (p * M + i) * N + j;
        vals[o] = fl ? acc : rd === "bool" ? (acc !== 0 ? 1 : 0) : wrapInt(acc, rd);
        mag[o] = g;
      }
    }
  }
  const shape = [...batch];
  if (A.shape.length > 1) shape.push(M);
  if (B.shape.length > 1) shape.push(N);
  return { throws: false, out: { shape, dtype: rd, vals, mag } };
}

// ---- ternary quantization and ternaryMatmul ----------------------------------------------------

export function genTernary(fz: Fuzzer): Command {
  const r = fz.r;
  const format: unknown = r.chance(0.04) ? r.pick(["q4", "I2", null]) : r.pick(["i2", "i2", "i2", "tq2_0", "tq1_0", undefined]);
  const tq = format === "tq2_0" || format === "tq1_0";
  let w: unknown;
  if (r.chance(0.25)) w = fz.operand(0.1, (t) => t.ndim >= 1 && isFloat(t.dtype) && t.size <= 1024);
  else {
    const k = tq || r.chance(0.2) ? r.pick([256, 512]) : r.int(1, 64);
    const rows = r.chance(0.85) ? [r.int(1, 8)] : r.chance(0.5) ? [] : [2, r.int(1, 3)];
    w = fz.fresh([...rows, tq && r.chance(0.05) ? k + 1 : k], r.chance(0.05) ? r.pick(["i8", "i32"] as DType[]) : fz.floatDtype());
  }
  const g = r.next();
  const granularity: unknown = g < 0.4 ? undefined : g < 0.6 ? "tensor" : g < 0.8 ? "channel" : g < 0.95 ? { group: r.pick([256, 256, 512]) } : r.pick<unknown>([{ group: 100 }, { group: 0 }, { group: -256 }, "row", { group: "1" }]);
  let opts: unknown = { format, granularity };
  if (format === undefined) delete (opts as Record<string, unknown>).format;
  if (granularity === undefined) delete (opts as Record<string, unknown>).granularity;
  if (r.chance(0.03)) opts = r.pick<unknown>([null, { bits: 2 }, 3]);
  const omit = r.chance(0.2) && Object.keys(opts ?? {}).length === 0;
  return {
    op: "quant.ternary",
    args: [w],
    run: omit ? () => bn.quant.ternary(w as Tensor) : () => bn.quant.ternary(w as Tensor, opts as bn.TernaryOptions),
    desc: () => `bn.quant.ternary(${fmtArgs(w, opts)})`,
    model: (s) => ternaryModel(s[0]!, omit ? {} : opts),
  };
}

function ternaryModel(sw: Snap, opts: unknown): Expect {
  if (sw.kind !== "tensor") return err("DTypeError");
  if (sw.disposed) return err("DisposedTensorError");
  if (typeof opts !== "object" || opts === null) return err("ValueError");
  const o = opts as Record<string, unknown>;
  for (const key of Object.keys(o)) if (key !== "granularity" && key !== "format") return err("ValueError");
  const format = o.format ?? "i2";
  if (format !== "i2" && format !== "tq2_0" && format !== "tq1_0") return err("ValueError");
  if (!isFloat(sw.dtype)) return err("DTypeError");
  const shape = sw.shape;
  if (shape.length === 0) return err("ShapeError");
  const k = shape[shape.length - 1]!;
  if (format !== "i2" && k % 256 !== 0) return err("ShapeError");
  const g = o.granularity;
  let mode: "tensor" | "channel" | "group";
  let group = 0;
  if (g === undefined || g === "tensor") mode = "tensor";
  else if (g === "channel") mode = "channel";
  else if (typeof g === "object" && g !== null && "group" in g) {
    const gr = (g as { group: unknown }).group;
    if (typeof gr !== "number" || !Number.isInteger(gr) || gr <= 0) return err("ValueError");
    if (gr % 256 !== 0 || k % gr !== 0) return err("ShapeError");
    mode = "group";
    group = gr;
  } else return err("ValueError");
  // absmean in f32: w -> f32 (exact from f16/bf16), scale = mean|w| per group, t = clip(round(w / (scale + eps)), -1, 1)
  const w = Float64Array.from(sw.vals!, (v) => Math.fround(v));
  const n = w.length;
  const rows = prod(shape.slice(0, -1));
  const gl = mode === "tensor" ? n : mode === "channel" ? k : group; // weights a scale
  const ng = mode === "tensor" ? 1 : mode === "channel" ? rows : rows * (k / group);
  const scale = new Float64Array(ng);
  const bigGroup = new Uint8Array(ng);
  for (let gi = 0; gi < ng; gi++) {
    let sum = 0;
    for (let i = gi * gl; i < Math.min((gi + 1) * gl, n); i++) sum += Math.abs(w[i]!);
    scale[gi] = n === 0 ? 0 : Math.fround(sum / gl);
    // f32 partial sums may overflow where the f64 sum does not: not modeled
    if (sum > 1e38) bigGroup[gi] = 1;
  }
  const eps = Math.fround(1e-5);
  const q = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const gi = Math.floor(i / gl);
    const sc = scale[gi]!;
    const den = Math.fround(sc + eps);
    const ratio = Math.fround(w[i]! / den);
    // Near the 0.5 rounding boundary the f32 mean's last bits decide: not modeled.
    if (bigGroup[gi] || Math.abs(Math.abs(ratio) - 0.5) < 1e-4) q[i] = NaN;
    else {
      const rr = unaryRef("round", ratio);
      q[i] = Number.isNaN(rr) ? 0 : Math.min(Math.max(rr, -1), 1);
    }
  }
  const lead = shape.slice(0, -1);
  const scaleShape = mode === "tensor" ? [] : mode === "channel" ? lead : [...lead, k / group];
  return {
    throws: false,
    ternary: { shape, format: format as string, granularity: format === "i2" ? mode : "block", group, q, scale, scaleShape, scaleSkip: bigGroup },
  };
}

export function genTernaryMatmul(fz: Fuzzer): Command {
  const r = fz.r;
  let w: unknown;
  if (fz.tpool.length > 0 && r.chance(0.7)) w = r.pick(fz.tpool);
  else if (fz.tdead.length > 0 && r.chance(0.1)) w = r.pick(fz.tdead);
  else if (r.chance(0.05)) w = fz.pick();
  else {
    const k = r.chance(0.8) ? r.int(1, 64) : 256;
    const src = fz.fresh([r.int(1, 8), k], fz.floatDtype());
    const o: bn.TernaryOptions = { format: k % 256 === 0 ? r.pick(["i2", "tq2_0", "tq1_0"] as const) : "i2", granularity: k % 256 === 0 ? r.pick<bn.TernaryGranularity>(["tensor", "channel", { group: 256 }]) : r.pick<bn.TernaryGranularity>(["tensor", "channel"]) };
    try {
      w = bn.quant.ternary(src, o);
      fz.tpool.push(w as TernaryTensor);
    } catch (e) {
      fz.fail("helper-threw", "quant.ternary", `bn.quant.ternary(${fmtArgs(src, o)})`, String(e));
      w = fz.pick();
    }
  }
  const ws = w instanceof bn.TernaryTensor && !w.disposed ? w.shape : [2, 4];
  const kk = ws[ws.length - 1]!;
  const lead = r.chance(0.6) ? [r.int(1, 6)] : r.chance(0.5) ? [] : [r.int(1, 3), r.int(0, 3)];
  const xk = r.chance(0.05) ? kk + 1 : kk;
  const xd = r.chance(0.05) ? r.pick(["i8", "i32", "bool"] as DType[]) : fz.floatDtype();
  let x: unknown;
  if (r.chance(0.25)) {
    // a pool tensor (any view) whose last axis fits
    const c = fz.pool.filter((t) => t.ndim >= 1 && t.shape[t.ndim - 1] === kk && isFloat(t.dtype));
    x = c.length > 0 ? r.pick(c) : fz.fresh([...lead, xk], xd);
  } else x = r.chance(0.04) ? fz.operand(1) : fz.fresh([...lead, xk], xd);
  return {
    op: "quant.ternaryMatmul",
    args: [x, w],
    run: () => bn.quant.ternaryMatmul(x as Tensor, w as TernaryTensor),
    desc: () => `bn.quant.ternaryMatmul(${fmtArgs(x, w)})`,
    model: (s) => ternaryMatmulModel(s[0]!, s[1]!),
  };
}

function ternaryMatmulModel(sx: Snap, sw: Snap): Expect {
  if (sx.kind !== "tensor") return err("DTypeError");
  if (sw.kind !== "ternary") return err("DTypeError");
  if (sx.disposed || sw.disposed) return err("DisposedTensorError");
  if (!isFloat(sx.dtype)) return err("DTypeError");
  if (sw.shape.length !== 2) return err("ShapeError");
  const [N, K] = sw.shape as [number, number];
  const xs = sx.shape;
  if (xs.length === 0 || xs[xs.length - 1] !== K) return err("ShapeError");
  const lead = xs.slice(0, -1);
  const M = prod(lead);
  const vals = new Float64Array(M * N);
  const mag = new Float64Array(M * N);
  const skip = new Uint8Array(M * N);
  const x = sx.vals!;
  for (let i = 0; i < M; i++) {
    const row = x.subarray(i * K, (i + 1) * K);
    let mx = 0;
    let finite = true;
    for (const v of row) {
      if (!Number.isFinite(v)) finite = false;
      mx = Math.max(mx, Math.abs(v));
    }
    const s = 127 / Math.fround(mx);
    for (let j = 0; j < N; j++) {
      const o = i * N + j;
      let acc = 0;
      let bound = 0;
      let g = 0;
      let ok = finite;
      for (let q = 0; q < K; q++) {
        const t = sw.q![j * K + q]!;
        const sc = sw.sc![j * K + q]!;
        if (!Number.isFinite(sc)) ok = false;
        acc += row[q]! * t * sc;
        g += Math.abs(row[q]! * t * sc);
        bound += Math.abs(t) * sc;
      }
      if (!ok) {
        skip[o] = 1;
        continue;
      }
      vals[o] = mx === 0 ? 0 : acc;
      // int8 activations: each is off by at most half a step 1/s (in x's units)
      mag[o] = mx === 0 ? 0 : g + (bound * 0.5 * 1.0001) / s / 1e-5;
    }
  }
  return { throws: false, out: { shape: [...lead, N], dtype: "f32", vals, mag, skip, atol: 1e-30, bound: true } };
}
