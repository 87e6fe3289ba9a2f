/**
 * Gather and scatter-add along an axis: {@link take} (NumPy's `take`) and {@link indexAdd_}
 * (PyTorch's `index_add_`), the kernels of an embedding lookup and its gradient. One native call
 * each (zig/cpu/gather.zig).
 *
 * - Indices are a tensor of any integer dtype (i8, i16, i32, u8, u16, u32); negative ones count
 *   from the end of the axis. Every index is checked before anything is written: an index out of
 *   range is a ShapeError naming the first such index and the axis size.
 * - take reads any dtype (bool included) and returns a new contiguous tensor.
 * - indexAdd_ adds in f32 into a float target (rounding to the target's dtype after each add);
 *   repeated indices accumulate in index order, so results are deterministic.
 * - A strided `x`, `src` or index tensor is copied to a contiguous one first; the target of
 *   indexAdd_ must be contiguous (it is written in place).
 * @module
 */
import { record } from "../autograd/graph.ts";
import { DTypeError, DeviceError, ShapeError, fmtShape } from "../errors.ts";
import { check, sym } from "../native.ts";
import { normAxis } from "../shape.ts";
import { Tensor } from "../tensor.ts";

const INDEX_DTYPES = new Set(["i8", "i16", "i32", "u8", "u16", "u32"]);

/** A live tensor, or a DTypeError naming `what`. */
function tensorArg(t: unknown, what: string, op: string): Tensor {
  if (!(t instanceof Tensor)) throw new DTypeError(op, `${what} must be a Tensor, got ${t === null ? "null" : typeof t}`);
  t._live(op);
  return t;
}

/** The index tensor, checked (integer dtype, same device as `x`), contiguous (a copy is pushed to temps). */
function indexArg(indices: unknown, x: Tensor, op: string, temps: Tensor[]): Tensor {
  const t = tensorArg(indices, "indices", op);
  if (!INDEX_DTYPES.has(t._dt.name)) {
    throw new DTypeError(op, `indices must have an integer dtype (i8, i16, i32, u8, u16 or u32), got ${t._dt.name} ${fmtShape(t._shape)}`);
  }
  if (t._live(op).device !== x._live(op).device) throw new DeviceError(op, `indices are on ${t.device} but the tensor is on ${x.device}; move them with to()`);
  if (t._strides === null) return t;
  const c = t.contiguous();
  temps.push(c);
  return c;
}

const prod = (a: readonly number[]) => a.reduce((p, d) => p * d, 1);

/**
 * Elements of `x` at `indices` along `axis` (default 0), as NumPy's `take(x, indices, axis)`: the
 * result has shape `x.shape[:axis] + indices.shape + x.shape[axis+1:]` and x's dtype. With a
 * [vocab, dim] table and token ids, `take(table, ids)` is an embedding lookup.
 *
 * ```ts
 * take(bn.tensor([[1, 2], [3, 4], [5, 6]]), bn.tensor([2, -3], { dtype: "i32" })); // [[5, 6], [1, 2]]
 * ```
 * @throws DTypeError for non-integer indices; ShapeError for an axis out of range (a 0-d x has
 * none) or an index out of range (naming the first); DeviceError for tensors on different devices.
 */
export function take(x: Tensor, indices: Tensor, axis = 0): Tensor {
  const op = "take";
  const t = tensorArg(x, "x", op);
  const nd = t._shape.length;
  if (nd === 0) throw new ShapeError(op, `a zero-dimensional tensor has no axis ${String(axis)} to take along`);
  const ax = normAxis(axis, nd, op);
  const temps: Tensor[] = [];
  try {
    const idx = indexArg(indices, t, op, temps);
    const xs = t._shape;
    const shape = [...xs.slice(0, ax), ...idx._shape, ...xs.slice(ax + 1)];
    const out = Tensor._alloc(shape, t._dt, t._live(op).device, op);
    try {
      const xc = t._strides === null ? t : (temps.push(t.contiguous()), temps[temps.length - 1]!);
      const empty = out._size === 0;
      const status = sym.bn_take(
        empty ? null : out._ptr(op),
        empty ? null : xc._ptr(op),
        t._dt.code,
        idx._size === 0 ? null : idx._ptr(op),
        idx._dt.code,
        prod(xs.slice(0, ax)),
        xs[ax]!,
        prod(xs.slice(ax + 1)),
        idx._size,
      );
      check(status, op, `x ${t._dt.name} ${fmtShape(xs)}, indices ${idx._dt.name} ${fmtShape(idx._shape)}, axis ${ax}`);
    } catch (e) {
      out.dispose();
      throw e;
    }
    return record(op, [t, indices], out, ax);
  } finally {
    for (const c of temps) c.dispose();
  }
}

