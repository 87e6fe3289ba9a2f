//! The kernel table: the only contract between zig/root.zig and the per-ISA kernel objects.
//! Both sides compile this file, so the layout is extern and the functions use the C convention.
const dt = @import("dtype.zig");
const copy = @import("copy.zig");
const random = @import("random.zig");
const args = @import("args.zig");
const Parallel = @import("parallel.zig").Parallel;
const DType = dt.DType;

pub const Table = extern struct {
    level: [*:0]const u8,
    vector_bits: u32,
    copy: *const fn (args: *copy.CopyArgs) callconv(.c) void,
    fill: *const fn (out: [*]u8, dtype: DType, n: usize, value: f64) callconv(.c) void,
    range: *const fn (out: [*]u8, dtype: DType, n: usize, start: f64, step: f64, has_last: bool, last: f64) callconv(.c) void,
    eye: *const fn (out: [*]u8, dtype: DType, rows: usize, cols: usize, k: isize) callconv(.c) void,
    random: *const fn (out: [*]u8, dtype: DType, n: usize, dist: random.Dist, seed: u64, offset: u64, a: f64, b: f64) callconv(.c) void,
    binary: *const fn (par: *const Parallel, a: *const args.BinaryArgs) callconv(.c) void,
    unary: *const fn (par: *const Parallel, a: *const args.UnaryArgs) callconv(.c) void,
    where: *const fn (par: *const Parallel, a: *const args.WhereArgs) callconv(.c) void,
    reduce: *const fn (par: *const Parallel, a: *const args.ReduceArgs) callconv(.c) void,
    cumsum: *const fn (par: *const Parallel, a: *const args.ScanArgs) callconv(.c) void,
    softmax: *const fn (par: *const Parallel, a: *const args.SoftmaxArgs) callconv(.c) void,
    norm: *const fn (par: *const Parallel, a: *const args.NormArgs) callconv(.c) void,
    /// Returns 0, or 1 when scratch memory was refused.
    gemm: *const fn (par: *const Parallel, a: *const args.GemmArgs) callconv(.c) u32,
    /// Returns a linalg.Fail code (0 = ok); failure details in the args' fail_item / fail_at.
    linalg: *const fn (par: *const Parallel, a: *args.LinalgArgs) callconv(.c) u32,
    /// ggml TQ2_0/TQ1_0 blocks: returns 0, or 1 when a packed value is not in {-1, 0, 1}.
    ternary_pack: *const fn (par: *const Parallel, a: *args.TernaryPackArgs) callconv(.c) u32,
    /// Ternary matmul (int8 activations, packed weights): returns 0, or 1 when scratch was refused.
    ternary_matmul: *const fn (par: *const Parallel, a: *const args.TernaryMatmulArgs) callconv(.c) u32,
    softmax_backward: *const fn (par: *const Parallel, a: *const args.SoftmaxBackwardArgs) callconv(.c) void,
    /// Returns 0, or 1 when scratch memory was refused.
    norm_backward: *const fn (par: *const Parallel, a: *const args.NormBackwardArgs) callconv(.c) u32,
    /// take / indexAdd: return 0, 1 when an index is out of range (fail_at, fail_value set), or 2
    /// when scratch memory was refused; nothing is written unless 0.
    take: *const fn (par: *const Parallel, a: *args.GatherArgs) callconv(.c) u32,
    index_add: *const fn (par: *const Parallel, a: *args.GatherArgs) callconv(.c) u32,
    /// SGD / AdamW step in place.
    optim: *const fn (par: *const Parallel, a: *const args.OptimArgs) callconv(.c) void,
};
