/**
 * In-place optimizer steps, one native call per parameter tensor (zig/cpu/optim.zig): SGD and
 * AdamW with PyTorch's semantics.
 *
 * - Parameters: f32, f16 or bf16, contiguous (they are written in place). The gradient has the
 *   parameter's shape and dtype (a strided gradient is copied first). State tensors (momentum
 *   buffer, m, v, vmax) are f32, contiguous, of the parameter's shape; they are written in place.
 * - All arithmetic is f32 (the step's scalars in f64); half-type parameters are rounded once per
 *   step. Every element is independent, so results do not depend on the thread count.
 * @module
 */
import { DTypeError, DeviceError, ShapeError, ValueError, fmtShape } from "../errors.ts";
import { check, sym } from "../native.ts";
import { Tensor } from "../tensor.ts";

/** Options of {@link sgdUpdate_} (PyTorch's torch.optim.SGD). */
export interface SgdStep {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
  /** The first step with this momentum buffer: it is set to d instead of updated. */
  first: boolean;
}

/** Options of {@link adamwUpdate_} (PyTorch's torch.optim.AdamW). */
export interface AdamwStep {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** t, the number of this step (1 for the first), for the bias corrections. */
  step: number;
  maximize: boolean;
}

function live(t: unknown, what: string, op: string): Tensor {
  if (!(t instanceof Tensor)) throw new DTypeError(op, `${what} must be a Tensor, got ${t === null ? "null" : typeof t}`);
  t._live(op);
  return t;
}

function sameShape(t: Tensor, p: Tensor, what: string, op: string): void {
  const a = t._shape;
  const b = p._shape;
  if (a.length !== b.length || a.some((d, i) => d !== b[i])) {
    throw new ShapeError(op, `${what} ${fmtShape(a)} must have the parameter's shape ${fmtShape(b)}`);
  }
  if (t._live(op).device !== p._live(op).device) throw new DeviceError(op, `${what} is on ${t.device} but the parameter is on ${p.device}`);
}

function contiguous(t: Tensor, what: string, op: string): void {
  if (t._strides !== null) {
    throw new ShapeError(op, `${what} ${t._dt.name} ${fmtShape(t._shape)} with strides ${fmtShape(t._strides)} is not contiguous; it is updated in place, so it must be`);
  }
}

/** Checks p and g; returns g as a contiguous tensor (a copy pushed to temps when strided). */
function paramAndGrad(p: unknown, g: unknown, op: string, temps: Tensor[]): [Tensor, Tensor] {
  const pt = live(p, "the parameter", op);
  if (!pt._dt.isFloat) throw new DTypeError(op, `the parameter must be a float tensor (f32, f16 or bf16), got ${pt._dt.name} ${fmtShape(pt._shape)}`);
  contiguous(pt, "the parameter", op);
  const gt = live(g, "the gradient", op);
  sameShape(gt, pt, "the gradient", op);
  if (gt._dt !== pt._dt) throw new DTypeError(op, `the gradient is ${gt._dt.name} but the parameter is ${pt._dt.name}; they must match`);
  if (gt._strides === null) return [pt, gt];
  const c = gt.contiguous();
  temps.push(c);
  return [pt, c];
}

/** An f32, contiguous state tensor of p's shape. */
function state(s: unknown, what: string, p: Tensor, op: string): Tensor {
  const t = live(s, what, op);
  sameShape(t, p, what, op);
  if (t._dt.name !== "f32") throw new DTypeError(op, `${what} must be f32, got ${t._dt.name}`);
  contiguous(t, what, op);
  return t;
}

function num(v: unknown, what: string, op: string): number {
  if (typeof v !== "number" || !Number.isFinite(v)) throw new ValueError(op, `${what} must be a finite number, got ${String(v)}`);
  return v;
}

function opts(o: unknown, op: string): Record<string, unknown> {
  if (typeof o !== "object" || o === null) throw new ValueError(op, `options must be an object, got ${o === null ? "null" : typeof o}`);
  return o as Record<string, unknown>;
}

/**
 * One SGD step in place, as PyTorch: `d = g (negated when maximize) + weightDecay * p`; with
 * momentum, `buf = first ? d : momentum * buf + (1 - dampening) * d` and `d = nesterov ? d +
 * momentum * buf : buf`; then `p -= lr * d`. `buf` (f32, p's shape) is needed when momentum != 0.
 * @throws ShapeError for shapes that differ or a non-contiguous p or buf; DTypeError for a
 * non-float p, a g of another dtype or a non-f32 buf; ValueError for non-finite options, a missing
 * buffer, or Nesterov without momentum or with dampening; DeviceError for mixed devices.
 */
