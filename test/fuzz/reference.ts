/**
 * The API fuzzer's float64 reference model (see fuzzer.ts): dtype conversion and promotion as the
 * engine does them, the math of each unary and binary op, row-major array helpers, and the shape
 * rules of src/shape.ts. Written from the definitions and the docs, independent of the engine.
 * @module
 */
import type { DType } from "../../src/index.ts";
import { toBF16, wrapInt as wrapIntOf, INT_RANGE, rowMajorStrides } from "../helpers.ts";

// ================================================================================================
// dtype model (zig/cpu/dtype.zig's conversion rules, src/dtype.ts's promotion)
// ================================================================================================

export const DTYPES: readonly DType[] = ["f32", "f16", "bf16", "i8", "i16", "i32", "u8", "u16", "u32", "bool"];
export const isFloat = (d: string): boolean => d === "f32" || d === "f16" || d === "bf16";
export { INT_RANGE };
export const FMAX: Record<string, number> = { f32: 3.4028234663852886e38, f16: 65504, bf16: 3.3895313892515355e38 };
const is32 = (d: string) => d === "i32" || d === "u32";

const f16buf = new Float16Array(1);

/** A float64 rounded into a float dtype. */
export function roundF(d: string, x: number): number {
  if (d === "f32") return Math.fround(x);
  if (d === "f16") {
    f16buf[0] = x;
    return f16buf[0]!;
  }
  return toBF16(x);
}

/** Two's complement wrap of an integer value into an integer dtype (bool: nonzero is 1). */
export function wrapInt(x: number, d: string): number {
  return d === "bool" ? (x !== 0 ? 1 : 0) : wrapIntOf(x, d as DType);
}

/** One value converted from dtype `from` ("f64" for JS numbers) to `to`, as the engine does. */
export function cast(v: number, from: string, to: string): number {
  if (to === "bool") return v !== 0 || Number.isNaN(v) ? 1 : 0;
  if (isFloat(to)) return roundF(to, v);
  if (from === "f64" || isFloat(from)) {
    if (Number.isNaN(v)) return 0;
    const [lo, hi] = INT_RANGE[to]!;
    return Math.min(Math.max(Math.trunc(v), lo), hi) + 0;
  }
  return wrapInt(v, to);
}

const INT_BITS: Record<string, [number, boolean]> = {
  bool: [1, false],
  i8: [8, true],
  i16: [16, true],
  i32: [32, true],
  u8: [8, false],
  u16: [16, false],
  u32: [32, false],
};
function intOf(bits: number, signed: boolean): DType {
  if (signed) return bits <= 8 ? "i8" : bits <= 16 ? "i16" : "i32";
  return bits <= 1 ? "bool" : bits <= 8 ? "u8" : bits <= 16 ? "u16" : "u32";
}
/** NumPy's promotion table restricted to our dtypes (written from the docs of src/dtype.ts). */
export function promote(a: DType, b: DType): DType {
  if (a === b) return a;
  if (isFloat(a) && isFloat(b)) return "f32";
  if (isFloat(a)) return a;
  if (isFloat(b)) return b;
  if (a === "bool") return b;
  if (b === "bool") return a;
  const [ba, sa] = INT_BITS[a]!;
  const [bb, sb] = INT_BITS[b]!;
  if (sa === sb) return intOf(Math.max(ba, bb), sa);
  const [sBits, uBits] = sa ? [ba, bb] : [bb, ba];
  if (sBits > uBits) return intOf(sBits, true);
  return intOf(Math.min(uBits * 2, 32), true);
}

/** Relative tolerance of a float dtype. */
export const RTOL: Record<string, number> = { f32: 1e-5, f16: 1e-3, bf16: 1e-2 };

// ================================================================================================
// float64 math references
// ================================================================================================

