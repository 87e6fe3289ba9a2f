/**
 * Elementwise operations with NumPy broadcasting: binary arithmetic and comparisons, in-place
 * updates, unary math, activations (and their derivatives, for autograd) and `where`.
 *
 * Type promotion (documented in docs/tensor_implementation_guide.md):
 * - tensor with tensor: {@link promoteTypes} (NumPy's table restricted to our dtypes);
 * - tensor with a JS number (a "weak" scalar, NumPy 2 / NEP 50): the tensor's dtype wins within
 *   its kind (an integer number into an integer tensor must fit its range, else ValueError); a
 *   non-integer number with an integer or bool tensor gives f32; a boolean keeps bool tensors bool;
 * - `div` of integers or bools gives f32 (true division); comparisons give bool;
 * - bool tensors: `add`/`mul`/`maximum`/`minimum` stay bool (logical or / and), `sub` and `neg`
 *   are DTypeErrors (as in NumPy), `pow` computes in i8;
 * - float functions (`exp`, `log`, `sin`, `tanh`, `gelu`, ...) of integer or bool tensors give f32.
 * Integer arithmetic wraps (two's complement); integer `pow` with a negative exponent gives the
 * truncated result (0 unless the base is ±1).
 * @module
 */
import { type DType, dtypeInfo, promoteTypes } from "../dtype.ts";
import { DTypeError, DeviceError, ShapeError, ValueError, fmtShape, show } from "../errors.ts";
import { check, putLayout, sym } from "../native.ts";
import { broadcastShapes, broadcastStrides } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { DTypeCode } from "../abi.gen.ts";
import { recording, record } from "../autograd/graph.ts";
import { AutogradError } from "../errors.ts";

/** A tensor, or a JS number / boolean standing for a scalar. */
export type Operand = Tensor | number | boolean;

const BIN = { add: 0, sub: 1, mul: 2, div: 3, pow: 4, maximum: 5, minimum: 6, eq: 7, ne: 8, lt: 9, le: 10, gt: 11, ge: 12 } as const;
type BinName = keyof typeof BIN;
const UN = {
  neg: 0, abs: 1, exp: 2, log: 3, sqrt: 4, rsqrt: 5, sin: 6, cos: 7, tanh: 8, erf: 9, floor: 10, ceil: 11, round: 12,
  sign: 13, relu: 14, gelu: 15, gelu_tanh: 16, silu: 17, sigmoid: 18, clip: 19, relu_grad: 20, gelu_grad: 21,
  gelu_tanh_grad: 22, silu_grad: 23, sigmoid_grad: 24, tanh_grad: 25,
} as const;
type UnName = keyof typeof UN;

/** Unary ops that are defined on integers (and keep the dtype); the rest compute in floats. */
const INT_UNARY = new Set<UnName>(["neg", "abs", "sign", "relu", "clip", "floor", "ceil", "round", "relu_grad"]);
const COMPARE = new Set<BinName>(["eq", "ne", "lt", "le", "gt", "ge"]);

const INT_RANGE: Partial<Record<DType, [number, number]>> = {
  i8: [-128, 127],
  i16: [-32768, 32767],
  i32: [-2147483648, 2147483647],
  u8: [0, 255],
  u16: [0, 65535],
  u32: [0, 4294967295],
};

const kind = (d: DType) => (d === "bool" ? 0 : dtypeInfo(d).isFloat ? 2 : 1);

/** The dtype of `t op s` for a tensor dtype and a JS scalar (NumPy 2's weak scalars). */
function promoteScalar(d: DType, s: number | boolean, op: string): DType {
  if (typeof s === "boolean") return d;
  if (dtypeInfo(d).isFloat) return d;
  if (!Number.isInteger(s)) return "f32";
  if (d === "bool") return "i32";
  const r = INT_RANGE[d]!;
  if (s < r[0] || s > r[1]) throw new ValueError(op, `the scalar ${s} does not fit ${d} (range ${r[0]}..${r[1]}); convert the tensor first`);
  return d;
}

function resultDType(a: Operand, b: Operand, op: string): DType {
  if (a instanceof Tensor && b instanceof Tensor) return promoteTypes(a._dt.name, b._dt.name);
  if (a instanceof Tensor) return promoteScalar(a._dt.name, b as number | boolean, op);
  if (b instanceof Tensor) return promoteScalar(b._dt.name, a as number | boolean, op);
  return typeof a === "boolean" && typeof b === "boolean" ? "bool" : "f32";
}