export function sgdUpdate_(p: Tensor, g: Tensor, buf: Tensor | null, o: SgdStep): void {
  const op = "sgdUpdate_";
  const r = opts(o, op);
  const lr = num(r.lr, "lr", op);
  const momentum = num(r.momentum, "momentum", op);
  const dampening = num(r.dampening, "dampening", op);
  const wd = num(r.weightDecay, "weightDecay", op);
  if (o.nesterov && (momentum <= 0 || dampening !== 0)) throw new ValueError(op, `Nesterov momentum needs momentum > 0 and zero dampening, got momentum ${momentum}, dampening ${dampening}`);
  const temps: Tensor[] = [];
  try {
    const [pt, gt] = paramAndGrad(p, g, op, temps);
    let b: Tensor | null = null;
    if (momentum !== 0) {
      if (buf === null || buf === undefined) throw new ValueError(op, `momentum ${momentum} needs a momentum buffer (f32 ${fmtShape(pt._shape)})`);
      b = state(buf, "the momentum buffer", pt, op);
    }
    if (pt._size === 0) return;
    const flags = (o.maximize ? 1 : 0) | (o.nesterov ? 2 : 0) | (o.first ? 4 : 0);
    check(sym.bn_sgd_update(pt._ptr(op), gt._ptr(op), b ? b._ptr(op) : null, pt._dt.code, pt._size, lr, momentum, dampening, wd, flags), op, `${pt._dt.name} ${fmtShape(pt._shape)}`);
  } finally {
    for (const c of temps) c.dispose();
  }
}

/**
 * One AdamW step in place, as PyTorch (decoupled weight decay): `p *= 1 - lr * weightDecay;
 * m = beta1 * m + (1 - beta1) * g; v = beta2 * v + (1 - beta2) * g²; p -= lr * (m / (1 -
 * beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)` with t = `step`. With `vmax` (amsgrad), `vmax =
 * max(vmax, v)` is used in place of v. m, v and vmax are f32 tensors of p's shape.
 * @throws ShapeError for shapes that differ or non-contiguous p or state; DTypeError for a
 * non-float p, a g of another dtype or non-f32 state; ValueError for non-finite options, betas
 * outside [0, 1), a negative eps or a step that is not a whole number >= 1; DeviceError for mixed
 * devices.
 */
export function adamwUpdate_(p: Tensor, g: Tensor, m: Tensor, v: Tensor, vmax: Tensor | null, o: AdamwStep): void {
  const op = "adamwUpdate_";
  const r = opts(o, op);
  const lr = num(r.lr, "lr", op);
  const b1 = num(r.beta1, "beta1", op);
  const b2 = num(r.beta2, "beta2", op);
  const eps = num(r.eps, "eps", op);
  const wd = num(r.weightDecay, "weightDecay", op);
  const step = num(r.step, "step", op);
  if (b1 < 0 || b1 >= 1 || b2 < 0 || b2 >= 1) throw new ValueError(op, `betas must be in [0, 1), got ${b1} and ${b2}`);
  if (eps < 0) throw new ValueError(op, `eps must be >= 0, got ${eps}`);
  if (!Number.isInteger(step) || step < 1) throw new ValueError(op, `step must be a whole number >= 1, got ${step}`);
  const temps: Tensor[] = [];
  try {
    const [pt, gt] = paramAndGrad(p, g, op, temps);
    const mt = state(m, "m", pt, op);
    const vt = state(v, "v", pt, op);
    const xt = vmax === null || vmax === undefined ? null : state(vmax, "vmax", pt, op);
    if (pt._size === 0) return;
    const flags = (o.maximize ? 1 : 0) | (xt ? 8 : 0);
    const status = sym.bn_adamw_update(pt._ptr(op), gt._ptr(op), mt._ptr(op), vt._ptr(op), xt ? xt._ptr(op) : null, pt._dt.code, pt._size, lr, b1, b2, eps, wd, step, flags);
    check(status, op, `${pt._dt.name} ${fmtShape(pt._shape)}`);
  } finally {
    for (const c of temps) c.dispose();
  }
}