/** erf(x) by its everywhere-positive series (|x| < 3), for erfc below. */
function erfSeries(x: number): number {
  // erf(x) = 2/sqrt(pi) e^{-x^2} sum_n 2^n x^{2n+1} / (1·3·…·(2n+1))
  let term = x;
  let sum = x;
  const x2 = x * x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (Math.abs(term) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
}
/** erfc(z) for z >= 0, relative accuracy ~1e-13. */
function erfcPos(z: number): number {
  if (z < 3) return 1 - erfSeries(z);
  if (z > 27) return 0;
  // Continued fraction (modified Lentz): erfc(z) = e^{-z^2}/sqrt(pi) · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + ...))))
  const tiny = 1e-300;
  let f = z;
  let c = z;
  let d = 0;
  for (let n = 1; n < 500; n++) {
    const an = n / 2;
    d = z + an * d;
    d = d === 0 ? tiny : d;
    c = z + an / c;
    c = c === 0 ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
}
function erf(x: number): number {
  if (Number.isNaN(x)) return x;
  if (x === 0) return x;
  const a = Math.abs(x);
  const r = a < 0.5 ? erfSeries(a) : 1 - erfcPos(a);
  return x < 0 ? -r : r;
}
/** Phi(x) = 0.5 erfc(-x / sqrt2), accurate in both tails. */
function phi(x: number): number {
  const z = -x / Math.SQRT2;
  return z >= 0 ? 0.5 * erfcPos(z) : 1 - 0.5 * erfcPos(-z);
}
function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}
/** Unary ops in float64 (special values as documented in zig/cpu/vmath.zig). */
export function unaryRef(op: string, x: number, lo = NaN, hi = NaN): number {
  switch (op) {
    case "neg":
      return -x;
    case "abs":
      return Math.abs(x);
    case "exp":
      return Math.exp(x);
    case "log":
      return Math.log(x);
    case "sqrt":
      return Math.sqrt(x);
    case "rsqrt":
      return 1 / Math.sqrt(x);
    case "sin":
      return Math.sin(x);
    case "cos":
      return Math.cos(x);
    case "tanh":
      return Math.tanh(x);
    case "erf":
      return erf(x);
    case "floor":
      return Math.floor(x);
    case "ceil":
      return Math.ceil(x);
    case "round": {
      if (!Number.isFinite(x)) return x;
      const f = Math.floor(x);
      const d = x - f;
      const r = d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
      return r === 0 ? (x < 0 || Object.is(x, -0) ? -0 : 0) : r;
    }
    case "sign":
      return x > 0 ? 1 : x < 0 ? -1 : x;
    case "relu":
      return x > 0 ? x : Number.isNaN(x) ? x : 0;
    case "sigmoid":
      return Number.isNaN(x) ? x : sigmoid(x);
    case "silu":
      return x === -Infinity ? -0 : Number.isNaN(x) ? x : x * sigmoid(x);
    case "gelu":
      return x === -Infinity ? -0 : x === Infinity ? x : x * phi(x);
    case "gelu_tanh": {
      if (x === -Infinity) return -0;
      if (x === Infinity || Number.isNaN(x)) return x;
      return x * sigmoid(2 * Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x));
    }
    case "clip": {
      let r = x;
      if (!Number.isNaN(lo) && !Number.isNaN(r)) r = Math.max(r, lo);
      if (!Number.isNaN(hi) && !Number.isNaN(r)) r = Math.min(r, hi);
      return r;
    }
  }
  throw new Error(`fuzz model: unknown unary ${op}`);
}
/** Functions computed by polynomial approximations: an absolute floor on their tolerance. */
export const APPROX = new Set(["log", "sin", "cos", "tanh", "erf", "sigmoid", "silu", "gelu", "gelu_tanh"]);

