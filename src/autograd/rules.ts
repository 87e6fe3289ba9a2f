/**
 * Backward rules of the differentiable ops: elementwise arithmetic and math, activations,
 * reductions, views, joins and matmul (the norms, softmax and gathers are in rules_nn.ts). Each
 * rule is a few library ops, each one native call over whole tensors: no loop over elements here.
 *
 * A rule returns gradients in the output's (broadcast) shape or the operand's own; the engine sums
 * them back over broadcast axes and casts them to the operand's dtype (backward.ts).
 * @module
 */
import { zeros } from "../creation.ts";
import {
  activationGrad,
  add,
  cos,
  div,
  eq,
  exp,
  ge,
  gt,
  le,
  log,
  lt,
  mul,
  neg,
  pow,
  sign,
  sin,
  sub,
  where,
} from "../ops/elementwise.ts";
import { matmul } from "../ops/matmul.ts";
import { cumsum, mean, sum } from "../ops/reduce.ts";
import { type SliceSpec, Tensor, copyInto } from "../tensor.ts";
import { type Ctx, type Operand, alias, aliasOf, defineRule, tracked } from "./graph.ts";

/** Temporaries of one rule, disposed together. */
class Scope {
  readonly list: Tensor[] = [];
  t(x: Tensor): Tensor {
    this.list.push(x);
    return x;
  }
  dispose(): void {
    for (const x of this.list) x.dispose();
  }
}

/** Runs `f` with a scope whose temporaries are released afterwards. */
function scoped<T>(f: (s: Scope) => T): T {
  const s = new Scope();
  try {
    return f(s);
  } finally {
    s.dispose();
  }
}

/** Saved operand `k` of a binary op, or its scalar value. */
const operand = (ctx: Ctx, k: number): Tensor | number => ctx.saved[k] ?? ctx.scalar(k)!;

// ---- elementwise binary -------------------------------------------------------------------------

defineRule("add", { backward: (g, c) => [c.needs(0) ? alias(g) : null, c.needs(1) ? alias(g) : null] });
defineRule("sub", { backward: (g, c) => [c.needs(0) ? alias(g) : null, c.needs(1) ? neg(g) : null] });

defineRule("mul", {
  // d(ab)/da = b, d(ab)/db = a: keep only what the operands that need a gradient use.
  save: ([a, b]) => [tracked(b) ? aliasOf(a) : null, tracked(a) ? aliasOf(b) : null],
  backward: (g, c) => [c.needs(0) ? mul(g, operand(c, 1)) : null, c.needs(1) ? mul(g, operand(c, 0)) : null],
});

defineRule("div", {
  save: ([a, b], out) => [null, aliasOf(b), tracked(b) ? alias(out) : null],
  backward: (g, c) =>
    scoped((s) => {
      const ga = s.t(div(g, operand(c, 1)));
      return [c.needs(0) ? alias(ga) : null, c.needs(1) ? neg(s.t(mul(ga, c.saved[2]!))) : null];
    }),
});

defineRule("pow", {
  save: ([a, b], out) => [aliasOf(a), aliasOf(b), tracked(b) ? alias(out) : null],
  backward: (g, c) =>
    scoped((s) => {
      const a = operand(c, 0);
      const b = operand(c, 1);
      let ga: Tensor | null = null;
      if (c.needs(0)) {
        // b * a^(b-1)
        const p = s.t(typeof b === "number" ? pow(a, b - 1) : pow(a, s.t(sub(b, 1))));
        ga = mul(g, s.t(mul(p, b)));
      }
      const gb = c.needs(1) ? mul(g, s.t(mul(c.saved[2]!, typeof a === "number" ? Math.log(a) : s.t(log(a))))) : null;
      return [ga, gb];
    }),
});

/** maximum/minimum: the gradient goes to the winner; ties split it evenly (as PyTorch does). */
function extremum(pick: typeof gt) {
  return {
    save: ([a, b]: readonly Operand[]) => [aliasOf(a), aliasOf(b)],
    backward: (g: Tensor, c: Ctx) =>
      scoped((s) => {
        const a = operand(c, 0);
        const b = operand(c, 1);
        const won = s.t(where(s.t(pick(a, b)), 1, 0));
        const wa = s.t(where(s.t(eq(a, b)), 0.5, won));
        return [c.needs(0) ? mul(g, wa) : null, c.needs(1) ? mul(g, s.t(sub(1, wa))) : null];
      }),
  };
}
defineRule("maximum", extremum(gt));
defineRule("minimum", extremum(lt));

defineRule("where", {
  save: ([cond]) => [aliasOf(cond)],
  backward: (g, c) => {
    const cond = c.saved[0]!;
    return [null, c.needs(1) ? where(cond, g, 0) : null, c.needs(2) ? where(cond, 0, g) : null];
  },
});

// ---- elementwise unary --------------------------------------------------------------------------

type UnaryBackward = (g: Tensor, x: Tensor, y: Tensor, p: readonly number[], s: Scope) => Tensor;

