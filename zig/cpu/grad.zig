//! Backward kernels of softmax / logSoftmax (args.SoftmaxBackwardArgs) and of layerNorm / rmsNorm
//! (args.NormBackwardArgs), for autograd. Tests: grad_test.zig.
//!
//! Written once: generic over the dtype (f32, f16, bf16; all compute in f32) and the vector width
//! `vbits` of the ISA level. As in norm.zig and softmax.zig the layout's last axis is the reduced
//! one, the other axes are coalesced among themselves and each outer index is one row; rows are
//! split across the thread pool.
//!
//! softmax: dx = y * (g - sum(g * y)); logSoftmax: dx = g - exp(y) * sum(g). Rows are contiguous
//! (vector passes along the row), columns (the innermost outer axis is contiguous: n rows at once,
//! one a lane, as for softmax over axis 0), or strided (the column code with one lane).
//!
//! layerNorm: xhat = (x - mean) * r, r = 1 / sqrt(var + eps) (biased variance); rmsNorm: xhat =
//! x * r, r = 1 / sqrt(mean(x²) + eps). With gh = g * weight: layer dx = r * (gh - mean(gh) -
//! xhat * mean(gh * xhat)); rms dx = r * (gh - xhat * mean(gh * xhat)). The statistics are
//! recomputed as the forward kernel does (mean relative to x[0], centred second pass).
//!
//! dweight = sum over rows of g * xhat and dbias = sum over rows of g are deterministic: the rows
//! are cut into chunks whose size depends on the shape only, each chunk sums its rows in order
//! into its own f32 partial vector (scratch), and the partials are added in chunk order in f64.
//! No sum ever depends on how the thread pool hands out chunks.
const std = @import("std");
const dt = @import("dtype.zig");
const args = @import("args.zig");
const strided = @import("strided.zig");
const vmath = @import("vmath.zig");
const ew = @import("elementwise.zig");
const Parallel = @import("parallel.zig").Parallel;
const ptrAt = @import("copy.zig").ptrAt;
const DType = dt.DType;
const lanes = ew.lanes;
const load = ew.load;
const store = ew.store;

/// Elements per job chunk handed to a thread.
pub const grain_elems = 16 * 1024;

/// At most this many row chunks (each with its own partial dweight/dbias) per norm backward call.
pub const max_param_chunks = 128;

/// The layout with its outer axes coalesced (at least one, possibly of size 1) and the last axis
/// kept apart as the innermost; a 0-d layout becomes one row of one element. (norm.rowsLayout for
/// any operand count.)
pub fn rowsLayout(comptime k: usize, src: *const strided.Layout(k)) strided.Layout(k) {
    var l = src.*;
    if (l.ndim == 0) {
        l.ndim = 1;
        l.shape[0] = 1;
        inline for (0..k) |o| l.strides[o][0] = 1;
    }
    const last = l.ndim - 1;
    const len = l.shape[last];
    var ls: [k]isize = undefined;
    inline for (0..k) |o| ls[o] = l.strides[o][last];
    l.ndim = last;
    l.coalesce();
    if (l.ndim == 0) {
        l.ndim = 1;
        l.shape[0] = 1;
        inline for (0..k) |o| l.strides[o][0] = 0;
    }
    l.shape[l.ndim] = len;
    inline for (0..k) |o| l.strides[o][l.ndim] = ls[o];
    l.ndim += 1;
    return l;
}

/// m elements from p at element i: contiguous, or (m = 1) at offset i * st.
inline fn ld(comptime d: DType, comptime m: usize, comptime contig: bool, p: [*]const dt.Storage(d), i: usize, st: isize) @Vector(m, f32) {
    if (contig) return load(d, m, p + i);
    comptime std.debug.assert(m == 1);
    return load(d, 1, @ptrCast(ptrAt(dt.Storage(d), p, @as(isize, @intCast(i)) * st)));
}

