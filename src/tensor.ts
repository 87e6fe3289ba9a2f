/**
 * Tensor = a view (shape, strides, offset, dtype) over a refcounted {@link Storage}.
 * View operations build a new Tensor over the same storage and never touch data; everything
 * that reads or writes elements makes one native call with a descriptor.
 * @module
 */
import { DTypeCode } from "./abi.gen.ts";
import { type DType, type DTypeInfo, type DataArray, dtypeInfo } from "./dtype.ts";
import { DTypeError, DeviceError, DisposedTensorError, ShapeError, ValueError, fmtShape, show } from "./errors.ts";
import { Storage, allocate, release } from "./memory.ts";
import { borrowedArrayBuffer, check, putLayout, sym } from "./native.ts";
import {
  broadcastStrides,
  checkShape,
  contiguousStrides,
  inferShape,
  isContiguousLayout,
  normAxis,
  reshapeStrides,
  sizeOf,
} from "./shape.ts";
import { formatTensor } from "./format.ts";
import { deviceName } from "./device.ts";
import { AutogradError } from "./errors.ts";
import { type GradNode, isGradEnabled, record } from "./autograd/graph.ts";

/** Keeps a storage reachable from every ArrayBuffer handed out by `t.data`. */
const kStorage = Symbol("bitnet.storage");

/** One entry of `slice()`: an index, `null` for the whole axis, or `[start, stop, step]`. */
export type SliceSpec = number | null | readonly [start?: number | null, stop?: number | null, step?: number | null];

/** Nested arrays of numbers (booleans for bool tensors), as `toArray()` returns them. */
export type NestedArray = number | boolean | NestedArray[];


/** A multi-dimensional array in native memory. */
export class Tensor {
  /** @internal storage; null once disposed */
  _s: Storage | null;
  /** @internal */ readonly _shape: number[];
  /** @internal strides in elements; null means row-major contiguous */
  _strides: number[] | null;
  /** @internal offset of element 0, in elements */
  _offset: number;
  /** @internal */ readonly _dt: DTypeInfo;
  /** @internal */ readonly _size: number;
  /** @internal cached `data` array */
  _data: DataArray | undefined = undefined;
  /** @internal autograd: a leaf that requires grad */
  _rg = false;
  /** @internal autograd: the recorded op that made this tensor (null for leaves) */
  _node: GradNode | null = null;
  /** @internal autograd: accumulated gradient (leaves) */
  _grad: Tensor | null = null;

  /** @internal Use the creation functions (`bn.tensor`, `bn.zeros`, ...). */
  constructor(storage: Storage, shape: number[], strides: number[] | null, offset: number, dt: DTypeInfo, size: number) {
    this._s = storage;
    this._shape = shape;
    this._strides = strides;
    this._offset = offset;
    this._dt = dt;
    this._size = size;
  }

  /** @internal A fresh contiguous tensor (storage allocated, contents undefined unless `zero`). */
  static _alloc(shape: number[], dt: DTypeInfo, device: number, op: string, zero = false): Tensor {
    const size = sizeOf(shape);
    const s = allocate(size * dt.size, device, dt.name, shape, op, zero);
    return new Tensor(s, shape, null, 0, dt, size);
  }

  /** @internal Throws DisposedTensorError if disposed; returns the storage. */
  _live(op: string): Storage {
    const s = this._s;
    if (s === null) throw new DisposedTensorError(op, `tensor (${this._dt.name} ${fmtShape(this._shape)}) was used after dispose()`);
    return s;
  }

  /** @internal A view over the same storage (`size` when the caller knows it). */
  _view(op: string, shape: number[], strides: number[] | null, offset: number, size = sizeOf(shape)): Tensor {
    const s = this._live(op);
    s.refs++;
    const st = strides !== null && isContiguousLayout(shape, strides) ? null : strides;
    return new Tensor(s, shape, st, offset, this._dt, size);
  }

  /**
   * @internal Address of element 0, for a CPU kernel. Tensors on a GPU have no CPU kernels yet:
   * a DeviceError says so (instead of handing device memory to the CPU).
   */
  _ptr(op: string): number {
    const s = this._live(op);
    if (s.device !== 0) {
      throw new DeviceError(op, `${op} runs on the CPU only, and this tensor is on ${deviceName(s.device)}; move it with toCpu() first`);
    }
    return s.ptr + this._offset * this._dt.size;
  }