function checkOperand(x: Operand, op: string): void {
  if (x instanceof Tensor) x._live(op);
  else if (typeof x !== "number" && typeof x !== "boolean") throw new DTypeError(op, `operands must be tensors, numbers or booleans, got ${x === null ? "null" : typeof x}`);
}

function sameDevice(op: string, ...xs: Operand[]): number {
  let dev = -1;
  for (const x of xs) {
    if (!(x instanceof Tensor)) continue;
    const d = x._live(op).device;
    if (dev >= 0 && d !== dev) throw new DeviceError(op, `operands are on different devices (${xs.filter((t) => t instanceof Tensor).map((t) => (t as Tensor).device).join(", ")}); move them with to()`);
    dev = d;
  }
  return dev < 0 ? 0 : dev;
}

/** `x` in dtype `d`: the tensor itself (a new reference is not taken) or a converted copy to dispose. */
function inDType(x: Tensor, d: DType, temps: Tensor[]): Tensor {
  if (x._dt.name === d) return x;
  const c = x.astype(d);
  temps.push(c);
  return c;
}

function binary(name: BinName, a: Operand, b: Operand): Tensor {
  checkOperand(a, name);
  checkOperand(b, name);
  const dev = sameDevice(name, a, b);
  let rd = resultDType(a, b, name);
  if (rd === "bool" && name === "sub") throw new DTypeError(name, "boolean subtract is not supported (use logical operations, or convert with astype)");
  let cd: DType = rd; // compute dtype
  if (name === "div" && !dtypeInfo(rd).isFloat) cd = rd = "f32";
  if (name === "pow" && rd === "bool") cd = rd = "i8";
  const outD: DType = COMPARE.has(name) ? "bool" : cd;
  const sa = a instanceof Tensor ? a._shape : [];
  const sb = b instanceof Tensor ? b._shape : [];
  const shape = broadcastShapes(sa, sb, name);
  const temps: Tensor[] = [];
  try {
    const ta = a instanceof Tensor ? inDType(a, cd, temps) : undefined;
    const tb = b instanceof Tensor ? inDType(b, cd, temps) : undefined;
    const out = Tensor._alloc(shape, dtypeInfo(outD), dev, name);
    try {
      run(name, cd, out, ta ?? (a as number | boolean), tb ?? (b as number | boolean), shape);
    } catch (e) {
      out.dispose();
      throw e;
    }
    return record(name, [a, b], out);
  } finally {
    for (const t of temps) t.dispose();
  }
}

/** One native call: out = a op b, all tensors already in dtype cd (out: cd or bool). */
function run(name: BinName, cd: DType, out: Tensor, a: Tensor | number | boolean, b: Tensor | number | boolean, shape: number[]): void {
  const aT = a instanceof Tensor;
  const bT = b instanceof Tensor;
  const zeros = shape.map(() => 0);
  const stA = aT ? broadcastStrides(a._shape, a._st(), shape, name) : zeros;
  const stB = bT ? broadcastStrides(b._shape, b._st(), shape, name) : zeros;
  putLayout(shape, out._st(), stA, stB);
  const flags = (aT ? 0 : 1) | (bT ? 0 : 2);
  const dev = out._s!.device;
  if (dev !== 0) {
    // The same descriptor, run by the GPU kernel (zig/gpu/elementwise.cu; metal/kernels.metal).
    const st = sym.bn_gpu_binary(dev, BIN[name], DTypeCode[cd], out._addr(name), out._dt.code, aT ? a._addr(name) : null, bT ? b._addr(name) : null, flags, aT ? 0 : Number(a), bT ? 0 : Number(b), shape.length);
    check(st, name, `${fmtShape(shape)} ${cd} on ${out.device}`);
    return;
  }
  check(
    sym.bn_binary(
      BIN[name],
      DTypeCode[cd],
      out._dt.code,
      out._ptr(name),
      aT ? a._ptr(name) : null,
      bT ? b._ptr(name) : null,
      flags,
      aT ? 0 : Number(a),
      bT ? 0 : Number(b),
      shape.length,
    ),
    name,
    `${fmtShape(shape)} ${cd}`,
  );
}