inline fn st1(comptime d: DType, comptime m: usize, comptime contig: bool, p: [*]dt.Storage(d), i: usize, st: isize, v: @Vector(m, f32)) void {
    if (contig) return store(d, m, p + i, v);
    comptime std.debug.assert(m == 1);
    store(d, 1, @ptrCast(ptrAt(dt.Storage(d), p, @as(isize, @intCast(i)) * st)), v);
}

// ---- softmax backward -------------------------------------------------------------------------

pub fn softmaxBackward(comptime vbits: u32, par: *const Parallel, a: *const args.SoftmaxBackwardArgs) void {
    switch (a.dtype) {
        inline .f32, .f16, .bf16 => |d| {
            if (a.log != 0) softmaxBackTyped(vbits, d, true, par, a) else softmaxBackTyped(vbits, d, false, par, a);
        },
        else => unreachable, // the door refuses non-float dtypes
    }
}

fn softmaxBackTyped(comptime vbits: u32, comptime d: DType, comptime log: bool, par: *const Parallel, a: *const args.SoftmaxBackwardArgs) void {
    const S = dt.Storage(d);
    const n = comptime lanes(vbits, f32);
    const l = rowsLayout(3, &a.layout);
    const len = l.shape[l.ndim - 1];
    if (len == 0 or l.size() == 0) return;
    const Ptrs = struct { dx: [*]S, y: [*]const S, g: [*]const S };
    const ptrs: Ptrs = .{ .dx = @ptrCast(@alignCast(a.dx)), .y = @ptrCast(@alignCast(a.y)), .g = @ptrCast(@alignCast(a.g)) };

    // Columns: the innermost outer axis is contiguous in every operand while the row is not.
    const ia = l.ndim - 2;
    const row_contig = l.strides[0][ia + 1] == 1 and l.strides[1][ia + 1] == 1 and l.strides[2][ia + 1] == 1;
    if (n > 1 and l.strides[0][ia] == 1 and l.strides[1][ia] == 1 and l.strides[2][ia] == 1 and l.shape[ia] >= n and !row_contig) {
        const ColCtx = struct {
            const Self = @This();
            blk: strided.Layout(3),
            len: usize,
            st: [3]isize,
            p: Ptrs,
            chunk: usize, // columns per job item (a multiple of 4n)
            nchunks: usize, // items per row of blk

            const Part = struct {
                ctx: *const Self,
                c0: usize,
                c1: usize,

                pub fn row(self: *const Part, offs: [3]isize, cols: usize, _: [3]isize) void {
                    const cx = self.ctx;
                    const o: [*]S = @ptrCast(ptrAt(S, cx.p.dx, offs[0]));
                    const y: [*]const S = @ptrCast(ptrAt(S, cx.p.y, offs[1]));
                    const g: [*]const S = @ptrCast(ptrAt(S, cx.p.g, offs[2]));
                    const end = @min(self.c1, cols);
                    var c = self.c0;
                    while (c + 4 * n <= end) : (c += 4 * n) softmaxBackCols(4 * n, d, log, o + c, y + c, g + c, cx.len, cx.st);
                    while (c + n <= end) : (c += n) softmaxBackCols(n, d, log, o + c, y + c, g + c, cx.len, cx.st);
                    while (c < end) : (c += 1) softmaxBackCols(1, d, log, o + c, y + c, g + c, cx.len, cx.st);
                }
            };

            fn task(self: *const Self, b: usize, e: usize) void {
                for (b..e) |item| {
                    const r = item / self.nchunks;
                    const c0 = (item % self.nchunks) * self.chunk;
                    const part: Part = .{ .ctx = self, .c0 = c0, .c1 = c0 + self.chunk };
                    self.blk.forRows(r, r + 1, &part);
                }
            }
        };
        var ctx: ColCtx = .{ .blk = l, .len = len, .st = .{ l.strides[0][ia + 1], l.strides[1][ia + 1], l.strides[2][ia + 1] }, .p = ptrs, .chunk = 0, .nchunks = 0 };
        ctx.blk.ndim -= 1; // rows of blk: the outer axes but the innermost; each row spans that axis
        if (ctx.blk.ndim == 1) {
            // forRows on a 1-d layout splits elements; put a size-1 axis in front instead.
            ctx.blk.shape[1] = ctx.blk.shape[0];
            ctx.blk.shape[0] = 1;
            inline for (0..3) |o| {
                ctx.blk.strides[o][1] = 1;
                ctx.blk.strides[o][0] = 0;
            }
            ctx.blk.ndim = 2;
        }
        const cols = ctx.blk.shape[ctx.blk.ndim - 1];
        const w = 4 * n;
        ctx.chunk = @min(cols, @max(w, (grain_elems / len + w - 1) / w * w));
        ctx.nchunks = (cols + ctx.chunk - 1) / ctx.chunk;
        par.run(ctx.blk.rows() * ctx.nchunks, @max(1, grain_elems / (ctx.chunk * len)), &ctx, ColCtx.task);
        return;
    }

    const Ctx = struct {
        layout: *const strided.Layout(3),
        p: Ptrs,

        pub fn row(self: *const @This(), offs: [3]isize, rlen: usize, st: [3]isize) void {
            const o: [*]S = @ptrCast(ptrAt(S, self.p.dx, offs[0]));
            const y: [*]const S = @ptrCast(ptrAt(S, self.p.y, offs[1]));
            const g: [*]const S = @ptrCast(ptrAt(S, self.p.g, offs[2]));
            if (st[0] == 1 and st[1] == 1 and st[2] == 1) softmaxBackRow(n, d, log, o, y, g, rlen) else softmaxBackCols(1, d, log, o, y, g, rlen, st);
        }

        fn task(self: *const @This(), b: usize, e: usize) void {
            self.layout.forRows(b, e, self);
        }
    };
    const ctx: Ctx = .{ .layout = &l, .p = ptrs };
    par.run(l.rows(), @max(1, grain_elems / len), &ctx, Ctx.task);
}

