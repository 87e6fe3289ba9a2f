/**
 * The autograd graph: grad mode, the {@link GradNode}s that ops record, and the registry of
 * backward rules. This file imports no op (ops import it), so every op can record itself with one
 * call at its end:
 *
 * ```ts
 * return record("mul", [a, b], out);   // no-op unless grad mode is on and an operand requires grad
 * ```
 *
 * Recording builds a node holding, per operand, where its gradient goes (the operand's own node,
 * or the leaf tensor itself), the operand's shape and dtype (gradients are summed back over
 * broadcast axes and cast to the operand's dtype), and the tensors the rule saves for backward.
 * Saved tensors are views of their own (a reference on the storage), so disposing an operand after
 * the forward pass is safe; the engine (backward.ts) releases them as soon as the node has run.
 * @module
 */
import type { DType } from "../dtype.ts";
import { AutogradError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";

/** An operand as ops receive it: a tensor, a JS scalar, or an absent optional tensor. */
export type Operand = Tensor | number | boolean | null | undefined;

/** What a rule's backward sees. */
export interface Ctx<P = unknown> {
  /** The operands' shapes (null for scalars and absent operands). */
  readonly shapes: readonly (readonly number[] | null)[];
  /** The tensors the rule's `save` returned, in order (null where it saved nothing). */
  readonly saved: readonly (Tensor | null)[];
  /** Operand `i` when it was a JS number or boolean (else null). */
  scalar(i: number): number | null;
  /** The op's parameters (axes, options, scalar operands...). */
  readonly params: P;
  /** The shape of the op's output. */
  readonly outShape: readonly number[];
  /** Whether operand `i` needs a gradient. */
  needs(i: number): boolean;
}

/**
 * A backward rule. `save` picks what backward needs (each returned tensor must be a new object the
 * node may own: use {@link alias} for operands or the output). `backward` returns one gradient per
 * operand (null where none is needed), each a new tensor object (views are fine) in the output's
 * broadcast shape or the operand's own shape; the engine sums it back to the operand's shape and
 * casts it to the operand's dtype. Backward runs with grad mode off.
 */
export interface Rule<P = unknown> {
  save?(inputs: readonly Operand[], out: Tensor, params: P): (Tensor | null)[];
  backward(g: Tensor, ctx: Ctx<P>): (Tensor | null)[];
}

const RULES = new Map<string, Rule<never>>();

/** Registers the backward rule of `op` (rules.ts does this for every differentiable op). */
export function defineRule<P>(op: string, rule: Rule<P>): void {
  RULES.set(op, rule as Rule<never>);
}

let gradOn = true;

/** Whether operations are being recorded for autograd (true unless inside {@link noGrad}). */
export function isGradEnabled(): boolean {
  return gradOn;
}

/**
 * Runs `fn` with gradient recording off (PyTorch's `torch.no_grad()`): results of ops inside do
 * not require grad and no graph is kept. Synchronous: the mode is restored when `fn` returns or
 * throws, so await nothing inside.
 *
 * ```ts
 * const logits = bn.noGrad(() => model.forward(x)); // inference: no graph, BitLinear uses the packed kernel
 * ```
 */
export function noGrad<T>(fn: () => T): T {
  const prev = gradOn;
  gradOn = false;
  try {
    return fn();
  } finally {
    gradOn = prev;
  }
}

/** Runs `fn` with gradient recording on (undoes an enclosing {@link noGrad}). */
export function enableGrad<T>(fn: () => T): T {
  const prev = gradOn;
  gradOn = true;
  try {
    return fn();
  } finally {
    gradOn = prev;
  }
}

/** Whether `x` is a tensor that requires grad (a leaf asked for it, or the result of a recorded op). */
export function tracked(x: unknown): x is Tensor {
  return x !== null && typeof x === "object" && ((x as Tensor)._rg === true || (x as Tensor)._node != null);
}

/** Whether an op with these operands must be recorded now. */
export function recording(a: unknown, b?: unknown, c?: unknown): boolean {
  return gradOn && (tracked(a) || tracked(b) || tracked(c));
}

/** A node of the graph: one recorded op. */
export class GradNode {
  /** Where each operand's gradient goes: its node, the leaf tensor, or null (no gradient). */
  next: (GradNode | Tensor | null)[];
  readonly shapes: (readonly number[] | null)[];
  readonly dtypes: (DType | null)[];
  /** Saved tensors (owned); null once released. */
  saved: (Tensor | null)[] | null;
  /** Scalar operands (JS numbers and booleans), by position. */
  readonly scalars: (number | null)[] | null = null;
  /** Storage versions of the saved tensors when they were saved. */
  readonly versions: number[];
  readonly outShape: readonly number[];
  readonly outDType: DType;

  constructor(
    readonly op: string,
    readonly rule: Rule<never>,
    readonly params: unknown,
    inputs: readonly Operand[],
    out: Tensor,
  ) {
    const n = inputs.length;
    this.next = new Array(n);
    this.shapes = new Array(n);
    this.dtypes = new Array(n);
    for (let i = 0; i < n; i++) {
      const x = inputs[i];
      const t = typeof x === "object" && x !== null ? x : null;
      this.shapes[i] = t ? t._shape : null;
      this.dtypes[i] = t ? t._dt.name : null;
      this.next[i] = t && tracked(t) ? (t._node ?? t) : null;
      if (typeof x === "number" || typeof x === "boolean") (this.scalars ??= new Array<number | null>(n).fill(null))[i] = Number(x);
    }
    this.outShape = out._shape;
    this.outDType = out._dt.name;
    this.saved = rule.save ? rule.save(inputs, out, params as never) : [];
    this.versions = this.saved.map((s) => (s === null ? 0 : s._s!.version));
  }

  /** The context handed to the rule's backward. */
  ctx(): Ctx<unknown> {
    const next = this.next;
    const scalars = this.scalars;
    return {
      shapes: this.shapes,
      saved: this.saved!,
      scalar: (i: number) => scalars?.[i] ?? null,
      params: this.params,
      outShape: this.outShape,
      needs: (i: number) => next[i] != null,
    };
  }

  /** Releases the saved tensors (idempotent; a node that saved nothing stays usable). */
  release(): void {
    const s = this.saved;
    if (s === null || s.length === 0) return;
    this.saved = null;
    for (const t of s) t?.dispose();
  }
}

/**
 * Records `out` as the result of `op` on `inputs` when grad mode is on and an operand requires
 * grad; returns `out` either way. `out` must be a float tensor made by the op.
 */
export function record<P>(op: string, inputs: readonly Operand[], out: Tensor, params?: P): Tensor {
  if (!gradOn) return out;
  let any = false;
  for (const x of inputs) {
    if (tracked(x)) {
      any = true;
      break;
    }
  }
  if (!any || !out._dt.isFloat) return out;
  const rule = RULES.get(op);
  if (rule === undefined) throw new AutogradError(op, "has no backward rule (internal: rules.ts was not loaded)");
  out._node = new GradNode(op, rule, params, inputs, out);
  return out;
}

/** A new tensor object over the same elements (the saved copy of an operand or a gradient). */
export function alias(t: Tensor): Tensor {
  return t._view("autograd", t._shape, t._strides, t._offset, t._size);
}

/** {@link alias} of `x` when it is a tensor, else null. */
export function aliasOf(x: Operand): Tensor | null {
  return typeof x === "object" && x !== null ? alias(x) : null;
}
