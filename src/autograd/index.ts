/**
 * Reverse-mode automatic differentiation on a tape (graph.ts records, backward.ts runs, rules*.ts
 * hold each op's derivative). Importing this module registers the rules and the
 * `Tensor.prototype.backward` method.
 * @module
 */
import "./rules.ts";
import "./rules_nn.ts";
export { backward, type BackwardOptions } from "./backward.ts";
export { noGrad, enableGrad, isGradEnabled } from "./graph.ts";
