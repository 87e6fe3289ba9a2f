//! Build for the bitnet-bun engine (libbitnet).
//!
//!   zig build                      host library into zig-out/lib (-Doptimize=fast unless told otherwise)
//!   zig build test                 Zig unit tests (host; every SIMD level this CPU can run)
//!   zig build prebuilt -p .        cross-compile the four shipped libraries into ./prebuilds/<platform>-<arch>/
//!                                  (and the Metal shim, libbitnet_metal.dylib, beside the two macOS ones)
//!   zig build metal-shim -p DIR    the Metal shim alone, for both macOS architectures
//!
//! Kernels are written once (zig/cpu/*.zig) and compiled once per ISA level as separate objects,
//! each with its own CPU model; zig/root.zig picks one table at load time (see zig/cpu/kernels.zig).
const std = @import("std");

/// One ISA level: a name, the CPU model it is compiled for, and the vector width its kernels use.
const Level = struct {
    name: []const u8,
    model: *const std.Target.Cpu.Model,
    vector_bits: u32,
};

const x86_levels = [_]Level{
    .{ .name = "scalar", .model = &std.Target.x86.cpu.x86_64, .vector_bits = 0 },
    .{ .name = "sse", .model = &std.Target.x86.cpu.x86_64_v2, .vector_bits = 128 },
    .{ .name = "avx2", .model = &std.Target.x86.cpu.x86_64_v3, .vector_bits = 256 },
    .{ .name = "avx512", .model = &std.Target.x86.cpu.x86_64_v4, .vector_bits = 512 },
};
const arm_levels = [_]Level{
    .{ .name = "scalar", .model = &std.Target.aarch64.cpu.generic, .vector_bits = 0 },
    .{ .name = "neon", .model = &std.Target.aarch64.cpu.generic, .vector_bits = 128 },
};

fn levelsFor(arch: std.Target.Cpu.Arch) []const Level {
    return switch (arch) {
        .x86_64 => &x86_levels,
        .aarch64 => &arm_levels,
        else => &.{x86_levels[0]},
    };
}

/// Can the build host run code compiled for this level? (Decides which level tests are run.)
fn hostRuns(b: *std.Build, level: Level) bool {
    const host = b.graph.host.result;
    if (level.vector_bits == 0) return true;
    if (host.cpu.arch != .x86_64) return true;
    const F = std.Target.x86.Feature;
    const need: []const F = if (std.mem.eql(u8, level.name, "sse"))
        &.{ .sse4_2, .popcnt }
    else if (std.mem.eql(u8, level.name, "avx2"))
        &.{ .avx2, .fma, .bmi2, .f16c }
    else
        &.{ .avx512f, .avx512bw, .avx512dq, .avx512vl };
    for (need) |f| if (!host.cpu.has(.x86, f)) return false;
    return true;
}

fn kernelModule(b: *std.Build, target: std.Build.ResolvedTarget, optimize: std.builtin.Optimize, level: Level) *std.Build.Module {
    var query = target.query;
    query.cpu_model = .{ .explicit = level.model };
    query.cpu_features_add = .empty;
    query.cpu_features_sub = .empty;
    const opts = b.addOptions();
    opts.addOption([]const u8, "level", level.name);
    opts.addOption(u32, "vector_bits", level.vector_bits);
    const m = b.createModule(.{
        .root_source_file = b.path("zig/cpu/kernels.zig"),
        .target = b.resolveTargetQuery(query),
        .optimize = optimize,
        .link_libc = true,
        .pic = true,
    });
    m.addOptions("build_options", opts);
    return m;
}

fn engineModule(b: *std.Build, target: std.Build.ResolvedTarget, optimize: std.builtin.Optimize) *std.Build.Module {
    const levels = levelsFor(target.result.cpu.arch);
    const names = b.allocator.alloc([]const u8, levels.len) catch @panic("OOM");
    for (levels, names) |l, *n| n.* = l.name;
    const opts = b.addOptions();
    opts.addOption([]const []const u8, "levels", names);
    const m = b.createModule(.{
        .root_source_file = b.path("zig/root.zig"),
        .target = target,
        .optimize = optimize,
        .link_libc = true,
        .pic = true,
    });
    m.addOptions("build_options", opts);
    // The Metal kernels' source, embedded for the shim to compile at run time (zig/gpu/metal.zig):
    // a module beside a copy of metal/kernels.metal (@embedFile reads only inside a module).
    const wf = b.addWriteFiles();
    _ = wf.addCopyFile(b.path("metal/kernels.metal"), "kernels.metal");
    const src = wf.add("metal_kernels.zig", "pub const source = @embedFile(\"kernels.metal\");\n");
    m.addAnonymousImport("metal_kernels", .{ .root_source_file = src });
    for (levels) |level| {
        const obj = b.addObject(.{
            .name = b.fmt("kernels_{s}", .{level.name}),
            .root_module = kernelModule(b, target, optimize, level),
            // Kernels use inline assembly (vpdpbusd, sdot, ...) that only the LLVM backend takes.
            .use_llvm = true,
        });
        m.addObject(obj);
    }
    return m;
}

