/**
 * Normalisation along an axis: softmax, logSoftmax, layerNorm, rmsNorm.
 *
 * - Float tensors only (f32, f16, bf16): the result has the input's dtype; the arithmetic and the
 *   row statistics are f32 whatever the storage type. Integer and bool tensors are a DTypeError,
 *   as in PyTorch (convert first: `x.astype("f32")`).
 * - softmax / logSoftmax work along any axis (`axis`, default -1, negative counts from the end);
 *   a zero-dimensional tensor has no axis, so it is a ShapeError as in NumPy (PyTorch would
 *   accept axis 0 / -1 and return 1). They subtract the row's maximum first, so large inputs do
 *   not overflow. As in PyTorch, a row whose entries are all -inf, or that holds +inf or NaN, gives
 *   NaN everywhere; -inf entries of an otherwise finite row give 0 (logSoftmax: -inf).
 * - layerNorm / rmsNorm normalise over the last axis with the biased variance (as PyTorch's
 *   `layer_norm` / `rms_norm` over one trailing dimension). `weight` and `bias` are 1-D tensors of
 *   the last axis' length, of any float dtype (they may be views; different dtypes promote).
 * - Inputs may be views of any strides; the result is a new contiguous tensor.
 * @module
 */
import { type DType, type DTypeInfo, dtypeInfo, promoteTypes } from "../dtype.ts";
import { DTypeError, DeviceError, ShapeError, ValueError, fmtShape } from "../errors.ts";
import { check, putLayout, sym } from "../native.ts";
import { contiguousStrides, normAxis } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { type Operand, record } from "../autograd/graph.ts";

/** Options of {@link softmax} and {@link logSoftmax}. */
export interface SoftmaxOptions {
  /** The axis to normalise along (default -1, the last). */
  axis?: number;
}

/** Options of {@link layerNorm}. */
export interface LayerNormOptions {
  /** Per-feature scale: a 1-D float tensor of the last axis' length (default: none, i.e. 1). */
  weight?: Tensor | null;
  /** Per-feature shift: a 1-D float tensor of the last axis' length (default: none, i.e. 0). */
  bias?: Tensor | null;
  /** Added to the variance before the square root (default 1e-5, as PyTorch). */
  eps?: number;
}

/** Options of {@link rmsNorm}. */
export interface RmsNormOptions {
  /** Per-feature scale: a 1-D float tensor of the last axis' length (default: none, i.e. 1). */
  weight?: Tensor | null;
  /** Added to the mean square before the square root (default 1e-6). */
  eps?: number;
}

function checkInput(x: unknown, op: string): Tensor {
  if (!(x instanceof Tensor)) throw new DTypeError(op, `expects a Tensor, got ${x === null ? "null" : typeof x}`);
  x._live(op);
  if (!x._dt.isFloat) {
    throw new DTypeError(op, `needs a float tensor (f32, f16 or bf16), got ${x._dt.name} ${fmtShape(x._shape)}; convert it first, e.g. x.astype("f32")`);
  }
  return x;
}

function checkOpts(opts: unknown, op: string): Record<string, unknown> {
  if (opts === undefined || opts === null) return {};
  if (typeof opts !== "object" || Array.isArray(opts) || opts instanceof Tensor) {
    throw new ValueError(op, `options must be an object, got ${Array.isArray(opts) ? "an array" : typeof opts}`);
  }
  return opts as Record<string, unknown>;
}

