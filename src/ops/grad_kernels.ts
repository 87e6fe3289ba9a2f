/**
 * Backward kernels for autograd: softmax / logSoftmax along an axis, and layerNorm / rmsNorm over
 * the last axis. Each is one native call (zig/cpu/grad.zig).
 *
 * - Float tensors only (f32, f16, bf16); the arithmetic is f32 whatever the storage type.
 * - Inputs may be views of any strides; `dx` is a new contiguous tensor of the input's dtype.
 * - The upstream gradient `g` must have the input's shape; a `g` of another float dtype is
 *   converted to the input's dtype first.
 * - dweight / dbias of {@link normBackward} are f32 and deterministic: the same bits for any
 *   thread count (rows are summed in fixed chunks, the chunks in a fixed order).
 * @module
 */
import { DTypeError, DeviceError, ShapeError, ValueError, fmtShape, show } from "../errors.ts";
import { check, putLayout, sym } from "../native.ts";
import { dtypeInfo } from "../dtype.ts";
import { contiguousStrides, normAxis } from "../shape.ts";
import { Tensor } from "../tensor.ts";

/** A live float tensor, or a DTypeError naming `what`. */
function floatTensor(t: unknown, what: string, op: string): Tensor {
  if (!(t instanceof Tensor)) throw new DTypeError(op, `${what} must be a Tensor, got ${t === null ? "null" : typeof t}`);
  t._live(op);
  if (!t._dt.isFloat) {
    throw new DTypeError(op, `${what} must be a float tensor (f32, f16 or bf16), got ${t._dt.name} ${fmtShape(t._shape)}`);
  }
  return t;
}

/** `g` checked against the input `x` (shape, device), converted to x's dtype when it differs (pushed to temps). */
function gradLike(g: unknown, x: Tensor, xname: string, op: string, temps: Tensor[]): Tensor {
  const t = floatTensor(g, "the gradient g", op);
  if (t._live(op).device !== x._live(op).device) throw new DeviceError(op, `g is on ${t.device} but ${xname} is on ${x.device}; move it with to()`);
  const a = t._shape;
  const b = x._shape;
  if (a.length !== b.length || a.some((d, i) => d !== b[i])) {
    throw new ShapeError(op, `the gradient g ${fmtShape(a)} must have the shape of ${xname} ${fmtShape(b)}`);
  }
  if (t._dt === x._dt) return t;
  const c = t.astype(x._dt.name);
  temps.push(c);
  return c;
}

/**
 * The gradient of softmax (or logSoftmax when `log`) along `axis`, given the forward's output `y`
 * and the upstream gradient `g` (same shape): softmax `dx = y * (g - sum(g * y))`, logSoftmax
 * `dx = g - exp(y) * sum(g)`, sums along `axis`. Returns a new contiguous tensor of y's dtype.
 * @throws DTypeError for non-float y or g; ShapeError for shapes that differ, a 0-d y or an axis
 * out of range; DeviceError for tensors on different devices.
 */
export function softmaxBackward(y: Tensor, g: Tensor, axis: number, log: boolean): Tensor {
  const op = log ? "logSoftmaxBackward" : "softmaxBackward";
  const t = floatTensor(y, "y", op);
  const nd = t._shape.length;
  if (nd === 0) throw new ShapeError(op, `a zero-dimensional tensor has no axis ${String(axis)}`);
  const ax = normAxis(axis, nd, op);
  const temps: Tensor[] = [];
  try {
    const gg = gradLike(g, t, "y", op, temps);
    const shape = t._shape.slice();
    const out = Tensor._alloc(shape, t._dt, t._live(op).device, op);
    if (t._size === 0) return out;
    try {
      // The layout with `ax` moved last; dx keeps the original axis order (contiguous).
      const st = [contiguousStrides(shape), t._st(), gg._st()];
      const ls: number[] = [];
      const l: number[][] = [[], [], []];
      for (let i = 0; i <= nd; i++) {
        const a = i === nd ? ax : i;
        if (i === ax) continue;
        ls.push(shape[a]!);
        for (let k = 0; k < 3; k++) l[k]!.push(st[k]![a]!);
      }
      putLayout(ls, l[0], l[1], l[2]);
      check(sym.bn_softmax_backward(out._ptr(op), t._ptr(op), gg._ptr(op), t._dt.code, log ? 1 : 0, nd), op, `${t._dt.name} ${fmtShape(shape)}, axis ${ax}`);
    } catch (e) {
      out.dispose();
      throw e;
    }
    return out;
  } finally {
    for (const c of temps) c.dispose();
  }
}