  /** @internal Address of element 0 on whatever device holds it (transfers only). */
  _addr(op: string): number {
    return this._live(op).ptr + this._offset * this._dt.size;
  }

  // ---- metadata ------------------------------------------------------------------------------

  /** Dimensions (a copy). */
  get shape(): number[] {
    return this._shape.slice();
  }
  /** Strides in elements (a copy). */
  get strides(): number[] {
    return this._strides === null ? contiguousStrides(this._shape) : this._strides.slice();
  }
  get ndim(): number {
    return this._shape.length;
  }
  /** Number of elements. */
  get size(): number {
    return this._size;
  }
  get dtype(): DType {
    return this._dt.name;
  }
  /** Bytes per element. */
  get itemsize(): number {
    return this._dt.size;
  }
  /** Bytes of the elements this tensor covers (size × itemsize). */
  get nbytes(): number {
    return this._size * this._dt.size;
  }
  /** "cpu", "cuda" (= cuda:0), "cuda:1", ..., "metal". */
  get device(): string {
    return deviceName(this._live("device").device);
  }
  /** Whether `dispose()` was called on this tensor. */
  get disposed(): boolean {
    return this._s === null;
  }

  /**
   * Zero-copy TypedArray over the tensor's native memory (contiguous CPU tensors only; call
   * `contiguous()` first otherwise). f16 is a Float16Array, bf16 a Uint16Array of raw bits,
   * bool a Uint8Array of 0/1. Writing to it writes the tensor. The array keeps the memory alive:
   * after `dispose()` the block is freed only once the array is unreachable too.
   */
  get data(): DataArray {
    const s = this._live("data");
    if (this._data !== undefined) return this._data;
    if (s.device !== 0) throw new DeviceError("data", `tensor ${this._dt.name} ${fmtShape(this._shape)} is on ${deviceName(s.device)}: its memory is not addressable from JS; copy it with toCpu()`);
    if (this._strides !== null) {
      throw new ShapeError("data", `tensor ${this._dt.name} ${fmtShape(this._shape)} with strides ${fmtShape(this._strides)} is not contiguous; call .contiguous() first`);
    }
    const n = this._size;
    const Ctor = this._dt.array;
    if (n === 0) return (this._data = new Ctor(new ArrayBuffer(0)));
    const byteOffset = this._offset * this._dt.size;
    const ab = borrowedArrayBuffer(s.ptr, byteOffset, n * this._dt.size);
    (ab as unknown as Record<symbol, Storage>)[kStorage] = s;
    s.exported = true;
    return (this._data = new Ctor(ab, 0, n));
  }

  // ---- lifetime --------------------------------------------------------------------------------