/// One contiguous row: s = sum(g * y) (log: sum(g)), then dx.
fn softmaxBackRow(comptime n: usize, comptime d: DType, comptime log: bool, o: [*]dt.Storage(d), y: [*]const dt.Storage(d), g: [*]const dt.Storage(d), len: usize) void {
    const V = @Vector(n, f32);
    const V1 = @Vector(1, f32);
    var s0: V = @splat(0);
    var s1: V = @splat(0);
    var i: usize = 0;
    while (i + 2 * n <= len) : (i += 2 * n) {
        const g0 = load(d, n, g + i);
        const g1 = load(d, n, g + i + n);
        s0 += if (log) g0 else g0 * load(d, n, y + i);
        s1 += if (log) g1 else g1 * load(d, n, y + i + n);
    }
    while (i + n <= len) : (i += n) {
        const g0 = load(d, n, g + i);
        s0 += if (log) g0 else g0 * load(d, n, y + i);
    }
    var s = @reduce(.Add, s0 + s1);
    while (i < len) : (i += 1) {
        const g0 = load(d, 1, g + i)[0];
        s += if (log) g0 else g0 * load(d, 1, y + i)[0];
    }
    const sv: V = @splat(s);
    const sv1: V1 = @splat(s);
    i = 0;
    while (i + n <= len) : (i += n) {
        const gv = load(d, n, g + i);
        const yv = load(d, n, y + i);
        store(d, n, o + i, if (log) gv - vmath.exp(n, yv) * sv else yv * (gv - sv));
    }
    while (i < len) : (i += 1) {
        const gv = load(d, 1, g + i);
        const yv = load(d, 1, y + i);
        store(d, 1, o + i, if (log) gv - vmath.exp(1, yv) * sv1 else yv * (gv - sv1));
    }
}