function softmaxImpl(x: Tensor, opts: SoftmaxOptions | undefined, log: boolean, op: string): Tensor {
  const t = checkInput(x, op);
  const { axis = -1 } = checkOpts(opts, op) as SoftmaxOptions;
  const nd = t._shape.length;
  if (nd === 0) throw new ShapeError(op, `a zero-dimensional tensor has no axis ${String(axis)} to normalise along`);
  const ax = normAxis(axis, nd, op);
  const shape = t._shape.slice();
  const out = Tensor._alloc(shape, t._dt, t._live(op).device, op);
  if (t._size === 0) return out;
  try {
    // The layout with `ax` moved last: out keeps the original axis order (contiguous), so its
    // strides are permuted the same way as the input's.
    const ist = t._st();
    const ost = contiguousStrides(shape);
    const ls: number[] = [];
    const l0: number[] = [];
    const l1: number[] = [];
    for (let i = 0; i < nd; i++) {
      if (i === ax) continue;
      ls.push(shape[i]!);
      l0.push(ost[i]!);
      l1.push(ist[i]!);
    }
    ls.push(shape[ax]!);
    l0.push(ost[ax]!);
    l1.push(ist[ax]!);
    putLayout(ls, l0, l1);
    const dev = out._s!.device;
    if (dev !== 0) check(sym.bn_gpu_softmax(dev, out._addr(op), t._addr(op), t._dt.code, log ? 1 : 0, nd), op, `${t._dt.name} ${fmtShape(shape)}, axis ${ax} on ${out.device}`);
    else check(sym.bn_softmax(out._ptr(op), t._ptr(op), t._dt.code, log ? 1 : 0, nd), op, `${t._dt.name} ${fmtShape(shape)}, axis ${ax}`);
  } catch (e) {
    out.dispose();
    throw e;
  }
  return record(op, [t], out, ax);
}

/**
 * softmax along `axis` (default -1): `exp(x - max) / sum(exp(x - max))`, each slice along the axis
 * summing to 1. Float tensors only; the result has the input's dtype and shape (computed in f32).
 *
 * ```ts
 * bn.softmax(bn.tensor([1, 2, 3])).toArray(); // [0.0900, 0.2447, 0.6652]
 * x.softmax({ axis: 0 });
 * ```
 * @throws DTypeError for integer or bool tensors; ShapeError for an axis out of range or a 0-d tensor.
 */
export function softmax(x: Tensor, opts?: SoftmaxOptions): Tensor {
  return softmaxImpl(x, opts, false, "softmax");
}

/**
 * log(softmax(x)) along `axis` (default -1), computed as `(x - max) - log(sum(exp(x - max)))`, so
 * it is accurate where softmax underflows to 0. Float tensors only; the result has the input's
 * dtype and shape.
 * @throws DTypeError for integer or bool tensors; ShapeError for an axis out of range or a 0-d tensor.
 */
export function logSoftmax(x: Tensor, opts?: SoftmaxOptions): Tensor {
  return softmaxImpl(x, opts, true, "logSoftmax");
}

/** Checks a weight/bias vector; returns it as a contiguous tensor (pushed to temps if a copy). */
function checkVector(v: unknown, what: string, x: Tensor, op: string, temps: Tensor[]): Tensor | null {
  if (v === undefined || v === null) return null;
  if (!(v instanceof Tensor)) throw new DTypeError(op, `${what} must be a Tensor, got ${typeof v}`);
  const s = v._live(op);
  if (s.device !== x._live(op).device) throw new DeviceError(op, `${what} is on ${v.device} but the input is on ${x.device}; move it with to()`);
  const n = x._shape[x._shape.length - 1]!;
  if (v._shape.length !== 1 || v._shape[0] !== n) {
    throw new ShapeError(op, `${what} must have shape [${n}] (the last axis of the input ${fmtShape(x._shape)}), got ${fmtShape(v._shape)}`);
  }
  if (!v._dt.isFloat) throw new DTypeError(op, `${what} must be a float tensor (f32, f16 or bf16), got ${v._dt.name}`);
  if (v._strides === null) return v;
  const c = v.contiguous();
  temps.push(c);
  return c;
}

function checkEps(eps: unknown, op: string): number {
  if (typeof eps !== "number" || !Number.isFinite(eps) || eps < 0) throw new ValueError(op, `eps must be a finite number >= 0, got ${String(eps)}`);
  return eps;
}

