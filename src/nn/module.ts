/**
 * {@link Module}: the base of the layers. A module owns named parameters (float tensors that
 * require grad) and child modules; it lists them for optimizers, saves and loads them by name,
 * switches between training and evaluation, and releases everything once.
 * @module
 */
import { DTypeError, DisposedTensorError, ShapeError, ValueError, fmtShape } from "../errors.ts";
import { noGrad } from "../autograd/graph.ts";
import { Tensor, copyInto } from "../tensor.ts";

/** Something a {@link Sequential} can run: a module, or a function of one tensor (e.g. `bn.relu`). */
export type Layer = Module | ((x: Tensor) => Tensor);

/** Options of {@link Module.loadStateDict}. */
export interface LoadStateDictOptions {
  /** Require exactly this module's parameter names (default true); false skips unknown and missing names. */
  strict?: boolean;
}

/**
 * Base class of the layers (`Linear`, `BitLinear`, `RMSNorm`, `LayerNorm`, `Embedding`,
 * `Sequential`). Subclasses register their parameters and children in the constructor and
 * implement {@link forward}.
 *
 * Ownership: parameters belong to the module; update them in place (optimizers do) and never
 * dispose them yourself: `dispose()` (or `using`) releases them, and their gradients, once.
 */
export abstract class Module {
  /** Training mode (default true): BitLinear layers quantize with straight-through gradients. `eval()` turns it off. */
  training = true;
  #params = new Map<string, Tensor>();
  #children = new Map<string, Module>();
  #disposed = false;

  /** Computes the layer's output. */
  abstract forward(x: Tensor): Tensor;

  /** @internal Registers a parameter (it is made to require grad). */
  protected _param(name: string, t: Tensor): Tensor {
    t.requiresGrad = true;
    this.#params.set(name, t);
    return t;
  }

  /** @internal Registers a child module. */
  protected _child<M extends Module>(name: string, m: M): M {
    this.#children.set(name, m);
    return m;
  }

  /** @internal Throws DisposedTensorError after dispose(). */
  protected _live(op: string): void {
    if (this.#disposed) throw new DisposedTensorError(op, `this ${this.constructor.name} was disposed`);
  }

  /** Whether {@link dispose} was called. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** The direct child modules, by name. */
  children(): [string, Module][] {
    return [...this.#children];
  }

  /** Every parameter with its dotted name (`"0.weight"`, `"norm.bias"`), this module's first, then each child's. */
  namedParameters(): [string, Tensor][] {
    this._live(`${this.constructor.name}.namedParameters`);
    const out: [string, Tensor][] = [...this.#params];
    for (const [cn, c] of this.#children) for (const [pn, p] of c.namedParameters()) out.push([`${cn}.${pn}`, p]);
    return out;
  }

  /** The parameters an optimizer updates (owned by the module). */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Number of scalar parameters. */
  numParameters(): number {
    return this.parameters().reduce((a, p) => a + p.size, 0);
  }

  /**
   * The parameters by dotted name. The tensors are the module's own (not copies): read or save
   * them (e.g. `bn.gguf.write`), do not dispose them.
   */
  stateDict(): Record<string, Tensor> {
    return Object.fromEntries(this.namedParameters());
  }

  /**
   * Copies values into the parameters by name (converting dtype; shapes must match). The tensors
   * passed stay the caller's.
   * @throws ValueError (strict and a name missing or unknown), ShapeError (a shape differs),
   *   DTypeError (not a Tensor).
   */
  loadStateDict(dict: Record<string, Tensor>, opts: LoadStateDictOptions = {}): void {
    const op = `${this.constructor.name}.loadStateDict`;
    const own = new Map(this.namedParameters());
    const strict = opts.strict ?? true;
    if (strict) {
      const missing = [...own.keys()].filter((k) => !(k in dict));
      const unknown = Object.keys(dict).filter((k) => !own.has(k));
      if (missing.length > 0 || unknown.length > 0) {
        throw new ValueError(op, `names differ: missing [${missing.join(", ")}], unexpected [${unknown.join(", ")}] (pass { strict: false } to skip them)`);
      }
    }
    const pairs: [Tensor, Tensor][] = [];
    for (const [k, src] of Object.entries(dict)) {
      const p = own.get(k);
      if (p === undefined) continue;
      if (!(src instanceof Tensor)) throw new DTypeError(op, `${k} must be a Tensor, got ${src === null ? "null" : typeof src}`);
      src._live(op);
      if (src._shape.length !== p._shape.length || src._shape.some((d, i) => d !== p._shape[i])) {
        throw new ShapeError(op, `${k}: got ${src.dtype} ${fmtShape(src._shape)}, the parameter is ${p.dtype} ${fmtShape(p._shape)}`);
      }
      pairs.push([p, src]);
    }
    // Every check passed: now write (so that a bad entry changes nothing).
    noGrad(() => {
      for (const [p, src] of pairs) {
        copyInto(p, src, op);
        p._s!.version++;
      }
    });
  }

  /**
   * Moves every parameter (and its gradient) to `device` in place, as PyTorch's `module.to`: the
   * parameter objects stay the same (optimizers built before keep working), their storage moves.
   * Returns this. On a GPU, inference runs there (`Linear`, norms, `BitLinear` in eval mode);
   * the optimizers' updates run on the CPU.
   * @throws DeviceError (unknown or absent device), DisposedTensorError (after dispose).
   */
  to(device: string): this {
    const op = `${this.constructor.name}.to`;
    this._live(op);
    for (const p of this.#params.values()) p._relocate(device, op);
    for (const c of this.#children.values()) c.to(device);
    return this;
  }

  /** Sets training mode on this module and its children (default true); returns this. */
  train(mode = true): this {
    this.training = mode;
    for (const c of this.#children.values()) c.train(mode);
    return this;
  }

  /** Evaluation mode: `train(false)`. BitLinear layers then run the packed ternary kernel. */
  eval(): this {
    return this.train(false);
  }

  /** Releases every parameter's gradient (sets it to null). */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** Releases the parameters (and their gradients) and the children, once; later use throws DisposedTensorError. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const p of this.#params.values()) p.dispose();
    for (const c of this.#children.values()) c.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** @internal Checks a forward input: a live float tensor whose last axis is `n`. */
export function checkInput(x: unknown, n: number, op: string, what: string): Tensor {
  if (!(x instanceof Tensor)) throw new DTypeError(op, `x must be a Tensor, got ${x === null ? "null" : typeof x}`);
  x._live(op);
  if (!x._dt.isFloat) throw new DTypeError(op, `x must be f32, f16 or bf16, got ${x.dtype} ${fmtShape(x._shape)}; convert it first, e.g. x.astype("f32")`);
  const s = x._shape;
  if (s.length === 0 || s[s.length - 1] !== n) throw new ShapeError(op, `x ${fmtShape(s)} must end in ${n} (${what})`);
  return x;
}

/** @internal A positive integer size. */
export function checkSize(n: unknown, what: string, op: string): number {
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1) throw new ValueError(op, `${what} must be a positive integer, got ${String(n)}`);
  return n;
}