/// m rows at once, lane k = row k (neighbouring in memory), stepping along them by st (dx, y, g).
/// With m = 1 this is the strided path of one row.
fn softmaxBackCols(comptime m: usize, comptime d: DType, comptime log: bool, o: [*]dt.Storage(d), y: [*]const dt.Storage(d), g: [*]const dt.Storage(d), len: usize, st: [3]isize) void {
    const S = dt.Storage(d);
    const V = @Vector(m, f32);
    var s: V = @splat(0);
    var py: isize = 0;
    var pg: isize = 0;
    for (0..len) |_| {
        const gv = load(d, m, @ptrCast(ptrAt(S, g, pg)));
        s += if (log) gv else gv * load(d, m, @ptrCast(ptrAt(S, y, py)));
        py += st[1];
        pg += st[2];
    }
    py = 0;
    pg = 0;
    var po: isize = 0;
    for (0..len) |_| {
        const gv = load(d, m, @ptrCast(ptrAt(S, g, pg)));
        const yv = load(d, m, @ptrCast(ptrAt(S, y, py)));
        store(d, m, @ptrCast(ptrAt(S, o, po)), if (log) gv - vmath.exp(m, yv) * s else yv * (gv - s));
        po += st[0];
        py += st[1];
        pg += st[2];
    }
}

// ---- layerNorm / rmsNorm backward -------------------------------------------------------------

/// Returns 0, or 1 when scratch memory was refused.
pub fn normBackward(comptime vbits: u32, par: *const Parallel, a: *const args.NormBackwardArgs) u32 {
    switch (a.dtype) {
        inline .f32, .f16, .bf16 => |d| switch (a.kind) {
            inline else => |k| return normBackTyped(vbits, k, d, par, a),
        },
        else => unreachable, // the door refuses non-float dtypes
    }
}

/// Rows per chunk of the dweight/dbias partials: depends on the shape only (never on threads).
pub fn paramChunkRows(rows: usize, len: usize) usize {
    return @max(@max(1, grain_elems / @max(len, 1)), (rows + max_param_chunks - 1) / max_param_chunks);
}