/** In place: `target op= other`; the target keeps its shape and dtype and is returned. */
function inplace(name: "add" | "sub" | "mul" | "div", target: Tensor, other: Operand): Tensor {
  const op = `${name}_`;
  if (!(target instanceof Tensor)) throw new DTypeError(op, "the target of an in-place operation must be a tensor");
  checkOperand(other, op);
  const dev = sameDevice(op, target, other);
  void dev;
  const td = target._dt.name;
  let rd = resultDType(target, other, op);
  if (name === "div" && !dtypeInfo(rd).isFloat) rd = "f32";
  if (td === "bool" && name === "sub") throw new DTypeError(op, "boolean subtract is not supported");
  if (kind(rd) > kind(td)) {
    throw new DTypeError(op, `the result (${rd}) of ${td} ${name} ${other instanceof Tensor ? other._dt.name : typeof other} cannot be stored in the ${td} target; use the out-of-place ${name}()`);
  }
  const shape = target._shape;
  if (other instanceof Tensor) {
    const bs = broadcastShapes(shape, other._shape, op);
    if (bs.length !== shape.length || bs.some((d, i) => d !== shape[i])) {
      throw new ShapeError(op, `the result shape ${fmtShape(bs)} does not fit the target's shape ${fmtShape(shape)} (operand ${fmtShape(other._shape)})`);
    }
  }
  if (recording(other)) throw new AutogradError(op, `the operand requires grad; in-place ops are not recorded (use the out-of-place ${name}())`);
  target._willWrite(op);
  const temps: Tensor[] = [];
  try {
    let o: Tensor | number | boolean = other instanceof Tensor ? inDType(other, td, temps) : other;
    // Reading and writing the same memory through different layouts: read a copy.
    if (o instanceof Tensor && o._s === target._s && (o._offset !== target._offset || o._strides !== target._strides)) {
      o = o.clone();
      temps.push(o);
    }
    run(name, td, target, target, o, shape.slice());
  } finally {
    for (const t of temps) t.dispose();
  }
  return target;
}

function unary(name: UnName, t: Tensor, p0 = NaN, p1 = NaN): Tensor {
  const opName = name === "gelu_tanh" ? "gelu" : name;
  if (!(t instanceof Tensor)) throw new DTypeError(opName, `expected a tensor, got ${t === null ? "null" : typeof t}`);
  const s = t._live(opName);
  if (t._dt.name === "bool" && name === "neg") throw new DTypeError(opName, "boolean negative is not supported (use logical not, or convert with astype)");
  const temps: Tensor[] = [];
  try {
    const x = INT_UNARY.has(name) || t._dt.isFloat ? t : inDType(t, "f32", temps);
    const out = Tensor._alloc(x._shape.slice(), x._dt, s.device, opName);
    try {
      putLayout(x._shape, out._st(), x._st());
      if (s.device !== 0) {
        const st = sym.bn_gpu_unary(s.device, UN[name], x._dt.code, out._addr(opName), x._addr(opName), p0, p1, x._shape.length);
        check(st, opName, `${fmtShape(x._shape)} ${x._dt.name} on ${out.device}`);
      } else check(sym.bn_unary(UN[name], x._dt.code, out._ptr(opName), x._ptr(opName), p0, p1, x._shape.length), opName, `${fmtShape(x._shape)} ${x._dt.name}`);
    } catch (e) {
      out.dispose();
      throw e;
    }
    return record(name, [t], out, [p0, p1]);
  } finally {
    for (const x of temps) x.dispose();
  }
}

// ---- public functions -------------------------------------------------------------------------

/** a + b with broadcasting. */
export const add = (a: Operand, b: Operand): Tensor => binary("add", a, b);
/** a - b with broadcasting. */
export const sub = (a: Operand, b: Operand): Tensor => binary("sub", a, b);
/** a * b with broadcasting. */
export const mul = (a: Operand, b: Operand): Tensor => binary("mul", a, b);
/** a / b (true division: integers give f32). */
export const div = (a: Operand, b: Operand): Tensor => binary("div", a, b);
/** a ** b. */
export const pow = (a: Operand, b: Operand): Tensor => binary("pow", a, b);
/** Elementwise maximum (NaN propagates). */
export const maximum = (a: Operand, b: Operand): Tensor => binary("maximum", a, b);
/** Elementwise minimum (NaN propagates). */
export const minimum = (a: Operand, b: Operand): Tensor => binary("minimum", a, b);
/** a == b (bool). */
export const eq = (a: Operand, b: Operand): Tensor => binary("eq", a, b);
/** a != b (bool). */
export const ne = (a: Operand, b: Operand): Tensor => binary("ne", a, b);
/** a < b (bool). */
export const lt = (a: Operand, b: Operand): Tensor => binary("lt", a, b);
/** a <= b (bool). */
export const le = (a: Operand, b: Operand): Tensor => binary("le", a, b);
/** a > b (bool). */
export const gt = (a: Operand, b: Operand): Tensor => binary("gt", a, b);
/** a >= b (bool). */
export const ge = (a: Operand, b: Operand): Tensor => binary("ge", a, b);

