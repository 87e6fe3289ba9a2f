//! Reductions (sum, mean, prod, min, max, argmin, argmax, variance, std, logsumexp) and cumsum.
//! (Being written: see args.ReduceArgs / args.ScanArgs for the contract.)
const std = @import("std");
const args = @import("args.zig");
const Parallel = @import("parallel.zig").Parallel;

pub fn reduce(comptime vbits: u32, par: *const Parallel, a: *const args.ReduceArgs) void {
    _ = vbits;
    _ = par;
    _ = a;
    @panic("reduce: not implemented yet");
}

pub fn cumsum(comptime vbits: u32, par: *const Parallel, a: *const args.ScanArgs) void {
    _ = vbits;
    _ = par;
    _ = a;
    @panic("cumsum: not implemented yet");
}