fn normBackTyped(comptime vbits: u32, comptime kind: args.NormKind, comptime d: DType, par: *const Parallel, a: *const args.NormBackwardArgs) u32 {
    const S = dt.Storage(d);
    const n = comptime lanes(vbits, f32);
    const l = rowsLayout(3, &a.layout);
    const len = l.shape[l.ndim - 1];
    if (len == 0) return 0;
    const rows = l.rows();
    const want = a.dweight != null or a.dbias != null;
    if (rows == 0 or l.size() == 0) {
        if (a.dweight) |p| @memset(p[0..len], 0);
        if (a.dbias) |p| @memset(p[0..len], 0);
        return 0;
    }
    // The weight as f32 (ones when there is none): one instantiation per dtype and kind.
    const wbuf = par.alloc(f32, len) orelse return 1;
    defer par.free(wbuf);
    if (a.weight) |wp| {
        switch (a.w_dtype) {
            inline .f32, .f16, .bf16 => |wd| {
                const w: [*]const dt.Storage(wd) = @ptrCast(@alignCast(wp));
                for (wbuf, 0..) |*o, j| o.* = load(wd, 1, w + j)[0];
            },
            else => unreachable,
        }
    } else @memset(wbuf, 1);

    const chunk_rows = paramChunkRows(rows, len);
    const nchunks = if (want) (rows + chunk_rows - 1) / chunk_rows else 0;
    const parts: ?[]align(64) f32 = if (want) (par.alloc(f32, nchunks * 2 * len) orelse return 1) else null;
    defer if (parts) |p| par.free(p);

    const Ctx = struct {
        const Self = @This();
        layout: *const strided.Layout(3),
        dx: [*]S,
        x: [*]const S,
        g: [*]const S,
        w: [*]const f32,
        eps: f64,
        parts: [*]f32,
        chunk_rows: usize,
        rows: usize,
        len: usize,

        /// Rows of one chunk, summing g * xhat and g into that chunk's partials.
        const Acc = struct {
            ctx: *const Self,
            pw: [*]f32,
            pb: [*]f32,
            pub fn row(self: *const Acc, offs: [3]isize, rlen: usize, st: [3]isize) void {
                self.ctx.doRow(true, offs, rlen, st, self.pw, self.pb);
            }
        };

        pub fn row(self: *const Self, offs: [3]isize, rlen: usize, st: [3]isize) void {
            self.doRow(false, offs, rlen, st, undefined, undefined);
        }

        inline fn doRow(self: *const Self, comptime acc: bool, offs: [3]isize, rlen: usize, st: [3]isize, pw: [*]f32, pb: [*]f32) void {
            const o: [*]S = @ptrCast(ptrAt(S, self.dx, offs[0]));
            const x: [*]const S = @ptrCast(ptrAt(S, self.x, offs[1]));
            const g: [*]const S = @ptrCast(ptrAt(S, self.g, offs[2]));
            if (st[0] == 1 and st[1] == 1 and st[2] == 1) {
                normBackRow(n, kind, d, true, acc, o, x, g, rlen, st, self.w, self.eps, pw, pb);
            } else normBackRow(1, kind, d, false, acc, o, x, g, rlen, st, self.w, self.eps, pw, pb);
        }

        fn task(self: *const Self, b: usize, e: usize) void {
            self.layout.forRows(b, e, self);
        }

        fn chunkTask(self: *const Self, b: usize, e: usize) void {
            for (b..e) |c| {
                const pw = self.parts + c * 2 * self.len;
                const pb = pw + self.len;
                @memset(pw[0 .. 2 * self.len], 0);
                const acc: Acc = .{ .ctx = self, .pw = pw, .pb = pb };
                self.layout.forRows(c * self.chunk_rows, @min(self.rows, (c + 1) * self.chunk_rows), &acc);
            }
        }
    };
    const ctx: Ctx = .{
        .layout = &l,
        .dx = @ptrCast(@alignCast(a.dx)),
        .x = @ptrCast(@alignCast(a.x)),
        .g = @ptrCast(@alignCast(a.g)),
        .w = wbuf.ptr,
        .eps = a.eps,
        .parts = if (parts) |p| p.ptr else undefined,
        .chunk_rows = chunk_rows,
        .rows = rows,
        .len = len,
    };
    if (!want) {
        par.run(rows, @max(1, grain_elems / len), &ctx, Ctx.task);
        return 0;
    }
    par.run(nchunks, 1, &ctx, Ctx.chunkTask);

    // Partials in chunk order, in f64, threaded over columns.
    const Sum = struct {
        parts: [*]const f32,
        nchunks: usize,
        len: usize,
        dw: ?[*]f32,
        db: ?[*]f32,
        fn task(self: *const @This(), b: usize, e: usize) void {
            for (b..e) |j| {
                var sw: f64 = 0;
                var sb: f64 = 0;
                for (0..self.nchunks) |c| {
                    sw += self.parts[c * 2 * self.len + j];
                    sb += self.parts[c * 2 * self.len + self.len + j];
                }
                if (self.dw) |p| p[j] = @floatCast(sw);
                if (self.db) |p| p[j] = @floatCast(sb);
            }
        }
    };
    const sum: Sum = .{ .parts = parts.?.ptr, .nchunks = nchunks, .len = len, .dw = a.dweight, .db = a.dbias };
    par.run(len, @max(1, grain_elems / nchunks), &sum, Sum.task);
    return 0;
}