/**
 * In place: `target[..., indices[j], ...] += src[..., j, ...]` along `axis` for every j, as
 * PyTorch's `target.index_add_(axis, indices, src)`. `indices` is 1-D (or 0-d: one index) of an
 * integer dtype; `src` has target's shape with `axis` replaced by the number of indices, and any
 * float dtype. Repeated indices accumulate, in order of j. Returns `target`.
 * @throws DTypeError for a non-float target or src or non-integer indices; ShapeError for a
 * non-contiguous target, indices of more than one dimension, a src of the wrong shape, an axis
 * out of range or an index out of range (naming the first; target is then unchanged);
 * DeviceError for tensors on different devices.
 */
export function indexAdd_(target: Tensor, axis: number, indices: Tensor, src: Tensor): Tensor {
  const op = "indexAdd_";
  const t = tensorArg(target, "target", op);
  if (!t._dt.isFloat) throw new DTypeError(op, `target must be a float tensor (f32, f16 or bf16), got ${t._dt.name} ${fmtShape(t._shape)}`);
  if (t._strides !== null) {
    throw new ShapeError(op, `target ${t._dt.name} ${fmtShape(t._shape)} with strides ${fmtShape(t._strides)} is not contiguous; it is written in place, so pass a contiguous tensor`);
  }
  const nd = t._shape.length;
  if (nd === 0) throw new ShapeError(op, `a zero-dimensional target has no axis ${String(axis)} to add along`);
  const ax = normAxis(axis, nd, op);
  const s = tensorArg(src, "src", op);
  if (!s._dt.isFloat) throw new DTypeError(op, `src must be a float tensor (f32, f16 or bf16), got ${s._dt.name} ${fmtShape(s._shape)}`);
  if (s._live(op).device !== t._live(op).device) throw new DeviceError(op, `src is on ${s.device} but target is on ${t.device}; move it with to()`);
  const temps: Tensor[] = [];
  try {
    const idx = indexArg(indices, t, op, temps);
    if (idx._shape.length > 1) throw new ShapeError(op, `indices must be 1-D, got ${fmtShape(idx._shape)}`);
    const ts = t._shape;
    const want = ts.map((d, i) => (i === ax ? idx._size : d));
    if (s._shape.length !== nd || s._shape.some((d, i) => d !== want[i])) {
      throw new ShapeError(op, `src must have shape ${fmtShape(want)} (target ${fmtShape(ts)} with axis ${ax} of the ${idx._size} indices), got ${fmtShape(s._shape)}`);
    }
    const sc = s._strides === null ? s : (temps.push(s.contiguous()), temps[temps.length - 1]!);
    t._willWrite(op);
    const empty = t._size === 0 || sc._size === 0;
    const status = sym.bn_index_add(
      empty ? null : t._ptr(op),
      t._dt.code,
      empty ? null : sc._ptr(op),
      sc._dt.code,
      idx._size === 0 ? null : idx._ptr(op),
      idx._dt.code,
      prod(ts.slice(0, ax)),
      ts[ax]!,
      prod(ts.slice(ax + 1)),
      idx._size,
    );
    check(status, op, `target ${t._dt.name} ${fmtShape(ts)}, indices ${idx._dt.name} ${fmtShape(idx._shape)}, src ${s._dt.name} ${fmtShape(s._shape)}, axis ${ax}`);
    return t;
  } finally {
    for (const c of temps) c.dispose();
  }
}