/** Gradients from {@link normBackward}. */
export interface NormGrads {
  /** d loss / d x: x's shape and dtype, contiguous. */
  dx: Tensor;
  /** Sum over rows of g * xhat: f32 [n] (when asked for). */
  dweight: Tensor | null;
  /** Sum over rows of g: f32 [n] (layer norm, when asked for). */
  dbias: Tensor | null;
}

/**
 * The gradients of layerNorm (`kind` "layer") or rmsNorm ("rms") over the last axis of `x`, given
 * the upstream gradient `g` (x's shape), the weight used in the forward pass (1-D of the last
 * axis' length, or null) and eps. With r = 1/sqrt(var + eps) and xhat = (x - mean) * r (layer,
 * biased variance) or r = 1/sqrt(mean(x²) + eps) and xhat = x * r (rms), and gh = g * weight:
 * layer `dx = r * (gh - mean(gh) - xhat * mean(gh * xhat))`, rms `dx = r * (gh - xhat *
 * mean(gh * xhat))`. With `wantParams`, also `dweight = sum over rows of g * xhat` (even without a
 * weight) and, for layer, `dbias = sum over rows of g`, both f32 [n] with deterministic bits.
 * @throws DTypeError for non-float x, g or weight; ShapeError for a 0-d x, a g of another shape
 * or a weight that is not [n]; ValueError for an eps that is negative or not finite; DeviceError
 * for tensors on different devices.
 */
export function normBackward(kind: "layer" | "rms", x: Tensor, g: Tensor, weight: Tensor | null, eps: number, wantParams: boolean): NormGrads {
  const op = "normBackward";
  if (kind !== "layer" && kind !== "rms") throw new ValueError(op, `kind must be "layer" or "rms", got ${show(kind)}`);
  const t = floatTensor(x, "x", op);
  const nd = t._shape.length;
  if (nd === 0) throw new ShapeError(op, "a zero-dimensional tensor has no last axis to normalise over");
  if (typeof eps !== "number" || !Number.isFinite(eps) || eps < 0) throw new ValueError(op, `eps must be a finite number >= 0, got ${String(eps)}`);
  const n = t._shape[nd - 1]!;
  const temps: Tensor[] = [];
  try {
    const gg = gradLike(g, t, "x", op, temps);
    let w: Tensor | null = null;
    if (weight !== null && weight !== undefined) {
      w = floatTensor(weight, "weight", op);
      if (w._live(op).device !== t._live(op).device) throw new DeviceError(op, `weight is on ${w.device} but x is on ${t.device}; move it with to()`);
      if (w._shape.length !== 1 || w._shape[0] !== n) {
        throw new ShapeError(op, `weight must have shape [${n}] (the last axis of x ${fmtShape(t._shape)}), got ${fmtShape(w._shape)}`);
      }
      if (w._strides !== null) temps.push((w = w.contiguous()));
    }
    const shape = t._shape.slice();
    const dev = t._live(op).device;
    const made: Tensor[] = [];
    try {
      const dx = Tensor._alloc(shape, t._dt, dev, op);
      made.push(dx);
      const f32 = dtypeInfo("f32");
      const dweight = wantParams ? Tensor._alloc([n], f32, dev, op) : null;
      if (dweight) made.push(dweight);
      const dbias = wantParams && kind === "layer" ? Tensor._alloc([n], f32, dev, op) : null;
      if (dbias) made.push(dbias);
      putLayout(shape, contiguousStrides(shape), t._st(), gg._st());
      const status = sym.bn_norm_backward(
        kind === "layer" ? 0 : 1,
        t._size === 0 ? null : dx._ptr(op),
        t._size === 0 ? null : t._ptr(op),
        t._size === 0 ? null : gg._ptr(op),
        t._dt.code,
        w ? w._ptr(op) : null,
        w ? w._dt.code : t._dt.code,
        dweight && n > 0 ? dweight._ptr(op) : null,
        dbias && n > 0 ? dbias._ptr(op) : null,
        eps,
        nd,
      );
      check(status, op, `${kind} norm of ${t._dt.name} ${fmtShape(shape)}${w ? `, weight ${w._dt.name} [${n}]` : ""}`);
      return { dx, dweight, dbias };
    } catch (e) {
      for (const m of made) m.dispose();
      throw e;
    }
  } finally {
    for (const c of temps) c.dispose();
  }
}
