//! The root of one ISA level's kernel object. build.zig compiles this file once per level
//! (scalar, sse, avx2, avx512 on x86-64; scalar, neon on aarch64), each with its own CPU model and
//! `build_options.vector_bits`, and links all of them into libbitnet. Each object exports one
//! symbol, `bn_kernels_<level>`, returning its table; zig/root.zig picks a table at load time.
//! Kernels are written once in the files imported here: generic over dtype (comptime) and over
//! vector width (`vector_bits`), never copied per ISA.
const std = @import("std");
const build_options = @import("build_options");
const dt = @import("dtype.zig");
const copy_mod = @import("copy.zig");
const fill_mod = @import("fill.zig");
const random = @import("random.zig");
const args = @import("args.zig");
const elementwise = @import("elementwise.zig");
const reduce_mod = @import("reduce.zig");
const norm_mod = @import("norm.zig");
const gemm_mod = @import("gemm.zig");
const linalg_mod = @import("linalg.zig");
const ternary_pack_mod = @import("ternary_pack.zig");
const ternary_matmul_mod = @import("ternary_matmul.zig");
const grad_mod = @import("grad.zig");
const gather_mod = @import("gather.zig");
const optim_mod = @import("optim.zig");
const Parallel = @import("parallel.zig").Parallel;
const DType = dt.DType;

pub const level: []const u8 = build_options.level;
pub const vector_bits: u32 = build_options.vector_bits;

pub const Table = @import("table.zig").Table;

fn copyK(a: *copy_mod.CopyArgs) callconv(.c) void {
    copy_mod.copy(a);
}

fn fillK(out: [*]u8, dtype: DType, n: usize, value: f64) callconv(.c) void {
    switch (dtype) {
        inline else => |d| fill_mod.fill(d, @ptrCast(@alignCast(out)), n, value),
    }
}

fn rangeK(out: [*]u8, dtype: DType, n: usize, start: f64, step: f64, has_last: bool, last: f64) callconv(.c) void {
    switch (dtype) {
        inline else => |d| fill_mod.range(d, @ptrCast(@alignCast(out)), n, start, step, if (has_last) last else null),
    }
}

fn eyeK(out: [*]u8, dtype: DType, rows: usize, cols: usize, k: isize) callconv(.c) void {
    switch (dtype) {
        inline else => |d| fill_mod.eye(d, @ptrCast(@alignCast(out)), rows, cols, k),
    }
}

fn randomK(out: [*]u8, dtype: DType, n: usize, dist: random.Dist, seed: u64, offset: u64, a: f64, b: f64) callconv(.c) void {
    switch (dtype) {
        inline .f32, .f16, .bf16, .f64 => |d| random.fillRandom(d, @ptrCast(@alignCast(out)), n, dist, seed, offset, a, b),
        else => {},
    }
}

fn binaryK(par: *const Parallel, a: *const args.BinaryArgs) callconv(.c) void {
    elementwise.binary(vector_bits, par, a);
}

fn unaryK(par: *const Parallel, a: *const args.UnaryArgs) callconv(.c) void {
    elementwise.unary(vector_bits, par, a);
}

fn whereK(par: *const Parallel, a: *const args.WhereArgs) callconv(.c) void {
    elementwise.where(vector_bits, par, a);
}

fn reduceK(par: *const Parallel, a: *const args.ReduceArgs) callconv(.c) void {
    reduce_mod.reduce(vector_bits, par, a);
}

fn cumsumK(par: *const Parallel, a: *const args.ScanArgs) callconv(.c) void {
    reduce_mod.cumsum(vector_bits, par, a);
}

fn softmaxK(par: *const Parallel, a: *const args.SoftmaxArgs) callconv(.c) void {
    norm_mod.softmax(vector_bits, par, a);
}

fn normK(par: *const Parallel, a: *const args.NormArgs) callconv(.c) void {
    norm_mod.norm(vector_bits, par, a);
}

fn gemmK(par: *const Parallel, a: *const args.GemmArgs) callconv(.c) u32 {
    return gemm_mod.gemmBatched(vector_bits, par, a);
}

fn linalgK(par: *const Parallel, a: *args.LinalgArgs) callconv(.c) u32 {
    return linalg_mod.linalg(vector_bits, par, a);
}

fn ternaryPackK(par: *const Parallel, a: *args.TernaryPackArgs) callconv(.c) u32 {
    return ternary_pack_mod.ternaryPack(vector_bits, par, a);
}

fn ternaryMatmulK(par: *const Parallel, a: *const args.TernaryMatmulArgs) callconv(.c) u32 {
    return ternary_matmul_mod.ternaryMatmul(vector_bits, par, a);
}

fn softmaxBackwardK(par: *const Parallel, a: *const args.SoftmaxBackwardArgs) callconv(.c) void {
    grad_mod.softmaxBackward(vector_bits, par, a);
}

fn normBackwardK(par: *const Parallel, a: *const args.NormBackwardArgs) callconv(.c) u32 {
    return grad_mod.normBackward(vector_bits, par, a);
}

fn takeK(par: *const Parallel, a: *args.GatherArgs) callconv(.c) u32 {
    return gather_mod.take(par, a);
}

fn indexAddK(par: *const Parallel, a: *args.GatherArgs) callconv(.c) u32 {
    return gather_mod.indexAdd(vector_bits, par, a);
}

fn optimK(par: *const Parallel, a: *const args.OptimArgs) callconv(.c) void {
    optim_mod.optim(vector_bits, par, a);
}

const table: Table = .{
    .level = std.fmt.comptimePrint("{s}", .{level}),
    .vector_bits = vector_bits,
    .copy = copyK,
    .fill = fillK,
    .range = rangeK,
    .eye = eyeK,
    .random = randomK,
    .binary = binaryK,
    .unary = unaryK,
    .where = whereK,
    .reduce = reduceK,
    .cumsum = cumsumK,
    .softmax = softmaxK,
    .norm = normK,
    .gemm = gemmK,
    .linalg = linalgK,
    .ternary_pack = ternaryPackK,
    .ternary_matmul = ternaryMatmulK,
    .softmax_backward = softmaxBackwardK,
    .norm_backward = normBackwardK,
    .take = takeK,
    .index_add = indexAddK,
    .optim = optimK,
};

fn getTable() callconv(.c) *const Table {
    return &table;
}

comptime {
    @export(&getTable, .{ .name = "bn_kernels_" ++ level });
}

test {
    _ = dt;
    _ = copy_mod;
    _ = fill_mod;
    _ = random;
    _ = @import("strided.zig");
    _ = @import("parallel.zig");
    _ = elementwise;
    _ = reduce_mod;
    _ = norm_mod;
    _ = gemm_mod;
    _ = linalg_mod;
    _ = ternary_pack_mod;
    _ = ternary_matmul_mod;
    _ = @import("ternary_matmul_test.zig");
    _ = @import("grad_test.zig");
    _ = @import("gather_test.zig");
    _ = @import("optim_test.zig");
}