/** A unary rule that saves the input (x), the output (y) or both. */
function defUnary(op: string, keep: "x" | "y" | "xy" | "", f: UnaryBackward): void {
  defineRule<number[]>(op, {
    save: ([x], out) => [keep.includes("x") ? aliasOf(x) : null, keep.includes("y") ? alias(out) : null],
    backward: (g, c) => scoped((s) => [f(g, c.saved[0]!, c.saved[1]!, c.params, s)]),
  });
}

defUnary("neg", "", (g) => neg(g));
defUnary("abs", "x", (g, x, _y, _p, s) => mul(g, s.t(sign(x))));
defUnary("exp", "y", (g, _x, y) => mul(g, y));
defUnary("log", "x", (g, x) => div(g, x));
defUnary("sqrt", "y", (g, _x, y, _p, s) => div(s.t(mul(g, 0.5)), y));
defUnary("rsqrt", "y", (g, _x, y, _p, s) => mul(g, s.t(mul(s.t(pow(y, 3)), -0.5))));
defUnary("sin", "x", (g, x, _y, _p, s) => mul(g, s.t(cos(x))));
defUnary("cos", "x", (g, x, _y, _p, s) => neg(s.t(mul(g, s.t(sin(x))))));
defUnary("erf", "x", (g, x, _y, _p, s) => mul(g, s.t(mul(s.t(exp(s.t(neg(s.t(mul(x, x)))))), 2 / Math.sqrt(Math.PI)))));
for (const name of ["tanh", "relu", "gelu", "gelu_tanh", "silu", "sigmoid"] as const) {
  defUnary(name, "x", (g, x, _y, _p, s) => mul(g, s.t(activationGrad(name, x))));
}
// Piecewise constant: zero gradient (as PyTorch).
for (const name of ["floor", "ceil", "round", "sign"]) defUnary(name, "", (g) => zeros(g._shape, { dtype: g._dt.name }));
// clip: the gradient passes where min <= x <= max (NaN bound = no bound).
defUnary("clip", "x", (g, x, _y, [lo, hi], s) => {
  let m: Tensor | null = null;
  if (!Number.isNaN(lo!)) m = s.t(ge(x, lo!));
  if (!Number.isNaN(hi!)) m = m ? s.t(mul(m, s.t(le(x, hi!)))) : s.t(le(x, hi!));
  return m ? where(m, g, 0) : alias(g);
});

// ---- reductions ---------------------------------------------------------------------------------

interface ReduceParams {
  red: number[];
  keepdims: boolean;
  ddof: number;
  n: number;
}

/** `t` (the output or its gradient) reshaped so that it broadcasts against the input. */
function kept(t: Tensor, c: Ctx<ReduceParams>, s: Scope): Tensor {
  if (c.params.keepdims) return t;
  const shape = c.shapes[0]!.map((d, i) => (c.params.red.includes(i) ? 1 : d));
  return s.t(t.reshape(shape));
}

defineRule<ReduceParams>("sum", { backward: (g, c) => scoped((s) => [kept(g, c, s).expand(c.shapes[0]!)]) });
defineRule<ReduceParams>("mean", { backward: (g, c) => scoped((s) => [s.t(mul(kept(g, c, s), 1 / c.params.n)).expand(c.shapes[0]!)]) });
defineRule<ReduceParams>("prod", {
  save: ([x], out) => [aliasOf(x), alias(out)],
  backward: (g, c) => scoped((s) => [mul(kept(g, c, s), s.t(div(kept(c.saved[1]!, c, s), c.saved[0]!)))]),
});
/** min/max: the gradient is shared evenly by the elements equal to the extremum. */
const extremeReduce = {
  save: ([x]: readonly Operand[], out: Tensor) => [aliasOf(x), alias(out)],
  backward: (g: Tensor, c: Ctx<ReduceParams>) =>
    scoped((s) => {
      const mask = s.t(eq(c.saved[0]!, kept(c.saved[1]!, c, s)));
      const count = s.t(sum(mask, { axis: c.params.red, keepdims: true }));
      return [div(s.t(mul(mask, kept(g, c, s))), count)];
    }),
};
defineRule("min", extremeReduce);
defineRule("max", extremeReduce);
defineRule<ReduceParams>("var", {
  save: ([x]) => [aliasOf(x)],
  backward: (g, c) =>
    scoped((s) => {
      const x = c.saved[0]!;
      const d = s.t(sub(x, s.t(mean(x, { axis: c.params.red, keepdims: true }))));
      return [mul(d, s.t(mul(kept(g, c, s), 2 / (c.params.n - c.params.ddof))))];
    }),
});
defineRule<ReduceParams>("std", {
  save: ([x], out) => [aliasOf(x), alias(out)],
  backward: (g, c) =>
    scoped((s) => {
      const x = c.saved[0]!;
      const d = s.t(sub(x, s.t(mean(x, { axis: c.params.red, keepdims: true }))));
      return [mul(d, s.t(div(kept(g, c, s), s.t(mul(kept(c.saved[1]!, c, s), c.params.n - c.params.ddof)))))];
    }),
});
defineRule<ReduceParams>("logsumexp", {
  save: ([x], out) => [aliasOf(x), alias(out)],
  backward: (g, c) => scoped((s) => [mul(kept(g, c, s), s.t(exp(s.t(sub(c.saved[0]!, kept(c.saved[1]!, c, s))))))]),
});
// cumsum: the gradient is the reversed cumulative sum, total - cumsum(g) + g.
defineRule<{ axis: number | null }>("cumsum", {
  backward: (g, c) =>
    scoped((s) => {
      const ax = c.params.axis ?? 0;
      const total = s.t(sum(g, { axis: ax, keepdims: true }));
      const r = add(s.t(sub(total, s.t(cumsum(g, ax)))), g);
      if (c.params.axis !== null) return [r];
      s.t(r);
      return [r.reshape(c.shapes[0] as number[])];
    }),
});