fn engineLibrary(b: *std.Build, target: std.Build.ResolvedTarget, optimize: std.builtin.Optimize) *std.Build.Step.Compile {
    return b.addLibrary(.{
        .name = "bitnet",
        .linkage = .dynamic,
        .root_module = engineModule(b, target, optimize),
    });
}

/// The Metal shim (metal/shim.m, C ABI in metal/bn_metal.h): Objective-C through the runtime
/// alone (frameworks opened with dlopen), so it cross-compiles from any host to a Mach-O dylib. It
/// runs only on macOS, beside the engine (zig/gpu/metal.zig opens it).
fn metalShim(b: *std.Build, target: std.Build.ResolvedTarget, optimize: std.builtin.Optimize) *std.Build.Step.Compile {
    const mod = b.createModule(.{ .target = target, .optimize = optimize, .link_libc = true });
    mod.addCSourceFile(.{ .file = b.path("metal/shim.m"), .flags = &.{ "-fno-objc-arc", "-Wall", "-Wextra", "-Werror" } });
    return b.addLibrary(.{ .name = "bitnet_metal", .linkage = .dynamic, .root_module = mod });
}

/// The CPU emulator of the Metal shim (metal/emu.cpp, the C ABI of metal/bn_metal.h): the kernels of
/// metal/kernels.metal compiled as C++ (metal/emu.h) and run on fibers, so that the Metal path runs
/// where there is no Metal (BITNET_METAL_SHIM=zig-out/lib/libbitnet_metal_emu.so). C++ semantics
/// as near the GPU's as they go: wrapping signed integers, no type-based aliasing (buffers are bytes
/// cast to any type), no contraction into fma, half rounded after every operation. `source`: another
/// file of kernels compiled in instead of kernels.metal (an absolute path; its self-test,
/// test/metal_emu/); the C compile's dependency file tracks it, as any included file.
fn metalEmu(b: *std.Build, target: std.Build.ResolvedTarget, optimize: std.builtin.Optimize, source: ?[]const u8) *std.Build.Step.Compile {
    const mod = b.createModule(.{ .target = target, .optimize = optimize, .link_libc = true, .pic = true });
    mod.addIncludePath(b.path("metal"));
    if (source) |s| mod.addCMacro("BN_EMU_SOURCE", b.fmt("\"{s}\"", .{s}));
    mod.addCSourceFile(.{ .file = b.path("metal/emu.cpp"), .flags = &.{
        "-std=c++20",                      "-fsigned-char",                  "-O2",                   "-Wall", "-Wextra",
        "-Wno-unknown-attributes",         "-Wno-unused-parameter",          "-Wno-duplicate-decl-specifier",
        "-fvisibility=hidden",             "-fwrapv",                        "-fno-strict-aliasing",  "-ffp-contract=off",
        "-fno-math-errno",                 "-fno-exceptions",                "-fno-rtti",             "-Xclang", "-ffloat16-excess-precision=none",
    } });
    return b.addLibrary(.{ .name = "bitnet_metal_emu", .linkage = .dynamic, .root_module = mod });
}

