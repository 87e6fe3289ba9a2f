/**
 * Losses: {@link crossEntropy} (from logits with integer class targets) and {@link mse}. Both are
 * compositions of recorded ops, so their gradients come from the ops' rules.
 * @module
 */
import { arange } from "../creation.ts";
import { DTypeError, ShapeError, ValueError, fmtShape, show } from "../errors.ts";
import { eq, mul, neg, sub } from "../ops/elementwise.ts";
import { logSoftmax } from "../ops/nn.ts";
import { max, mean, min, sum } from "../ops/reduce.ts";
import { Tensor } from "../tensor.ts";

/** How the per-element losses are combined. */
export type Reduction = "mean" | "sum" | "none";

/** Options of the losses. */
export interface LossOptions {
  /** "mean" (default), "sum", or "none" (per element / per sample). */
  reduction?: Reduction;
}

function reduction(opts: LossOptions | undefined, op: string): Reduction {
  const r = opts?.reduction ?? "mean";
  if (r !== "mean" && r !== "sum" && r !== "none") throw new ValueError(op, `reduction must be "mean", "sum" or "none", got ${show(r)}`);
  return r;
}

function reduce(l: Tensor, r: Reduction): Tensor {
  if (r === "none") return l;
  try {
    return r === "mean" ? mean(l) : sum(l);
  } finally {
    l.dispose();
  }
}

function floatTensor(x: unknown, what: string, op: string): Tensor {
  if (!(x instanceof Tensor)) throw new DTypeError(op, `${what} must be a Tensor, got ${x === null ? "null" : typeof x}`);
  x._live(op);
  if (!x._dt.isFloat) throw new DTypeError(op, `${what} must be f32, f16 or bf16, got ${x.dtype} ${fmtShape(x._shape)}`);
  return x;
}

/**
 * Cross-entropy of `logits` `[..., C]` (classes on the last axis) against integer `targets`
 * `[...]` in [0, C): `-log softmax(logits)[target]`, averaged by default.
 * @throws DTypeError (float targets, integer logits), ShapeError (targets' shape is not the
 *   logits' without the last axis), ValueError (a target outside [0, C), bad reduction).
 */
export function crossEntropy(logits: Tensor, targets: Tensor, opts?: LossOptions): Tensor {
  const op = "crossEntropy";
  const x = floatTensor(logits, "logits", op);
  if (!(targets instanceof Tensor)) throw new DTypeError(op, `targets must be an integer Tensor, got ${targets === null ? "null" : typeof targets}`);
  targets._live(op);
  if (targets._dt.isFloat || targets._dt.name === "bool") throw new DTypeError(op, `targets must hold integer class indices, got ${targets.dtype} ${fmtShape(targets._shape)}`);
  const r = reduction(opts, op);
  const xs = x._shape;
  const ts = targets._shape;
  if (xs.length === 0 || ts.length !== xs.length - 1 || ts.some((d, i) => d !== xs[i])) {
    throw new ShapeError(op, `targets ${fmtShape(ts)} must have the shape of the logits ${fmtShape(xs)} without the class axis, i.e. ${fmtShape(xs.slice(0, -1))}`);
  }
  const c = xs[xs.length - 1]!;
  if (targets._size > 0) {
    using lo = min(targets);
    using hi = max(targets);
    const a = lo.item() as number;
    const b = hi.item() as number;
    if (a < 0 || b >= c) throw new ValueError(op, `target ${a < 0 ? a : b} is outside [0, ${c}) (logits ${fmtShape(xs)})`);
  }
  using logp = logSoftmax(x);
  using cls = arange(c, undefined, undefined, { dtype: "i32" });
  using t = targets.unsqueeze(-1);
  using onehot = eq(t, cls);
  using picked = mul(logp, onehot);
  using nll = sum(picked, { axis: -1 });
  return reduce(neg(nll), r);
}

/**
 * Mean squared error `(pred - target)²`, averaged by default. Shapes must be equal (no
 * broadcasting, so that a transposed target cannot silently broadcast).
 * @throws ShapeError (shapes differ), DTypeError (not float tensors), ValueError (bad reduction).
 */
export function mse(pred: Tensor, target: Tensor, opts?: LossOptions): Tensor {
  const op = "mse";
  const p = floatTensor(pred, "pred", op);
  const t = floatTensor(target, "target", op);
  const r = reduction(opts, op);
  if (p._shape.length !== t._shape.length || p._shape.some((d, i) => d !== t._shape[i])) {
    throw new ShapeError(op, `pred ${fmtShape(p._shape)} and target ${fmtShape(t._shape)} must have the same shape`);
  }
  using d = sub(p, t);
  return reduce(mul(d, d), r);
}