/** -x (integers wrap). */
export const neg = (x: Tensor): Tensor => unary("neg", x);
/** |x|. */
export const abs = (x: Tensor): Tensor => unary("abs", x);
/** e^x. */
export const exp = (x: Tensor): Tensor => unary("exp", x);
/** Natural logarithm. */
export const log = (x: Tensor): Tensor => unary("log", x);
/** Square root. */
export const sqrt = (x: Tensor): Tensor => unary("sqrt", x);
/** 1 / sqrt(x). */
export const rsqrt = (x: Tensor): Tensor => unary("rsqrt", x);
/** Sine. */
export const sin = (x: Tensor): Tensor => unary("sin", x);
/** Cosine. */
export const cos = (x: Tensor): Tensor => unary("cos", x);
/** Hyperbolic tangent. */
export const tanh = (x: Tensor): Tensor => unary("tanh", x);
/** Error function. */
export const erf = (x: Tensor): Tensor => unary("erf", x);
/** Round down. */
export const floor = (x: Tensor): Tensor => unary("floor", x);
/** Round up. */
export const ceil = (x: Tensor): Tensor => unary("ceil", x);
/** Round to nearest, ties to even (as NumPy). */
export const round = (x: Tensor): Tensor => unary("round", x);
/** -1, 0 or 1 (NaN stays NaN, ±0 stay ±0). */
export const sign = (x: Tensor): Tensor => unary("sign", x);
/** Limits values to [min, max]; either bound may be null. Bounds convert to the tensor's dtype. */
export function clip(x: Tensor, min: number | null | undefined, max: number | null | undefined): Tensor {
  if (x instanceof Tensor) x._live("clip"); // the tensor is checked first, as in every op
  for (const b of [min, max]) {
    if (b !== null && b !== undefined && typeof b !== "number") throw new DTypeError("clip", `bounds must be numbers (or null for none), got ${show(b)}`);
  }
  // The lower bound applies first, so min > max gives max everywhere, as NumPy's clip does.
  return unary("clip", x, min ?? NaN, max ?? NaN);
}
/** max(x, 0). */
export const relu = (x: Tensor): Tensor => unary("relu", x);
/** GELU: exact (erf) by default, or the tanh approximation. */
export function gelu(x: Tensor, opts?: { approximate?: "none" | "tanh" }): Tensor {
  const a = opts?.approximate ?? "none";
  if (a !== "none" && a !== "tanh") throw new ValueError("gelu", `approximate must be "none" or "tanh", got ${show(a)}`);
  return unary(a === "tanh" ? "gelu_tanh" : "gelu", x);
}
/** x * sigmoid(x). */
export const silu = (x: Tensor): Tensor => unary("silu", x);
/** 1 / (1 + e^-x). */
export const sigmoid = (x: Tensor): Tensor => unary("sigmoid", x);

/**
 * Derivatives of the activations with respect to their input, evaluated at `x` (used by
 * autograd): `activationGrad("gelu", x)` is d gelu(x) / dx.
 */
export function activationGrad(name: "relu" | "gelu" | "gelu_tanh" | "silu" | "sigmoid" | "tanh", x: Tensor): Tensor {
  const map = { relu: "relu_grad", gelu: "gelu_grad", gelu_tanh: "gelu_tanh_grad", silu: "silu_grad", sigmoid: "sigmoid_grad", tanh: "tanh_grad" } as const;
  const u = map[name];
  if (u === undefined) throw new ValueError("activationGrad", `unknown activation ${show(name)}`);
  return unary(u, x);
}

