/**
 * The backward pass: walks the recorded graph from a tensor to the leaves in reverse topological
 * order, runs each node's rule once with the sum of the gradients that reached it, sums every
 * operand's gradient back over broadcast axes and casts it to the operand's dtype, and adds the
 * results into the leaves' `grad`.
 *
 * Memory: every gradient is released as soon as it has been used, and each node releases its
 * saved tensors right after it ran (unless `retainGraph`), so a training step ends holding only
 * the parameters' gradients.
 * @module
 */
import { full } from "../creation.ts";
import { AutogradError, ShapeError, fmtShape } from "../errors.ts";
import { add, add_ } from "../ops/elementwise.ts";
import { sum } from "../ops/reduce.ts";
import { Tensor } from "../tensor.ts";
import { GradNode, noGrad } from "./graph.ts";

/** Options of `backward()`. */
export interface BackwardOptions {
  /**
   * Keep the saved tensors so that backward can run through this graph again (default false:
   * they are released as the pass goes, and a second pass throws AutogradError).
   */
  retainGraph?: boolean;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** `g` summed over the axes broadcasting added to `shape`, in `dtype` (g is consumed). */
function fit(g: Tensor, shape: readonly number[], dtype: string): Tensor {
  let r = g;
  if (!sameShape(r._shape, shape)) {
    const lead = r._shape.length - shape.length;
    const axes: number[] = [];
    for (let i = 0; i < r._shape.length; i++) if (i < lead || (shape[i - lead] === 1 && r._shape[i] !== 1)) axes.push(i);
    let s = axes.length > 0 ? sum(r, { axis: axes, keepdims: true }) : r;
    if (s !== r) r.dispose();
    if (!sameShape(s._shape, shape)) {
      const v = s.reshape(shape as number[]);
      s.dispose();
      s = v;
    }
    r = s;
  }
  if (r._dt.name !== dtype) {
    const c = r.astype(dtype as never);
    r.dispose();
    r = c;
  }
  return r;
}

/** A gradient the leaf can own: contiguous, alone on its storage (else a copy; g is consumed). */
function owned(g: Tensor): Tensor {
  const s = g._s!;
  if (g._strides === null && g._offset === 0 && s.refs === 1 && !s.exported && s.nbytes === g.nbytes) return g;
  const c = g.clone();
  g.dispose();
  return c;
}

function accumulate(leaf: Tensor, g: Tensor): void {
  if (leaf._s === null) {
    g.dispose(); // the leaf was disposed after the forward pass: nothing to fill
    return;
  }
  if (leaf._grad === null || leaf._grad._s === null) {
    leaf._grad = owned(g);
    return;
  }
  add_(leaf._grad, g);
  g.dispose();
}

function seedOf(root: Tensor, grad: Tensor | number | null | undefined): Tensor {
  const op = "backward";
  if (grad === undefined || grad === null) {
    if (root._size !== 1) {
      throw new AutogradError(op, `a gradient can be implied only for a tensor of one element; this one is ${root._dt.name} ${fmtShape(root._shape)}: pass backward(grad) with a gradient of its shape`);
    }
    return full(root._shape, 1, { dtype: root._dt.name });
  }
  if (typeof grad === "number") return full(root._shape, grad, { dtype: root._dt.name });
  if (!(grad instanceof Tensor)) throw new AutogradError(op, `the gradient must be a Tensor or a number, got ${typeof grad}`);
  grad._live(op);
  if (!sameShape(grad._shape, root._shape)) {
    throw new ShapeError(op, `the gradient ${grad._dt.name} ${fmtShape(grad._shape)} must have the shape of the tensor ${root._dt.name} ${fmtShape(root._shape)}`);
  }
  return grad.astype(root._dt.name);
}

/**
 * Computes the gradient of `root` with respect to every leaf that requires grad and adds it to
 * their `grad`. `grad` is d(loss)/d(root): implied 1 for a tensor of one element.
 * @throws AutogradError (root does not require grad; no gradient for a non-scalar; the graph was
 *   already released by an earlier backward; a saved tensor was changed in place), ShapeError
 *   (gradient of another shape).
 */
export function backward(root: Tensor, grad?: Tensor | number | null, opts?: BackwardOptions): void {
  const op = "backward";
  if (!(root instanceof Tensor)) throw new AutogradError(op, "needs a Tensor");
  root._live(op);
  if (!root.requiresGrad) {
    throw new AutogradError(op, `the tensor ${root._dt.name} ${fmtShape(root._shape)} does not require grad: no operand of the ops that made it had requiresGrad (or they ran inside bn.noGrad)`);
  }
  const retain = opts?.retainGraph === true;
  noGrad(() => {
    const seed = seedOf(root, grad);
    const start = root._node;
    if (start === null) {
      accumulate(root, seed);
      return;
    }
    // Edges into each node from the nodes reachable from the root.
    const deps = new Map<GradNode, number>([[start, 0]]);
    const stack = [start];
    while (stack.length > 0) {
      for (const nx of stack.pop()!.next) {
        if (!(nx instanceof GradNode)) continue;
        const c = deps.get(nx);
        if (c === undefined) {
          deps.set(nx, 1);
          stack.push(nx);
        } else deps.set(nx, c + 1);
      }
    }
    const grads = new Map<GradNode, Tensor>([[start, seed]]);
    const ready = [start];
    try {
      while (ready.length > 0) {
        const node = ready.pop()!;
        const g = grads.get(node);
        grads.delete(node);
        if (g !== undefined) {
          try {
            runNode(node, g, grads);
          } finally {
            g.dispose();
          }
        }
        if (!retain) node.release();
        for (const nx of node.next) {
          if (!(nx instanceof GradNode)) continue;
          const c = deps.get(nx)! - 1;
          deps.set(nx, c);
          if (c === 0) ready.push(nx);
        }
      }
    } finally {
      for (const t of grads.values()) t.dispose();
    }
  });
}

function runNode(node: GradNode, g: Tensor, grads: Map<GradNode, Tensor>): void {
  const saved = node.saved;
  if (saved === null) {
    throw new AutogradError("backward", `the graph through ${node.op} was already released by an earlier backward(); pass { retainGraph: true } to the first call to go through it again`);
  }
  for (let i = 0; i < saved.length; i++) {
    const t = saved[i];
    if (t && t._s!.version !== node.versions[i]) {
      throw new AutogradError("backward", `a tensor ${t._dt.name} ${fmtShape(t._shape)} saved by ${node.op} was changed in place after the forward pass; its gradient would be wrong`);
    }
  }
  const results = node.rule.backward(g, node.ctx() as never);
  for (let i = 0; i < node.next.length; i++) {
    const dest = node.next[i];
    const r = results[i] ?? null;
    if (r === null) continue;
    if (dest === null || dest === undefined) {
      r.dispose();
      continue;
    }
    const f = fit(r, node.shapes[i]!, node.dtypes[i]!);
    if (dest instanceof GradNode) {
      const prev = grads.get(dest);
      if (prev === undefined) grads.set(dest, f);
      else {
        grads.set(dest, add(prev, f));
        prev.dispose();
        f.dispose();
      }
    } else accumulate(dest, f);
  }
  // Rules may return fewer entries than operands; anything beyond is ignored.
  for (let i = node.next.length; i < results.length; i++) results[i]?.dispose();
}

declare module "../tensor.ts" {
  interface Tensor {
    /**
     * Backpropagates from this tensor: adds d(this)/d(leaf) (times `grad`) to the `grad` of every
     * leaf that requires grad. `grad` defaults to 1 for a tensor of one element.
     */
    backward(grad?: Tensor | number | null, opts?: BackwardOptions): void;
  }
}

Tensor.prototype.backward = function (this: Tensor, grad?: Tensor | number | null, opts?: BackwardOptions) {
  backward(this, grad, opts);
};
