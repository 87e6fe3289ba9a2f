/**
 * Optimizers: {@link SGD} (momentum, Nesterov, weight decay) and {@link AdamW} (decoupled weight
 * decay), PyTorch's update rules. `step()` updates every parameter that has a gradient in place,
 * one native call per parameter (src/optim/update.ts); `zeroGrad()` releases the gradients.
 *
 * ```ts
 * const opt = new bn.optim.AdamW(model.parameters(), { lr: 1e-3 });
 * opt.zeroGrad();
 * loss.backward();
 * opt.step();
 * ```
 * @module
 */
import { zeros } from "../creation.ts";
import { AutogradError, DTypeError, DisposedTensorError, ValueError, fmtShape } from "../errors.ts";
import { noGrad } from "../autograd/graph.ts";
import { Tensor } from "../tensor.ts";
import { adamwUpdate_, sgdUpdate_ } from "./update.ts";

function num(v: unknown, what: string, op: string, lo: number, hi = Infinity, loOpen = false): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < lo || v > hi || (loOpen && v === lo)) {
    throw new ValueError(op, `${what} must be a number in ${loOpen ? "(" : "["}${lo}, ${hi}${hi === Infinity ? ")" : "]"}, got ${String(v)}`);
  }
  return v;
}

/** Base of the optimizers: a checked list of parameters and per-parameter state. */
export abstract class Optimizer {
  /** The parameters (leaf float tensors that require grad), in the order given. */
  readonly params: readonly Tensor[];
  /** Learning rate; may be changed between steps (schedules). */
  lr: number;
  /** Steps taken. */
  steps = 0;
  #disposed = false;
  protected readonly state: (Tensor | null)[][];

  constructor(params: Iterable<Tensor>, lr: number, op: string) {
    if (params === null || typeof params !== "object" || typeof (params as Iterable<Tensor>)[Symbol.iterator] !== "function") {
      throw new ValueError(op, `params must be an array of tensors (e.g. model.parameters()), got ${params === null ? "null" : typeof params}`);
    }
    const list = [...params];
    if (list.length === 0) throw new ValueError(op, "got an empty parameter list");
    const seen = new Set<Tensor>();
    list.forEach((p, i) => {
      if (!(p instanceof Tensor)) throw new DTypeError(op, `parameter ${i} is not a Tensor (${p === null ? "null" : typeof p})`);
      p._live(op);
      if (!p._dt.isFloat) throw new DTypeError(op, `parameter ${i} (${p.dtype} ${fmtShape(p.shape)}) is not a float tensor`);
      if (!p.requiresGrad) throw new AutogradError(op, `parameter ${i} (${p.dtype} ${fmtShape(p.shape)}) does not require grad: set requiresGrad = true (module parameters do)`);
      if (!p.isLeaf) throw new AutogradError(op, `parameter ${i} (${p.dtype} ${fmtShape(p.shape)}) is the result of ${p.gradFn}, not a leaf: optimize the tensors you created`);
      if (!p.isContiguous()) throw new ValueError(op, `parameter ${i} (${p.dtype} ${fmtShape(p.shape)}) is a strided view; optimize contiguous tensors`);
      if (seen.has(p)) throw new ValueError(op, `parameter ${i} appears twice`);
      seen.add(p);
    });
    this.params = list;
    this.lr = num(lr, "lr", op, 0);
    this.state = list.map(() => []);
  }

  /** Releases every parameter's gradient (sets `grad` to null). */
  zeroGrad(): void {
    for (const p of this.params) if (!p.disposed) p.grad = null;
  }

