//! take (gather along an axis) and indexAdd (scatter-add along an axis), args.GatherArgs: the
//! kernels of an Embedding layer (rows of a [vocab, dim] table by token ids) and its gradient.
//! Tests: gather_test.zig.
//!
//! Both see a contiguous tensor as [outer, axis_len, inner] and read `nidx` contiguous indices of
//! any integer dtype. A first pass checks every index (negative counts from the end) and writes
//! the normalised ones to scratch; nothing is written when one is out of range (the kernel reports
//! the first). Then:
//! - take copies rows of `inner` elements (bytes: any dtype) to out [outer, nidx, inner], threads
//!   split over output rows;
//! - indexAdd adds source rows into target rows in increasing j (repeated indices accumulate),
//!   in f32, rounding to the target dtype after each add. Threads split over `outer` and over
//!   blocks of columns, never over j, so no two threads touch one element and every element sums
//!   its terms in the same order whatever the thread count.
const std = @import("std");
const dt = @import("dtype.zig");
const args = @import("args.zig");
const ew = @import("elementwise.zig");
const Parallel = @import("parallel.zig").Parallel;
const DType = dt.DType;
const lanes = ew.lanes;
const load = ew.load;
const store = ew.store;

/// Elements per job chunk handed to a thread.
pub const grain_elems = 16 * 1024;

/// Kernel results (GatherArgs).
pub const ok: u32 = 0;
pub const bad_index: u32 = 1;
pub const no_memory: u32 = 2;

/// Checks the indices; on success fills `out` with them normalised to [0, axis_len).
fn normalise(a: *args.GatherArgs, out: []usize) bool {
    switch (a.idx_dtype) {
        inline .i8, .i16, .i32, .u8, .u16, .u32 => |id| {
            const idx: [*]const dt.Storage(id) = @ptrCast(@alignCast(a.idx));
            const len: i64 = @intCast(a.axis_len);
            for (out, 0..) |*o, j| {
                const v: i64 = idx[j];
                const k = if (v < 0) v + len else v;
                if (k < 0 or k >= len) {
                    a.fail_at = j;
                    a.fail_value = v;
                    return false;
                }
                o.* = @intCast(k);
            }
            return true;
        },
        else => unreachable, // the door refuses other index dtypes
    }
}

/// The normalised indices in scratch (release with par.free), or a kernel result code.
fn indices(par: *const Parallel, a: *args.GatherArgs) union(enum) { idx: []align(64) usize, code: u32 } {
    const buf = par.alloc(usize, a.nidx) orelse return .{ .code = no_memory };
    if (!normalise(a, buf)) {
        par.free(buf);
        return .{ .code = bad_index };
    }
    return .{ .idx = buf };
}

pub fn take(par: *const Parallel, a: *args.GatherArgs) u32 {
    if (a.nidx == 0) return ok;
    const idx = switch (indices(par, a)) {
        .idx => |v| v,
        .code => |c| return c,
    };
    defer par.free(idx);
    if (a.outer == 0 or a.inner == 0) return ok;
    switch (a.dtype.size()) {
        1 => takeTyped(u8, par, a, idx.ptr),
        2 => takeTyped(u16, par, a, idx.ptr),
        4 => takeTyped(u32, par, a, idx.ptr),
        8 => takeTyped(u64, par, a, idx.ptr),
        else => unreachable,
    }
    return ok;
}

fn takeTyped(comptime E: type, par: *const Parallel, a: *const args.GatherArgs, idx: [*]const usize) void {
    const Ctx = struct {
        out: [*]E,
        x: [*]const E,
        idx: [*]const usize,
        nidx: usize,
        axis_len: usize,
        inner: usize,

        fn task(self: *const @This(), b: usize, e: usize) void {
            const in = self.inner;
            var o = b / self.nidx;
            var j = b % self.nidx;
            for (b..e) |it| {
                const src = (o * self.axis_len + self.idx[j]) * in;
                if (in == 1) self.out[it] = self.x[src] else @memcpy(self.out[it * in ..][0..in], self.x[src..][0..in]);
                j += 1;
                if (j == self.nidx) {
                    j = 0;
                    o += 1;
                }
            }
        }
    };
    const ctx: Ctx = .{ .out = @ptrCast(@alignCast(a.out)), .x = @ptrCast(@alignCast(a.x)), .idx = idx, .nidx = a.nidx, .axis_len = a.axis_len, .inner = a.inner };
    par.run(a.outer * a.nidx, @max(1, grain_elems / a.inner), &ctx, Ctx.task);
}

pub fn indexAdd(comptime vbits: u32, par: *const Parallel, a: *args.GatherArgs) u32 {
    if (a.nidx == 0) return ok;
    const idx = switch (indices(par, a)) {
        .idx => |v| v,
        .code => |c| return c,
    };
    defer par.free(idx);
    if (a.outer == 0 or a.inner == 0) return ok;
    switch (a.dtype) {
        inline .f32, .f16, .bf16 => |d| switch (a.src_dtype) {
            inline .f32, .f16, .bf16 => |sd| indexAddTyped(vbits, d, sd, par, a, idx.ptr),
            else => unreachable,
        },
        else => unreachable, // the door refuses non-float targets
    }
    return ok;
}

/// Columns a job item of indexAdd covers: about grain_elems additions, whole vectors.
pub fn columnBlock(inner: usize, nidx: usize) usize {
    const want = (grain_elems / @max(nidx, 1) + 63) / 64 * 64;
    return @min(inner, @max(64, want));
}

fn indexAddTyped(comptime vbits: u32, comptime d: DType, comptime sd: DType, par: *const Parallel, a: *const args.GatherArgs, idx: [*]const usize) void {
    const T = dt.Storage(d);
    const S = dt.Storage(sd);
    const n = comptime lanes(vbits, f32);
    const Ctx = struct {
        t: [*]T,
        s: [*]const S,
        idx: [*]const usize,
        nidx: usize,
        axis_len: usize,
        inner: usize,
        blk: usize,
        nblk: usize,

        fn task(self: *const @This(), b: usize, e: usize) void {
            for (b..e) |item| {
                const o = item / self.nblk;
                const c0 = (item % self.nblk) * self.blk;
                const len = @min(self.blk, self.inner - c0);
                for (0..self.nidx) |j| {
                    const t = self.t + (o * self.axis_len + self.idx[j]) * self.inner + c0;
                    const s = self.s + (o * self.nidx + j) * self.inner + c0;
                    var i: usize = 0;
                    while (i + n <= len) : (i += n) store(d, n, t + i, load(d, n, t + i) + load(sd, n, s + i));
                    while (i < len) : (i += 1) store(d, 1, t + i, load(d, 1, t + i) + load(sd, 1, s + i));
                }
            }
        }
    };
    const blk = columnBlock(a.inner, a.nidx);
    const ctx: Ctx = .{
        .t = @ptrCast(@alignCast(a.out)),
        .s = @ptrCast(@alignCast(a.x)),
        .idx = idx,
        .nidx = a.nidx,
        .axis_len = a.axis_len,
        .inner = a.inner,
        .blk = blk,
        .nblk = (a.inner + blk - 1) / blk,
    };
    par.run(a.outer * ctx.nblk, @max(1, grain_elems / (blk * a.nidx)), &ctx, Ctx.task);
}