/// A test run that is never answered from the cache, so every invocation reports its counts.
fn alwaysRun(b: *std.Build, t: *std.Build.Step.Compile) *std.Build.Step.Run {
    const run = b.addRunArtifact(t);
    run.has_side_effects = true;
    return run;
}

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.option(std.builtin.Optimize, "optimize", "Optimization mode (default fast)") orelse .fast;

    b.installArtifact(engineLibrary(b, target, optimize));
    if (target.result.os.tag == .macos) b.installArtifact(metalShim(b, target, optimize));

    // --- prebuilt libraries shipped in the npm package -------------------------------------------
    const prebuilt = b.step("prebuilt", "Cross-compile the shipped libraries into <prefix>/prebuilds/<platform>-<arch>/");
    const platforms = [_]struct { dir: []const u8, query: std.Target.Query }{
        .{ .dir = "linux-x64", .query = .{ .cpu_arch = .x86_64, .os_tag = .linux, .abi = .gnu, .glibc_version = .{ .major = 2, .minor = 28, .patch = 0 } } },
        .{ .dir = "linux-arm64", .query = .{ .cpu_arch = .aarch64, .os_tag = .linux, .abi = .gnu, .glibc_version = .{ .major = 2, .minor = 28, .patch = 0 } } },
        .{ .dir = "darwin-x64", .query = .{ .cpu_arch = .x86_64, .os_tag = .macos, .os_version_min = .{ .semver = .{ .major = 11, .minor = 0, .patch = 0 } } } },
        .{ .dir = "darwin-arm64", .query = .{ .cpu_arch = .aarch64, .os_tag = .macos, .os_version_min = .{ .semver = .{ .major = 11, .minor = 0, .patch = 0 } } } },
    };
    for (platforms) |p| {
        const lib = engineLibrary(b, b.resolveTargetQuery(p.query), optimize);
        lib.root_module.strip = true;
        const install = b.addInstallArtifact(lib, .{
            .dest_dir = .{ .override = .{ .custom = b.fmt("prebuilds/{s}", .{p.dir}) } },
            .dylib_symlinks = false,
        });
        prebuilt.dependOn(&install.step);
        if (p.query.os_tag == .macos) {
            const shim = metalShim(b, b.resolveTargetQuery(p.query), optimize);
            shim.root_module.strip = true;
            prebuilt.dependOn(&b.addInstallArtifact(shim, .{
                .dest_dir = .{ .override = .{ .custom = b.fmt("prebuilds/{s}", .{p.dir}) } },
                .dylib_symlinks = false,
            }).step);
        }
    }

    // `zig build metal-shim`: the shim alone for both macOS architectures (a build check here).
    const shim_step = b.step("metal-shim", "Cross-compile the Metal shim into <prefix>/metal/<platform>-<arch>/");
    for (platforms) |p| {
        if (p.query.os_tag != .macos) continue;
        shim_step.dependOn(&b.addInstallArtifact(metalShim(b, b.resolveTargetQuery(p.query), optimize), .{
            .dest_dir = .{ .override = .{ .custom = b.fmt("metal/{s}", .{p.dir}) } },
            .dylib_symlinks = false,
        }).step);
    }

    // `zig build metal-emu`: the CPU emulator of the Metal shim for this host, into <prefix>/lib/
    // (not part of the default install). -Dmetal-emu-source: its kernels from another file (absolute
    // or relative to the build root) instead of metal/kernels.metal, as test/metal_emu.test.ts does.
    const emu_step = b.step("metal-emu", "The CPU emulator of the Metal shim (host) into <prefix>/lib/");
    const emu_source = b.option([]const u8, "metal-emu-source", "The kernels the metal-emu step compiles in (default metal/kernels.metal)");
    const emu_root = b.root.toString(b.allocator) catch @panic("OOM");
    const emu_lib = metalEmu(b, b.graph.host, optimize, if (emu_source) |s| b.pathResolve(&.{ emu_root, s }) else null);
    emu_step.dependOn(&b.addInstallArtifact(emu_lib, .{ .dylib_symlinks = false }).step);

    // --- tests ---------------------------------------------------------------------------------
    // `zig build test`: the engine (root, pool, threads, ...) and the kernels once per ISA level in
    // Debug (safety checks on), plus the pool, thread pool and OS layer, and the kernels of the best
    // level, again in ReleaseSafe (optimised, checks still on). -Dtest-optimize changes the first set.
    const test_optimize = b.option(std.builtin.Optimize, "test-optimize", "Optimization mode of the Zig tests (default debug)") orelse .debug;
    const test_step = b.step("test", "Run the Zig unit tests");
    const engine_tests = b.addTest(.{ .name = "engine", .root_module = engineModule(b, target, test_optimize) });
    test_step.dependOn(&alwaysRun(b, engine_tests).step);
    const core_tests = b.addTest(.{ .name = "core-safe", .root_module = b.createModule(.{
        .root_source_file = b.path("zig/core_tests.zig"),
        .target = target,
        .optimize = .safe,
        .link_libc = true,
    }) });
    test_step.dependOn(&alwaysRun(b, core_tests).step);
    // Kernel tests, once per ISA level: run those the host can execute (or all of them under an
    // emulator when cross-testing with -fqemu).
    var best: ?Level = null;
    for (levelsFor(target.result.cpu.arch)) |level| {
        if (target.query.isNative() and !hostRuns(b, level)) continue;
        const kt = b.addTest(.{ .name = b.fmt("kernels-{s}", .{level.name}), .root_module = kernelModule(b, target, test_optimize, level), .use_llvm = true });
        test_step.dependOn(&alwaysRun(b, kt).step);
        best = level;
    }
    // The kernels of the best level again in ReleaseSafe: optimised code with bounds and overflow
    // checks still on (what the optimiser does with an out-of-bounds read shows there first).
    if (best) |level| if (test_optimize != .safe) {
        const kt = b.addTest(.{ .name = b.fmt("kernels-{s}-safe", .{level.name}), .root_module = kernelModule(b, target, .safe, level), .use_llvm = true });
        test_step.dependOn(&alwaysRun(b, kt).step);
    };
}