  /** Applies one update to every parameter that has a gradient. */
  step(): void {
    const op = `${this.constructor.name}.step`;
    if (this.#disposed) throw new DisposedTensorError(op, "this optimizer was disposed");
    this.steps++;
    noGrad(() => {
      this.params.forEach((p, i) => {
        p._live(op);
        const g = p.grad;
        if (g === null) return;
        this.update(p, g, this.state[i]!, i);
        p._s!.version++;
      });
    });
  }

  /** @internal One parameter's update (state: this optimizer's tensors for it, created lazily). */
  protected abstract update(p: Tensor, g: Tensor, state: (Tensor | null)[], i: number): void;

  /** @internal A zero f32 state tensor like `p`. */
  protected zerosLike(p: Tensor): Tensor {
    return zeros(p.shape);
  }

  /** Releases the optimizer's state (momentum buffers, moments); the parameters stay. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const s of this.state) for (const t of s) t?.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Options of {@link SGD}. */
export interface SGDOptions {
  /** Learning rate (required). */
  lr: number;
  /** Momentum factor (default 0). */
  momentum?: number;
  /** Dampening of the momentum (default 0). */
  dampening?: number;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
  /** Nesterov momentum (default false; needs momentum > 0 and dampening 0). */
  nesterov?: boolean;
  /** Maximize the objective instead (default false). */
  maximize?: boolean;
}

/** Stochastic gradient descent with optional momentum (PyTorch's `torch.optim.SGD`). */
export class SGD extends Optimizer {
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  readonly maximize: boolean;
  constructor(params: Iterable<Tensor>, opts: SGDOptions) {
    const op = "SGD";
    if (opts === null || typeof opts !== "object") throw new ValueError(op, "options with lr are required, e.g. { lr: 0.1 }");
    super(params, opts.lr, op);
    this.momentum = num(opts.momentum ?? 0, "momentum", op, 0);
    this.dampening = num(opts.dampening ?? 0, "dampening", op, 0, 1);
    this.weightDecay = num(opts.weightDecay ?? 0, "weightDecay", op, 0);
    this.nesterov = opts.nesterov ?? false;
    this.maximize = opts.maximize ?? false;
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) throw new ValueError(op, "Nesterov momentum needs momentum > 0 and dampening 0");
  }
  protected update(p: Tensor, g: Tensor, state: (Tensor | null)[]): void {
    let buf: Tensor | null = null;
    let first = false;
    if (this.momentum !== 0) {
      first = state[0] === undefined || state[0] === null;
      if (first) state[0] = this.zerosLike(p);
      buf = state[0]!;
    }
    sgdUpdate_(p, g, buf, { lr: this.lr, momentum: this.momentum, dampening: this.dampening, weightDecay: this.weightDecay, nesterov: this.nesterov, maximize: this.maximize, first });
  }
}

/** Options of {@link AdamW}. */
export interface AdamWOptions {
  /** Learning rate (default 1e-3). */
  lr?: number;
  /** Decay rates of the first and second moments (default [0.9, 0.999]). */
  betas?: readonly [number, number];
  /** Added to the denominator (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay (default 0.01, as PyTorch). */
  weightDecay?: number;
  /** Use the maximum of past second moments (default false). */
  amsgrad?: boolean;
  /** Maximize the objective instead (default false). */
  maximize?: boolean;
}

/** Adam with decoupled weight decay (PyTorch's `torch.optim.AdamW`). */
export class AdamW extends Optimizer {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly amsgrad: boolean;
  readonly maximize: boolean;
  #t: number[];
  constructor(params: Iterable<Tensor>, opts: AdamWOptions = {}) {
    const op = "AdamW";
    super(params, opts.lr ?? 1e-3, op);
    const betas = opts.betas ?? [0.9, 0.999];
    if (!Array.isArray(betas) || betas.length !== 2) throw new ValueError(op, "betas must be a pair [beta1, beta2]");
    this.beta1 = num(betas[0], "beta1", op, 0, 1);
    this.beta2 = num(betas[1], "beta2", op, 0, 1);
    if (this.beta1 === 1 || this.beta2 === 1) throw new ValueError(op, "betas must be below 1");
    this.eps = num(opts.eps ?? 1e-8, "eps", op, 0);
    this.weightDecay = num(opts.weightDecay ?? 1e-2, "weightDecay", op, 0);
    this.amsgrad = opts.amsgrad ?? false;
    this.maximize = opts.maximize ?? false;
    this.#t = this.params.map(() => 0);
  }
  protected update(p: Tensor, g: Tensor, state: (Tensor | null)[], i: number): void {
    if (!state[0]) {
      state[0] = this.zerosLike(p);
      state[1] = this.zerosLike(p);
      state[2] = this.amsgrad ? this.zerosLike(p) : null;
    }
    const t = ++this.#t[i]!;
    adamwUpdate_(p, g, state[0]!, state[1]!, state[2] ?? null, { lr: this.lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: this.weightDecay, step: t, maximize: this.maximize });
  }
}

/** The optimizers: `bn.optim.SGD`, `bn.optim.AdamW`. */
export const optim = { SGD, AdamW } as const;
