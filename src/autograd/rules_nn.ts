/**
 * Backward rules that have kernels of their own in the engine: softmax / logSoftmax, layerNorm /
 * rmsNorm (input, weight and bias gradients in one pass), and take (a scatter-add of the
 * gradient rows: the Embedding layer's backward).
 * @module
 */
import { zeros } from "../creation.ts";
import { indexAdd_ } from "../ops/gather.ts";
import { normBackward, softmaxBackward } from "../ops/grad_kernels.ts";
import type { Tensor } from "../tensor.ts";
import { type Operand, alias, aliasOf, defineRule } from "./graph.ts";

for (const [op, log] of [["softmax", false], ["logSoftmax", true]] as const) {
  defineRule<number>(op, {
    save: (_inputs, out) => [alias(out)],
    backward: (g, c) => [softmaxBackward(c.saved[0]!, g, c.params, log)],
  });
}

for (const [op, kind] of [["layerNorm", "layer"], ["rmsNorm", "rms"]] as const) {
  defineRule<number>(op, {
    save: ([x, w]: readonly Operand[]) => [aliasOf(x), aliasOf(w)],
    backward: (g, c) => {
      const r = normBackward(kind, c.saved[0]!, g, c.saved[1] ?? null, c.params, c.needs(1) || c.needs(2));
      return [r.dx, r.dweight, r.dbias];
    },
  });
}

// take(x, indices, axis): the gradient rows are added back at their indices (repeats accumulate).
defineRule<number>("take", {
  save: ([, indices]: readonly Operand[]) => [aliasOf(indices)],
  backward: (g, c) => {
    const ax = c.params;
    const shape = c.shapes[0]!;
    const idx = c.saved[0]!;
    const gx = zeros(shape as number[], { dtype: g._dt.name });
    const flatIdx = idx.reshape([-1]);
    const src: Tensor = g.reshape([...shape.slice(0, ax), idx._size, ...shape.slice(ax + 1)]);
    try {
      indexAdd_(gx, ax, flatIdx, src);
    } catch (e) {
      gx.dispose();
      throw e;
    } finally {
      flatIdx.dispose();
      src.dispose();
    }
    return [gx, null];
  },
});