/**
 * `cond ? a : b` elementwise, with broadcasting of all three. `cond` is converted to bool when it
 * is not (nonzero is true); the result dtype promotes a and b as the arithmetic operators do.
 */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const op = "where";
  if (!(cond instanceof Tensor)) throw new DTypeError(op, "the condition must be a tensor");
  cond._live(op);
  checkOperand(a, op);
  checkOperand(b, op);
  const dev = sameDevice(op, cond, a, b);
  const rd = resultDType(a, b, op);
  const shape = broadcastShapes(broadcastShapes(cond._shape, a instanceof Tensor ? a._shape : [], op), b instanceof Tensor ? b._shape : [], op);
  const temps: Tensor[] = [];
  try {
    const c = inDType(cond, "bool", temps);
    const ta = a instanceof Tensor ? inDType(a, rd, temps) : undefined;
    const tb = b instanceof Tensor ? inDType(b, rd, temps) : undefined;
    const out = Tensor._alloc(shape, dtypeInfo(rd), dev, op);
    try {
      const zeros = shape.map(() => 0);
      putLayout(
        shape,
        out._st(),
        broadcastStrides(c._shape, c._st(), shape, op),
        ta ? broadcastStrides(ta._shape, ta._st(), shape, op) : zeros,
        tb ? broadcastStrides(tb._shape, tb._st(), shape, op) : zeros,
      );
      const flags = (ta ? 0 : 1) | (tb ? 0 : 2);
      if (dev !== 0) {
        const st = sym.bn_gpu_where(dev, dtypeInfo(rd).code, out._addr(op), c._addr(op), ta ? ta._addr(op) : null, tb ? tb._addr(op) : null, flags, ta ? 0 : Number(a), tb ? 0 : Number(b), shape.length);
        check(st, op, `${fmtShape(shape)} ${rd} on ${out.device}`);
      } else {
        check(
          sym.bn_where(dtypeInfo(rd).code, out._ptr(op), c._ptr(op), ta ? ta._ptr(op) : null, tb ? tb._ptr(op) : null, flags, ta ? 0 : Number(a), tb ? 0 : Number(b), shape.length),
          op,
        );
      }
    } catch (e) {
      out.dispose();
      throw e;
    }
    return record("where", [cond, a, b], out);
  } finally {
    for (const t of temps) t.dispose();
  }
}

/** In-place a += b (b broadcasts to a's shape; a's dtype wins). Returns a. */
export const add_ = (a: Tensor, b: Operand): Tensor => inplace("add", a, b);
/** In-place a -= b. Returns a. */
export const sub_ = (a: Tensor, b: Operand): Tensor => inplace("sub", a, b);
/** In-place a *= b. Returns a. */
export const mul_ = (a: Tensor, b: Operand): Tensor => inplace("mul", a, b);
/** In-place a /= b (float targets only). Returns a. */
export const div_ = (a: Tensor, b: Operand): Tensor => inplace("div", a, b);

// ---- methods ----------------------------------------------------------------------------------

declare module "../tensor.ts" {
  interface Tensor {
    add(other: Operand): Tensor;
    sub(other: Operand): Tensor;
    mul(other: Operand): Tensor;
    div(other: Operand): Tensor;
    pow(other: Operand): Tensor;
    maximum(other: Operand): Tensor;
    minimum(other: Operand): Tensor;
    eq(other: Operand): Tensor;
    ne(other: Operand): Tensor;
    lt(other: Operand): Tensor;
    le(other: Operand): Tensor;
    gt(other: Operand): Tensor;
    ge(other: Operand): Tensor;
    add_(other: Operand): Tensor;
    sub_(other: Operand): Tensor;
    mul_(other: Operand): Tensor;
    div_(other: Operand): Tensor;
    neg(): Tensor;
    abs(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    sqrt(): Tensor;
    rsqrt(): Tensor;
    sin(): Tensor;
    cos(): Tensor;
    tanh(): Tensor;
    erf(): Tensor;
    floor(): Tensor;
    ceil(): Tensor;
    round(): Tensor;
    sign(): Tensor;
    clip(min: number | null | undefined, max: number | null | undefined): Tensor;
    relu(): Tensor;
    gelu(opts?: { approximate?: "none" | "tanh" }): Tensor;
    silu(): Tensor;
    sigmoid(): Tensor;
  }
}

const P = Tensor.prototype;
for (const name of Object.keys(BIN) as BinName[]) {
  P[name] = function (this: Tensor, other: Operand) {
    return binary(name, this, other);
  };
}
for (const name of ["add", "sub", "mul", "div"] as const) {
  P[`${name}_`] = function (this: Tensor, other: Operand) {
    return inplace(name, this, other);
  };
}
for (const name of ["neg", "abs", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "erf", "floor", "ceil", "round", "sign", "relu", "silu", "sigmoid"] as const) {
  P[name] = function (this: Tensor) {
    return unary(name, this);
  };
}
P.clip = function (this: Tensor, min: number | null | undefined, max: number | null | undefined) {
  return clip(this, min, max);
};
P.gelu = function (this: Tensor, opts?: { approximate?: "none" | "tanh" }) {
  return gelu(this, opts);
};