// ---- views, copies and joins --------------------------------------------------------------------

defineRule("reshape", { backward: (g, c) => [g.reshape(c.shapes[0] as number[])] });
defineRule<number[]>("permute", {
  backward: (g, c) => {
    const inv = new Array<number>(c.params.length);
    c.params.forEach((a, i) => (inv[a] = i));
    return [g.permute(inv)];
  },
});
defineRule<SliceSpec[]>("slice", {
  backward: (g, c) => {
    const z = zeros(c.shapes[0] as number[], { dtype: g._dt.name });
    const part = z.slice(c.params);
    try {
      copyInto(part, g, "backward");
    } finally {
      part.dispose();
    }
    return [z];
  },
});
// expand / contiguous / to / astype / straight-through quantizers: the gradient passes as is
// (the engine sums it over expanded axes and casts it to the operand's dtype).
for (const name of ["expand", "alias", "astype", "ste"]) defineRule(name, { backward: (g) => [alias(g)] });
// to(device): the gradient goes back to the source device.
defineRule<string>("to", { backward: (g, c) => [g.to(c.params)] });

defineRule<number>("concat", {
  backward: (g, c) => {
    const ax = c.params;
    let start = 0;
    return c.shapes.map((sh, i) => {
      const len = sh![ax]!;
      const spec = g._shape.map((_, k) => (k === ax ? ([start, start + len] as const) : null));
      start += len;
      return c.needs(i) ? g.slice(spec) : null;
    });
  },
});

// ---- matrix products ----------------------------------------------------------------------------

defineRule("matmul", {
  save: ([a, b]) => [tracked(b) ? aliasOf(a) : null, tracked(a) ? aliasOf(b) : null],
  backward: (g, c) =>
    scoped((s) => {
      const a1 = c.shapes[0]!.length === 1;
      const b1 = c.shapes[1]!.length === 1;
      // Back to matrices: a 1-D first operand is a row [1, K], a 1-D second one a column [K, 1].
      let gm = g;
      if (a1 && b1) gm = s.t(g.reshape([1, 1]));
      else if (a1) gm = s.t(g.unsqueeze(-2));
      else if (b1) gm = s.t(g.unsqueeze(-1));
      let ga: Tensor | null = null;
      let gb: Tensor | null = null;
      if (c.needs(0)) {
        const b = c.saved[1]!;
        const bm = b1 ? s.t(b.reshape([-1, 1])) : b;
        ga = matmul(gm, s.t(bm.transpose(-1, -2)));
        if (a1) ga = s.t(ga).squeeze(-2);
      }
      if (c.needs(1)) {
        const a = c.saved[0]!;
        const am = a1 ? s.t(a.reshape([1, -1])) : a;
        gb = matmul(s.t(am.transpose(-1, -2)), gm);
        if (b1) gb = s.t(gb).squeeze(-1);
      }
      return [ga, gb];
    }),
});

// N-D dot: out[a..., b..., n] = sum_k x[a..., k] y[b..., k, n], as one matrix product of
// x as [R, K] and y as [K, B*N].
defineRule("dot", {
  save: ([a, b]) => [aliasOf(a), aliasOf(b)],
  backward: (g, c) =>
    scoped((s) => {
      const x = c.saved[0]!;
      const y = c.saved[1]!;
      const ys = y._shape;
      const nd = ys.length;
      const k = ys[nd - 2]!;
      const perm = [nd - 2, ...[...Array(nd).keys()].filter((i) => i !== nd - 2)];
      const yk = s.t(s.t(y.permute(perm)).reshape([k, -1])); // [K, B*N]
      const x2 = s.t(x.reshape([-1, k])); // [R, K]
      const g2 = s.t(g.reshape([x2._shape[0]!, yk._shape[1]!]));
      const gx = c.needs(0) ? s.t(matmul(g2, s.t(yk.transpose()))).reshape(c.shapes[0] as number[]) : null;
      let gy: Tensor | null = null;
      if (c.needs(1)) {
        const gk = s.t(s.t(matmul(s.t(x2.transpose()), g2)).reshape(perm.map((p) => ys[p]!)));
        const inv = new Array<number>(nd);
        perm.forEach((p, i) => (inv[p] = i));
        gy = gk.permute(inv);
      }
      return [gx, gy];
    }),
});
