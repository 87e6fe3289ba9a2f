/**
 * Devices: `t.to(device)`, `toCpu()`, `toGpu()`, and the internal moves they rest on (`_packed`,
 * `_relocate`, `copyBytes`). Methods of {@link Tensor}, attached here to keep src/tensor.ts to the
 * tensor itself (loaded by src/index.ts, like the op modules).
 * @module
 */
import { DeviceError, fmtShape } from "./errors.ts";
import { release } from "./memory.ts";
import { check, sym } from "./native.ts";
import { Tensor } from "./tensor.ts";
import { deviceName, parseDevice } from "./device.ts";
import { noGrad, record } from "./autograd/graph.ts";

declare module "./tensor.ts" {
  interface Tensor {
    /**
     * This tensor on `device` ("cpu", "cuda", "cuda:1", ...): a new tensor object, a view when it
     * is already there, else a contiguous copy (device→host copies complete before this returns;
     * host→device copies of 4 MiB or more return once queued, the source already copied out).
     * Gradients flow back to the source device.
     * @throws DeviceError (an unknown device, or a GPU that is not present: the message says why).
     */
    to(device: string): Tensor;
    /** @internal Moves this tensor's values to `device` in place (`Module.to`). */
    _relocate(device: string, op: string): void;
    /** @internal A contiguous copy on this tensor's device. */
    _packed(op: string): Tensor;
    /** `to("cpu")`. */
    toCpu(): Tensor;
    /** `to()` the first GPU ("cuda"); DeviceError, saying why, when there is none. */
    toGpu(): Tensor;
  }
}

/**
 * `to(device)`: a view when the tensor is already there, else a contiguous copy (see the
 * declaration above).
 */
Tensor.prototype.to = function (this: Tensor, device: string): Tensor {
  const s = this._live("to");
  const dst = parseDevice(device, "to");
  if (dst === s.device) return record("alias", [this], this._view("to", this._shape.slice(), this._strides, this._offset));
  const src = this._strides === null ? this : this._packed("to");
  try {
    const out = Tensor._alloc(this._shape.slice(), this._dt, dst, "to");
    try {
      copyBytes(out, src, "to");
    } catch (e) {
      out.dispose();
      throw e;
    }
    return record("to", [this], out, deviceName(s.device));
  } finally {
    if (src !== this) src.dispose();
  }
};

/**
 * @internal Moves this tensor's values to `device` in place (`Module.to`): the object stays, its
 * storage is replaced by a contiguous copy there, and its gradient moves with it. Refused for a
 * view or a storage other tensors share (they would be left on the old device).
 */
Tensor.prototype._relocate = function (this: Tensor, device: string, op: string): void {
  const s = this._live(op);
  const dst = parseDevice(device, op);
  if (dst === s.device) return;
  if (s.refs !== 1) throw new DeviceError(op, `a ${this._dt.name} ${fmtShape(this._shape)} parameter shares its storage with ${s.refs - 1} other tensor(s); it cannot move in place`);
  const moved = noGrad(() => this.to(device));
  const ns = moved._s!;
  moved._s = null; // its storage now belongs to this tensor
  this._s = ns;
  this._strides = null;
  this._offset = 0;
  this._data = undefined;
  if (--s.refs === 0) release(s);
  this._grad?._relocate(device, op);
};

/**
 * @internal A contiguous copy on this tensor's device (CPU: a strided copy; GPU: the span of
 * memory the view covers goes to the host, is packed there, and comes back).
 */
Tensor.prototype._packed = function (this: Tensor, op: string): Tensor {
  const s = this._live(op);
  if (s.device === 0) return this.astype(this._dt.name);
  let lo = this._offset;
  let hi = this._offset;
  const st = this._st();
  this._shape.forEach((d, i) => {
    if (d === 0) return;
    const step = (d - 1) * st[i]!;
    if (step < 0) lo += step;
    else hi += step;
  });
  const span = Tensor._alloc([this._size === 0 ? 0 : hi - lo + 1], this._dt, 0, op);
  try {
    if (this._size > 0) check(sym.bn_memcpy(0, span._addr(op), s.device, s.ptr + lo * this._dt.size, (hi - lo + 1) * this._dt.size), op);
    const view = span._view(op, this._shape.slice(), st.slice(), this._offset - lo);
    try {
      const host = view.astype(this._dt.name);
      try {
        const out = Tensor._alloc(this._shape.slice(), this._dt, s.device, op);
        try {
          copyBytes(out, host, op);
        } catch (e) {
          out.dispose();
          throw e;
        }
        return out;
      } finally {
        host.dispose();
      }
    } finally {
      view.dispose();
    }
  } finally {
    span.dispose();
  }
};

/** `to("cpu")`. */
Tensor.prototype.toCpu = function (this: Tensor): Tensor {
  return this.to("cpu");
};

/** `to()` the first GPU ("cuda"); DeviceError, saying why, when there is none. */
Tensor.prototype.toGpu = function (this: Tensor): Tensor {
  this._live("toGpu");
  return this.to("cuda");
};

/** @internal Copies the bytes of contiguous `src` into contiguous `dst` (same size), across devices. */
export function copyBytes(dst: Tensor, src: Tensor, op: string): void {
  if (src.nbytes === 0) return;
  check(sym.bn_memcpy(dst._live(op).device, dst._addr(op), src._live(op).device, src._addr(op), src.nbytes), op);
}