/// One row (contiguous with n lanes, or strided with n = 1): statistics, then s1 = sum(gh) and
/// s2 = sum(gh * xhat) (and the partials), then dx.
fn normBackRow(comptime n: usize, comptime kind: args.NormKind, comptime d: DType, comptime contig: bool, comptime acc: bool, o: [*]dt.Storage(d), x: [*]const dt.Storage(d), g: [*]const dt.Storage(d), len: usize, st: [3]isize, w: [*]const f32, eps: f64, pw: [*]f32, pb: [*]f32) void {
    const V = @Vector(n, f32);
    const V1 = @Vector(1, f32);
    const lf: f64 = @floatFromInt(len);
    // Mean as hi + lo (layer; 0 for rms) and r.
    var hi: f32 = 0;
    var lo: f32 = 0;
    if (kind == .layer) {
        const x0 = ld(d, 1, contig, x, 0, st[1])[0];
        const xv0: V = @splat(x0);
        var sv: V = @splat(0);
        var i: usize = 0;
        while (i + n <= len) : (i += n) sv += ld(d, n, contig, x, i, st[1]) - xv0;
        var s = @reduce(.Add, sv);
        while (i < len) : (i += 1) s += ld(d, 1, contig, x, i, st[1])[0] - x0;
        const mean: f64 = @as(f64, x0) + @as(f64, s) / lf;
        hi = @floatCast(mean);
        lo = @floatCast(mean - hi);
    }
    const hv: V = @splat(hi);
    const lv: V = @splat(lo);
    const hv1: V1 = @splat(hi);
    const lv1: V1 = @splat(lo);
    var r: f32 = undefined;
    {
        var qv: V = @splat(0);
        var i: usize = 0;
        while (i + n <= len) : (i += n) {
            const c = (ld(d, n, contig, x, i, st[1]) - hv) - lv;
            qv += c * c;
        }
        var q = @reduce(.Add, qv);
        while (i < len) : (i += 1) {
            const c = (ld(d, 1, contig, x, i, st[1]) - hv1) - lv1;
            q += c[0] * c[0];
        }
        r = @floatCast(1.0 / @sqrt(@as(f64, q) / lf + eps));
    }
    const rv: V = @splat(r);
    const rv1: V1 = @splat(r);
    // s1 = sum(gh), s2 = sum(gh * xhat); partials of g * xhat and g.
    var s1v: V = @splat(0);
    var s2v: V = @splat(0);
    var i: usize = 0;
    while (i + n <= len) : (i += n) {
        const xh = ((ld(d, n, contig, x, i, st[1]) - hv) - lv) * rv;
        const gv = ld(d, n, contig, g, i, st[2]);
        const gh = gv * @as(V, w[i..][0..n].*);
        s1v += gh;
        s2v += gh * xh;
        if (acc) {
            pw[i..][0..n].* = @as(V, pw[i..][0..n].*) + gv * xh;
            pb[i..][0..n].* = @as(V, pb[i..][0..n].*) + gv;
        }
    }
    var s1 = @reduce(.Add, s1v);
    var s2 = @reduce(.Add, s2v);
    while (i < len) : (i += 1) {
        const xh = ((ld(d, 1, contig, x, i, st[1])[0] - hi) - lo) * r;
        const gv = ld(d, 1, contig, g, i, st[2])[0];
        const gh = gv * w[i];
        s1 += gh;
        s2 += gh * xh;
        if (acc) {
            pw[i] += gv * xh;
            pb[i] += gv;
        }
    }
    const inv_len: f32 = @floatCast(1.0 / lf);
    const m1: f32 = if (kind == .layer) s1 * inv_len else 0;
    const m2: f32 = s2 * inv_len;
    const m1v: V = @splat(m1);
    const m2v: V = @splat(m2);
    i = 0;
    while (i + n <= len) : (i += n) {
        const xh = ((ld(d, n, contig, x, i, st[1]) - hv) - lv) * rv;
        const gh = ld(d, n, contig, g, i, st[2]) * @as(V, w[i..][0..n].*);
        st1(d, n, contig, o, i, st[0], rv * ((gh - m1v) - xh * m2v));
    }
    while (i < len) : (i += 1) {
        const xh = ((ld(d, 1, contig, x, i, st[1]) - hv1) - lv1) * rv1;
        const gh = ld(d, 1, contig, g, i, st[2]) * @as(V1, @splat(w[i]));
        st1(d, 1, contig, o, i, st[0], rv1 * ((gh - @as(V1, @splat(m1))) - xh * @as(V1, @splat(m2))));
    }
}