function normImpl(x: Tensor, kind: 0 | 1, weight: unknown, bias: unknown, eps: number, op: string): Tensor {
  const t = checkInput(x, op);
  const nd = t._shape.length;
  if (nd === 0) throw new ShapeError(op, "a zero-dimensional tensor has no last axis to normalise over");
  checkEps(eps, op);
  const temps: Tensor[] = [];
  try {
    let w = checkVector(weight, "weight", t, op, temps);
    let b = checkVector(bias, "bias", t, op, temps);
    // One dtype for weight and bias (the engine reads both as wb_dtype).
    let wbd: DTypeInfo = t._dt;
    if (w && b && w._dt !== b._dt) {
      const d: DType = promoteTypes(w._dt.name, b._dt.name);
      if (w._dt.name !== d) temps.push((w = w.astype(d)));
      if (b._dt.name !== d) temps.push((b = b.astype(d)));
    }
    if (w) wbd = w._dt;
    else if (b) wbd = b._dt;
    const shape = t._shape.slice();
    const out = Tensor._alloc(shape, t._dt, t._live(op).device, op);
    if (t._size === 0) return out;
    try {
      putLayout(shape, contiguousStrides(shape), t._st());
      const dev = out._s!.device;
      if (dev !== 0) {
        const st = sym.bn_gpu_norm(dev, kind, out._addr(op), t._addr(op), t._dt.code, w ? w._addr(op) : null, b ? b._addr(op) : null, dtypeInfo(wbd.name).code, eps, nd);
        check(st, op, `${t._dt.name} ${fmtShape(shape)} on ${out.device}`);
      } else {
        const wp = w ? w._ptr(op) : null;
        const bp = b ? b._ptr(op) : null;
        check(sym.bn_norm(kind, out._ptr(op), t._ptr(op), t._dt.code, wp, bp, dtypeInfo(wbd.name).code, eps, nd), op, `${t._dt.name} ${fmtShape(shape)}`);
      }
    } catch (e) {
      out.dispose();
      throw e;
    }
    return record(op, [t, weight as Operand, bias as Operand], out, eps);
  } finally {
    for (const c of temps) c.dispose();
  }
}

/**
 * Layer normalisation over the last axis: `(x - mean) / sqrt(var + eps) * weight + bias`, with the
 * biased variance (PyTorch's `layer_norm(x, [x.shape[-1]], weight, bias, eps)`). Statistics are
 * computed in f32 for every float dtype; the result has the input's dtype and shape.
 *
 * ```ts
 * const y = bn.layerNorm(x, { weight: gamma, bias: beta }); // gamma, beta: [x.shape.at(-1)]
 * ```
 * @throws DTypeError for integer or bool inputs or weights; ShapeError for a 0-d input or a
 * weight/bias that is not 1-D of the last axis' length; DeviceError for a weight/bias on another
 * device; ValueError for a negative or non-finite eps.
 */
export function layerNorm(x: Tensor, opts?: LayerNormOptions): Tensor {
  const o = checkOpts(opts, "layerNorm") as LayerNormOptions;
  return normImpl(x, 0, o.weight, o.bias, o.eps ?? 1e-5, "layerNorm");
}

/**
 * RMS normalisation over the last axis: `x / sqrt(mean(x²) + eps) * weight` (as in LLaMA and
 * PyTorch's `rms_norm`). Statistics in f32; the result has the input's dtype and shape.
 * @throws DTypeError for integer or bool inputs or weights; ShapeError for a 0-d input or a weight
 * that is not 1-D of the last axis' length; DeviceError for a weight on another device;
 * ValueError for a negative or non-finite eps.
 */
export function rmsNorm(x: Tensor, opts?: RmsNormOptions): Tensor {
  const o = checkOpts(opts, "rmsNorm") as RmsNormOptions;
  return normImpl(x, 1, o.weight, null, o.eps ?? 1e-6, "rmsNorm");
}

// ---- methods ----------------------------------------------------------------------------------

declare module "../tensor.ts" {
  interface Tensor {
    /** {@link softmax} of this tensor along `axis` (default -1). */
    softmax(opts?: SoftmaxOptions): Tensor;
    /** {@link logSoftmax} of this tensor along `axis` (default -1). */
    logSoftmax(opts?: SoftmaxOptions): Tensor;
  }
}

Tensor.prototype.softmax = function (this: Tensor, opts?: SoftmaxOptions) {
  return softmax(this, opts);
};
Tensor.prototype.logSoftmax = function (this: Tensor, opts?: SoftmaxOptions) {
  return logSoftmax(this, opts);
};