/** C99 / Zig pow special cases over JS's Math.pow. */
function cpow(a: number, b: number): number {
  if (b === 0) return 1;
  if (a === 1) return 1;
  if (a === -1 && !Number.isFinite(b) && !Number.isNaN(b)) return 1;
  return Math.pow(a, b);
}
function mulWrap(x: number, y: number, d: string): number {
  return wrapInt(is32(d) ? Math.imul(x, y) : x * y, d);
}
/** Integer power with wrap-around (zig/cpu/elementwise.zig powScalar). */
function ipow(a: number, b: number, d: string): number {
  if (d.startsWith("i") && b < 0) return a === 1 ? 1 : a === -1 ? (b % 2 === 0 ? 1 : -1) : 0;
  let base = a;
  let e = b;
  let r = 1;
  while (e !== 0) {
    if (e % 2 !== 0) r = mulWrap(r, base, d);
    base = mulWrap(base, base, d);
    e = Math.floor(e / 2);
  }
  return r;
}
export const COMPARE = new Set(["eq", "ne", "lt", "le", "gt", "ge"]);
/** a op b for values already in compute dtype `cd`; the result before rounding/wrapping. */
export function binRef(op: string, cd: string, a: number, b: number): number {
  const fl = isFloat(cd);
  switch (op) {
    case "add":
      return a + b;
    case "sub":
      return a - b;
    case "mul":
      return fl ? a * b : is32(cd) ? Math.imul(a, b) : a * b;
    case "div":
      return a / b;
    case "pow":
      return fl ? cpow(a, b) : ipow(a, b, cd);
    case "maximum":
      return Number.isNaN(a) ? a : Number.isNaN(b) ? b : Math.max(a, b);
    case "minimum":
      return Number.isNaN(a) ? a : Number.isNaN(b) ? b : Math.min(a, b);
    case "eq":
      return a === b ? 1 : 0;
    case "ne":
      return a !== b ? 1 : 0;
    case "lt":
      return a < b ? 1 : 0;
    case "le":
      return a <= b ? 1 : 0;
    case "gt":
      return a > b ? 1 : 0;
    case "ge":
      return a >= b ? 1 : 0;
  }
  throw new Error(`fuzz model: unknown binary ${op}`);
}
/** Stores a computed value in dtype d: floats stay unrounded (compared with tolerance), integers wrap. */
export function store(d: string, v: number): number {
  return isFloat(d) ? v : wrapInt(v, d);
}

// ================================================================================================
// Row-major array helpers
// ================================================================================================

export const prod = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);
export const cstrides = rowMajorStrides;
/** Calls f(flatIndexIntoSource) for each element of `shape`, where the source index is base + Σ idx·st. */
export function gather(shape: readonly number[], st: readonly number[], base: number, src: ArrayLike<number>): Float64Array {
  const n = prod(shape);
  const out = new Float64Array(n);
  if (n === 0) return out;
  const nd = shape.length;
  const idx = new Array<number>(nd).fill(0);
  let off = base;
  for (let k = 0; k < n; k++) {
    out[k] = src[off]!;
    for (let ax = nd - 1; ax >= 0; ax--) {
      if (++idx[ax]! < shape[ax]!) {
        off += st[ax]!;
        break;
      }
      off -= st[ax]! * (shape[ax]! - 1);
      idx[ax] = 0;
    }
  }
  return out;
}
export function broadcastShape(a: readonly number[], b: readonly number[]): number[] | null {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return null;
    out.push(da === 1 ? db : da);
  }
  return out;
}
/** Values of (shape, vals) broadcast to `target` (assumed compatible). */
export function broadcastVals(vals: Float64Array, shape: readonly number[], target: readonly number[]): Float64Array {
  const off = target.length - shape.length;
  const cs = cstrides(shape);
  const st = target.map((_, i) => (i < off || shape[i - off] === 1 ? 0 : cs[i - off]!));
  return gather(target, st, 0, vals);
}
export const validDim = (d: unknown): d is number => typeof d === "number" && Number.isInteger(d) && d >= 0 && d <= Number.MAX_SAFE_INTEGER;
/** src/shape.ts checkShape: the shape or null (ShapeError). */
export function checkShape(s: unknown): number[] | null {
  if (typeof s === "number") s = [s];
  if (!Array.isArray(s) || s.length > 32) return null;
  return s.every(validDim) ? (s as number[]).slice() : null;
}
/** Normalised axis (`extra` insertion points) or null. */
export function normAxis(a: unknown, nd: number, extra = 0): number | null {
  const n = nd + extra;
  if (typeof a !== "number" || !Number.isInteger(a) || a < -n || a >= n) return null;
  return a < 0 ? a + n : a;
}
/** src/shape.ts inferShape: the shape or null (ShapeError). */
export function inferShape(target: readonly unknown[], size: number): number[] | null {
  if (target.length > 32) return null;
  let infer = -1;
  let known = 1;
  const out: number[] = [];
  for (let i = 0; i < target.length; i++) {
    const d = target[i];
    if (d === -1 && infer < 0) {
      infer = i;
      out.push(-1);
      continue;
    }
    if (typeof d !== "number" || !Number.isInteger(d) || d < 0) return null;
    out.push(d);
    known *= d;
  }
  if (infer >= 0) {
    if (known === 0 || size % known !== 0) return null;
    out[infer] = size / known;
  } else if (known !== size) return null;
  return out;
}

