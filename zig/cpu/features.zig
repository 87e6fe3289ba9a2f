//! What the processor can do, asked once at load: CPUID/XGETBV on x86-64 (including whether the
//! OS saves the AVX and AVX-512 registers), NEON on aarch64 (always present in ARMv8-A).
//! The SIMD levels match the CPU models build.zig compiles each kernel object for, feature by
//! feature, so a chosen level never executes an instruction the processor lacks.
const std = @import("std");
const builtin = @import("builtin");

pub const Level = enum(u32) {
    scalar = 0,
    sse = 1, // x86-64-v2: SSE4.2, SSSE3, POPCNT, CX16
    avx2 = 2, // x86-64-v3: AVX2, FMA, F16C, BMI1/2, LZCNT, MOVBE
    avx512 = 3, // x86-64-v4: AVX-512 F/BW/CD/DQ/VL
    neon = 4, // aarch64 Advanced SIMD

    pub fn name(self: Level) []const u8 {
        return @tagName(self);
    }

    pub fn parse(s: []const u8) ?Level {
        inline for (comptime std.enums.values(Level)) |l| {
            if (std.ascii.eqlIgnoreCase(s, @tagName(l))) return l;
        }
        if (std.ascii.eqlIgnoreCase(s, "sse4.1") or std.ascii.eqlIgnoreCase(s, "sse4")) return .sse;
        return null;
    }

    /// Can code for `self` run where `best` was detected?
    pub fn runsOn(self: Level, best: Level) bool {
        if (self == .scalar) return true;
        if (best == .neon) return self == .neon;
        if (self == .neon) return false;
        return @intFromEnum(self) <= @intFromEnum(best);
    }
};

pub const Features = packed struct(u32) {
    sse4_2: bool = false,
    avx: bool = false,
    avx2: bool = false,
    fma: bool = false,
    f16c: bool = false,
    avx512f: bool = false,
    avx512bw: bool = false,
    avx512vl: bool = false,
    avx512dq: bool = false,
    avx512cd: bool = false,
    avx512_vnni: bool = false,
    avx512_bf16: bool = false,
    avx_vnni: bool = false,
    neon: bool = false,
    dotprod: bool = false,
    _pad: u17 = 0,
};

pub const Detected = struct { best: Level, features: Features };

pub fn detect() Detected {
    return switch (builtin.cpu.arch) {
        .x86_64 => detectX86(),
        .aarch64 => .{ .best = .neon, .features = .{ .neon = true, .dotprod = builtin.cpu.has(.aarch64, .dotprod) } },
        else => .{ .best = .scalar, .features = .{} },
    };
}

fn cpuid(leaf: u32, sub: u32) [4]u32 {
    var a: u32 = undefined;
    var b: u32 = undefined;
    var c: u32 = undefined;
    var d: u32 = undefined;
    asm volatile ("cpuid"
        : [a] "={eax}" (a),
          [b] "={ebx}" (b),
          [c] "={ecx}" (c),
          [d] "={edx}" (d),
        : [leaf] "{eax}" (leaf),
          [sub] "{ecx}" (sub),
    );
    return .{ a, b, c, d };
}

fn xgetbv() u64 {
    var lo: u32 = undefined;
    var hi: u32 = undefined;
    asm volatile ("xgetbv"
        : [lo] "={eax}" (lo),
          [hi] "={edx}" (hi),
        : [c] "{ecx}" (@as(u32, 0)),
    );
    return (@as(u64, hi) << 32) | lo;
}

fn bit(x: u32, n: u5) bool {
    return (x >> n) & 1 == 1;
}

fn detectX86() Detected {
    if (builtin.cpu.arch != .x86_64) unreachable;
    const max_leaf = cpuid(0, 0)[0];
    const l1 = cpuid(1, 0);
    const l7 = if (max_leaf >= 7) cpuid(7, 0) else [4]u32{ 0, 0, 0, 0 };
    const l7_1 = if (max_leaf >= 7) cpuid(7, 1) else [4]u32{ 0, 0, 0, 0 };
    const ext = cpuid(0x80000001, 0);
    const osxsave = bit(l1[2], 27);
    const xcr0: u64 = if (osxsave) xgetbv() else 0;
    const os_ymm = (xcr0 & 0x6) == 0x6;
    const os_zmm = (xcr0 & 0xE6) == 0xE6;

    var f: Features = .{};
    f.sse4_2 = bit(l1[2], 20);
    f.avx = bit(l1[2], 28) and os_ymm;
    f.fma = bit(l1[2], 12) and os_ymm;
    f.f16c = bit(l1[2], 29) and os_ymm;
    f.avx2 = bit(l7[1], 5) and os_ymm;
    f.avx512f = bit(l7[1], 16) and os_zmm;
    f.avx512dq = bit(l7[1], 17) and os_zmm;
    f.avx512cd = bit(l7[1], 28) and os_zmm;
    f.avx512bw = bit(l7[1], 30) and os_zmm;
    f.avx512vl = bit(l7[1], 31) and os_zmm;
    f.avx512_vnni = bit(l7[2], 11) and os_zmm;
    f.avx512_bf16 = bit(l7_1[0], 5) and os_zmm;
    f.avx_vnni = bit(l7_1[0], 4) and os_ymm;

    const v2 = f.sse4_2 and bit(l1[2], 9) and bit(l1[2], 19) and bit(l1[2], 23) and bit(l1[2], 13) and bit(l1[2], 0) and bit(ext[2], 0);
    const v3 = v2 and f.avx and f.avx2 and f.fma and f.f16c and bit(l7[1], 3) and bit(l7[1], 8) and bit(ext[2], 5) and bit(l1[2], 22) and bit(l1[2], 26);
    const v4 = v3 and f.avx512f and f.avx512bw and f.avx512cd and f.avx512dq and f.avx512vl;
    const best: Level = if (v4) .avx512 else if (v3) .avx2 else if (v2) .sse else .scalar;
    return .{ .best = best, .features = f };
}

test "detect gives a level this build can run" {
    const d = detect();
    try std.testing.expect(Level.scalar.runsOn(d.best));
    try std.testing.expect(d.best.runsOn(d.best));
    try std.testing.expectEqual(Level.avx2, Level.parse("AVX2").?);
    try std.testing.expect(!Level.avx512.runsOn(.avx2));
    try std.testing.expect(!Level.neon.runsOn(.avx512));
}