  /**
   * Releases this tensor now (and its `grad`). Storage shared with other views is freed when the
   * last is released; a graph that saved this tensor keeps its own reference. Idempotent.
   */
  dispose(): void {
    const s = this._s;
    if (s === null) return;
    this._s = null;
    this._data = undefined;
    this._node = null;
    const g = this._grad;
    this._grad = null;
    g?.dispose();
    if (--s.refs === 0) release(s);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  // ---- autograd ------------------------------------------------------------------------------

  /**
   * Whether gradients flow to this tensor: set on a leaf (a tensor you made) to have `backward()`
   * fill its {@link grad}; results of ops on such tensors require grad too (unless made inside
   * `bn.noGrad`). Float dtypes only.
   * @throws DTypeError (setting it on an integer or bool tensor), AutogradError (turning it off
   *   on a non-leaf: use {@link detach}).
   */
  get requiresGrad(): boolean {
    return this._rg || this._node !== null;
  }
  set requiresGrad(v: boolean) {
    this._live("requiresGrad");
    if (v && !this._dt.isFloat) throw new DTypeError("requiresGrad", `only float tensors can require gradients, got ${this._dt.name} ${fmtShape(this._shape)}`);
    if (this._node !== null) {
      if (v) return;
      throw new AutogradError("requiresGrad", `cannot turn off requiresGrad of a non-leaf tensor (result of ${this._node.op}); use detach()`);
    }
    this._rg = Boolean(v);
  }

  /** Sets {@link requiresGrad} (default true) and returns this tensor. */
  requiresGrad_(v = true): this {
    this.requiresGrad = v;
    return this;
  }

  /** Whether this tensor is a leaf of the graph (made by you, not recorded from an op). */
  get isLeaf(): boolean {
    return this._node === null;
  }

  /** The op that made this tensor when it was recorded for autograd (e.g. "matmul"), else null. */
  get gradFn(): string | null {
    return this._node?.op ?? null;
  }

  /**
   * The gradient accumulated by `backward()` (leaves that require grad; null until then). It has
   * this tensor's shape and dtype and is owned by this tensor (disposed with it); `t.grad = null`
   * releases it (what `optimizer.zeroGrad()` does).
   */
  get grad(): Tensor | null {
    return this._grad;
  }
  set grad(g: Tensor | null) {
    this._live("grad");
    if (g !== null) {
      if (!(g instanceof Tensor)) throw new DTypeError("grad", `grad must be a Tensor or null, got ${typeof g}`);
      g._live("grad");
      if (g._dt !== this._dt || g._shape.length !== this._shape.length || g._shape.some((d, i) => d !== this._shape[i])) {
        throw new ShapeError("grad", `grad ${g._dt.name} ${fmtShape(g._shape)} must match the tensor ${this._dt.name} ${fmtShape(this._shape)}`);
      }
    }
    const old = this._grad;
    this._grad = g;
    if (old !== g) old?.dispose();
  }

  /** A view of the same memory outside the graph: it does not require grad, and gradients never flow through it. */
  detach(): Tensor {
    this._live("detach");
    return this._view("detach", this._shape, this._strides, this._offset, this._size);
  }

  /** @internal Throws unless an in-place write to this tensor is allowed under autograd; bumps the storage version. */
  _willWrite(op: string): void {
    const s = this._live(op);
    // A broadcast view (expand) holds each element several times: writing it would race and
    // count twice, so it is refused, as NumPy and PyTorch do.
    const st = this._strides;
    if (st !== null) {
      for (let i = 0; i < st.length; i++) {
        if (st[i] === 0 && this._shape[i]! > 1) {
          throw new ValueError(op, `in-place ${op} on a broadcast view (${this._dt.name} ${fmtShape(this._shape)}, stride 0 on axis ${i}): its elements share memory; write to a contiguous() copy`);
        }
      }
    }
    if (isGradEnabled() && (this._rg || this._node !== null)) {
      throw new AutogradError(op, `in-place ${op} on a tensor that requires grad (${this._dt.name} ${fmtShape(this._shape)}); do it inside bn.noGrad(), or on a detach()ed copy`);
    }
    s.version++;
  }

  // ---- reading -------------------------------------------------------------------------------

  /** @internal Every element as float64 (row-major), converted by the engine. */
  _toFloat64(op: string): Float64Array {
    if (this._live(op).device !== 0) {
      // Reading a GPU tensor's values copies it to the host (and waits for the device).
      const c = this.to("cpu");
      try {
        return c._toFloat64(op);
      } finally {
        c.dispose();
      }
    }
    const out = new Float64Array(this._size);
    if (this._size === 0) return out;
    copyRawPtr(out, DTypeCode.f64, contiguousStrides(this._shape), this, op);
    return out;
  }

  /** Nested arrays (a number or boolean for a 0-d tensor). */
  toArray(): NestedArray {
    const shape = this._shape;
    // The arrays it makes: one for each index of the leading axes (an empty tensor with a huge
    // axis before its empty one, e.g. [2**40, 0], would need that many).
    let arrays = 1;
    for (const d of shape.slice(0, -1)) {
      if (d === 0) break;
      arrays *= d;
      if (arrays > 2 ** 26) throw new ValueError("toArray", `a ${this._dt.name} ${fmtShape(shape)} tensor would need over ${2 ** 26} nested arrays; read t.data or t.shape instead`);
    }
    const flat = this._toFloat64("toArray");
    const isBool = this._dt.name === "bool";
    if (shape.length === 0) return isBool ? flat[0] !== 0 : flat[0]!;
    let pos = 0;
    const build = (axis: number): NestedArray[] => {
      const n = shape[axis]!;
      const out = new Array<NestedArray>(n);
      if (axis === shape.length - 1) {
        for (let i = 0; i < n; i++) out[i] = isBool ? flat[pos++] !== 0 : flat[pos++]!;
      } else {
        for (let i = 0; i < n; i++) out[i] = build(axis + 1);
      }
      return out;
    };
    return build(0);
  }

  /** The single element of a tensor of size 1. */
  item(): number | boolean {
    this._live("item");
    if (this._size !== 1) throw new ShapeError("item", `only a tensor of one element converts to a scalar, got ${fmtShape(this._shape)} (${this._size} elements)`);
    const v = this._toFloat64("item")[0]!;
    return this._dt.name === "bool" ? v !== 0 : v;
  }

  /** NumPy-like printout, summarised with `...` past 1000 elements. */
  toString(): string {
    if (this._s === null) return `tensor(<disposed>, dtype=${this._dt.name}, shape=${fmtShape(this._shape)})`;
    if (this._s.device !== 0) {
      const c = this.to("cpu");
      try {
        const text = formatTensor(c);
        return `${text.slice(0, -1)}, device=${this.device})`;
      } finally {
        c.dispose();
      }
    }
    return formatTensor(this);
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }

  // ---- views ---------------------------------------------------------------------------------

  /** Whether elements are laid out row-major without gaps. */
  isContiguous(): boolean {
    this._live("isContiguous");
    return this._strides === null;
  }

  /** @internal strides, materialised */
  _st(): number[] {
    return this._strides ?? contiguousStrides(this._shape);
  }

  /** Same data, new shape (one dimension may be -1): a view when strides allow, else a copy. */
  reshape(shape: readonly number[] | number, ...rest: number[]): Tensor {
    const target = typeof shape === "number" ? [shape, ...rest] : shape;
    this._live("reshape");
    const ns = inferShape(target, this._size, this._shape, "reshape");
    const st = this._strides === null ? null : reshapeStrides(this._shape, this._strides, ns);
    if (this._strides === null) return record("reshape", [this], this._view("reshape", ns, null, this._offset, this._size));
    if (st !== null) return record("reshape", [this], this._view("reshape", ns, st, this._offset, this._size));
    const c = this.astype(this._dt.name);
    const v = c._view("reshape", ns, null, c._offset);
    c.dispose();
    v._node = null;
    return record("reshape", [this], v);
  }

  /** A view with a new shape; ShapeError when the strides do not allow one (no copy ever). */
  view(shape: readonly number[] | number, ...rest: number[]): Tensor {
    const target = typeof shape === "number" ? [shape, ...rest] : shape;
    this._live("view");
    const ns = inferShape(target, this._size, this._shape, "view");
    if (this._strides === null) return record("reshape", [this], this._view("view", ns, null, this._offset));
    const st = reshapeStrides(this._shape, this._strides, ns);
    if (st === null) {
      throw new ShapeError("view", `cannot view ${this._dt.name} ${fmtShape(this._shape)} with strides ${fmtShape(this._strides)} as ${fmtShape(ns)} without a copy; use reshape()`);
    }
    return record("reshape", [this], this._view("view", ns, st, this._offset));
  }

  /** Removes axes of size 1 (all of them, or the given ones, which must have size 1). */
  squeeze(axis?: number | number[]): Tensor {
    this._live("squeeze");
    const nd = this._shape.length;
    const st = this._st();
    let drop: Set<number>;
    if (axis === undefined) {
      drop = new Set(this._shape.flatMap((d, i) => (d === 1 ? [i] : [])));
    } else {
      drop = new Set((Array.isArray(axis) ? axis : [axis]).map((a) => normAxis(a, nd, "squeeze")));
      for (const a of drop) {
        if (this._shape[a] !== 1) throw new ShapeError("squeeze", `cannot squeeze axis ${a} of ${fmtShape(this._shape)}: its size is ${this._shape[a]}, not 1`);
      }
    }
    const shape: number[] = [];
    const strides: number[] = [];
    for (let i = 0; i < nd; i++) {
      if (!drop.has(i)) {
        shape.push(this._shape[i]!);
        strides.push(st[i]!);
      }
    }
    return record("reshape", [this], this._view("squeeze", shape, strides, this._offset));
  }

  /** Inserts an axis of size 1 at `axis` (negative counts from the end of the result). */
  unsqueeze(axis: number): Tensor {
    this._live("unsqueeze");
    const a = normAxis(axis, this._shape.length, "unsqueeze", 1);
    const st = this._st();
    const shape = this._shape.slice();
    const strides = st.slice();
    shape.splice(a, 0, 1);
    strides.splice(a, 0, a < st.length ? st[a]! * this._shape[a]! : 1);
    return record("reshape", [this], this._view("unsqueeze", shape, strides, this._offset));
  }

  /** Reorders axes: `permute([2, 0, 1])`. */
  permute(axes: readonly number[]): Tensor {
    this._live("permute");
    const nd = this._shape.length;
    if (!Array.isArray(axes) || axes.length !== nd) {
      throw new ShapeError("permute", `axes [${String(axes)}] must list each of the ${nd} axes of ${fmtShape(this._shape)} once`);
    }
    const st = this._st();
    const shape = new Array<number>(nd);
    const strides = new Array<number>(nd);
    const perm = new Array<number>(nd);
    let seen = 0;
    for (let i = 0; i < nd; i++) {
      let a = axes[i]!;
      if (!Number.isInteger(a) || a < -nd || a >= nd) a = normAxis(a, nd, "permute"); // throws
      if (a < 0) a += nd;
      const bit = 2 ** a;
      if (Math.floor(seen / bit) % 2 === 1) throw new ShapeError("permute", `axis ${a} repeated in [${axes.join(", ")}]`);
      seen += bit;
      perm[i] = a;
      shape[i] = this._shape[a]!;
      strides[i] = st[a]!;
    }
    return record("permute", [this], this._view("permute", shape, strides, this._offset, this._size), perm);
  }

  /** Swaps two axes; with no arguments reverses all axes (NumPy's transpose). */
  transpose(a?: number, b?: number): Tensor {
    const nd = this._shape.length;
    const axes = new Array<number>(nd);
    if (a === undefined && b === undefined) {
      for (let i = 0; i < nd; i++) axes[i] = nd - 1 - i;
    } else {
      this._live("transpose");
      const x = normAxis(a ?? -2, nd, "transpose");
      const y = normAxis(b ?? -1, nd, "transpose");
      for (let i = 0; i < nd; i++) axes[i] = i;
      axes[x] = y;
      axes[y] = x;
    }
    return this.permute(axes);
  }

  /** All axes reversed (the matrix transpose for 2-D). */
  get T(): Tensor {
    return this.transpose();
  }

  /** A 1-D tensor of every element (a view when possible). */
  flatten(): Tensor {
    return this.reshape([-1]);
  }

  /**
   * Basic indexing, one entry per leading axis: a number selects (and drops the axis; negative
   * counts from the end; out of range is a ShapeError), `null` keeps the axis, and
   * `[start, stop, step]` takes a range with Python semantics (negative indices, clamped bounds,
   * negative steps).
   */
  slice(specs: readonly SliceSpec[]): Tensor {
    this._live("slice");
    const nd = this._shape.length;
    if (!Array.isArray(specs) || specs.length > nd) {
      throw new ShapeError("slice", `${Array.isArray(specs) ? specs.length : "non-array"} indices for a tensor of ${nd} dimensions ${fmtShape(this._shape)}`);
    }
    const st = this._st();
    let offset = this._offset;
    const shape: number[] = [];
    const strides: number[] = [];
    for (let ax = 0; ax < nd; ax++) {
      const dim = this._shape[ax]!;
      const spec = ax < specs.length ? specs[ax] : null;
      if (spec === null || spec === undefined) {
        shape.push(dim);
        strides.push(st[ax]!);
      } else if (typeof spec === "number") {
        if (!Number.isInteger(spec) || spec < -dim || spec >= dim) {
          throw new ShapeError("slice", `index ${spec} is out of range for axis ${ax} of size ${dim} in ${fmtShape(this._shape)}`);
        }
        offset += (spec < 0 ? spec + dim : spec) * st[ax]!;
      } else if (Array.isArray(spec)) {
        const step = spec[2] ?? 1;
        if (!Number.isInteger(step) || step === 0) {
          throw new ShapeError("slice", `step ${String(spec[2])} for axis ${ax} of ${fmtShape(this._shape)} must be a nonzero integer`);
        }
        const start = step > 0 ? bound(spec[0], 0, 0, dim, dim, "start", ax) : bound(spec[0], dim - 1, -1, dim - 1, dim, "start", ax);
        const stop = step > 0 ? bound(spec[1], dim, 0, dim, dim, "stop", ax) : bound(spec[1], -1, -1, dim - 1, dim, "stop", ax);
        const len = rangeLength(start, stop, step);
        if (len > 0) offset += start * st[ax]!;
        shape.push(len);
        strides.push(st[ax]! * step);
      } else {
        throw new ShapeError("slice", `invalid index ${show(spec)} for axis ${ax}`);
      }
    }
    const out = this._view("slice", shape, strides, offset);
    return record("slice", [this], out, specs.map((x) => (Array.isArray(x) ? x.slice() : x)));
  }

  /** Broadcasts to `shape` without copying (stride 0 on broadcast axes); -1 keeps a dimension. */
  expand(shape: readonly number[]): Tensor {
    this._live("expand");
    if (!Array.isArray(shape)) throw new ShapeError("expand", `shape must be an array, got ${String(shape)}`);
    const off = shape.length - this._shape.length;
    const target = checkShape(
      shape.map((d, i) => (d === -1 && i >= off ? this._shape[i - off] : d)),
      "expand",
    );
    const strides = broadcastStrides(this._shape, this._st(), target, "expand");
    return record("expand", [this], this._view("expand", target, strides, this._offset));
  }

  /** NumPy's name for {@link expand}. */
  broadcastTo(shape: readonly number[]): Tensor {
    return this.expand(shape);
  }

  /** A row-major tensor with the same values: a view of this storage if already contiguous, else a copy. */
  contiguous(): Tensor {
    this._live("contiguous");
    if (this._strides === null) return record("alias", [this], this._view("contiguous", this._shape.slice(), null, this._offset));
    return this.clone();
  }

  /** A copy with its own storage (contiguous). */
  clone(): Tensor {
    return this.astype(this._dt.name);
  }

  /**
   * A contiguous copy converted to `dtype`: floats round to nearest even into f16/bf16 (NaN and
   * Inf kept); floats truncate toward zero and saturate into integers (NaN -> 0); integers wrap;
   * anything nonzero is true.
   */
  astype(dtype: DType): Tensor {
    const s = this._live("astype");
    const dt = dtypeInfo(dtype, "astype");
    const out = Tensor._alloc(this._shape.slice(), dt, s.device, "astype");
    try {
      copyInto(out, this, "astype");
    } catch (e) {
      out.dispose();
      throw e;
    }
    return record("astype", [this], out);
  }
}

/** One bound of a range, Python-style: negative counts from the end, then clamped to [lo, hi]. */
function bound(v: number | null | undefined, dflt: number, lo: number, hi: number, dim: number, what: string, ax: number): number {
  if (v === null || v === undefined) return dflt;
  if (!Number.isInteger(v)) throw new ShapeError("slice", `${what} ${String(v)} for axis ${ax} must be an integer`);
  const x = v < 0 ? v + dim : v;
  return x < lo ? lo : x > hi ? hi : x;
}

function rangeLength(start: number, stop: number, step: number): number {
  if (step > 0) return stop > start ? Math.ceil((stop - start) / step) : 0;
  return start > stop ? Math.ceil((start - stop) / -step) : 0;
}

/** @internal Copies `src` (any strides) into the tensor `dst` of the same shape (any strides), converting dtype. */
export function copyInto(dst: Tensor, src: Tensor, op: string): void {
  const dev = dst._live(op).device;
  if (dev !== 0 || src._live(op).device !== 0) {
    if (src._s!.device !== dev) throw new DeviceError(op, `cannot copy a tensor on ${src.device} into one on ${dst.device}; move it with to()`);
    if (src._size === 0) return;
    putLayout(src._shape, dst._st(), src._st());
    check(sym.bn_gpu_convert(dev, dst._addr(op), dst._dt.code, src._addr(op), src._dt.code, src._shape.length), op, `${src._dt.name} ${fmtShape(src._shape)} on ${dst.device}`);
    return;
  }
  const dptr = dst._ptr(op);
  copyRawPtr(dptr, dst._dt.code, dst._st(), src, op);
}

/** @internal Copies `src` to a raw destination (an address or a JS Float64Array) with the given strides. */
export function copyRawPtr(dst: number | Float64Array, dstCode: number, dstStrides: readonly number[], src: Tensor, op: string): void {
  if (src._size === 0) return;
  const sptr = src._ptr(op);
  putLayout(src._shape, dstStrides, src._st());
  check(sym.bn_copy(dst, dstCode, sptr, src._dt.code, src._shape.length), op);
}

/** Whether a value is a Tensor. */
export function isTensor(x: unknown): x is Tensor {
  return x instanceof Tensor;
}
