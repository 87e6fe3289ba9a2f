"""PyTorch peer for bench/gpu.ts: median seconds of host->device and device->host copies.

Usage: python3 bench/peers/torch_gpu.py '<json list of byte sizes>'
Prints {"torch": version, "device": name, "h2d_<n>": s, "d2h_<n>": s, "rt_<n>": s, and for
sizes of 64 MiB or more "add_<n>": s (f32 a + b), "copy_<n>": s (clone), "softmax_8192": s,
"gemm_<dtype>_<n>": s (n³ products, f32 in full f32 as PyTorch's default, bf16 on the tensor
cores), "gemv_f16_<batch>": s (x[batch, 8192] @ W[8192, 8192]ᵀ in f16, F.linear)} or
{"error": ...}. Copies are from/to pageable host memory (what x.to("cuda") / x.cpu() do),
synchronised. Short kernels (GEMV) are timed as 100 back-to-back calls and one synchronisation,
divided by 100, exactly as bench/gpu.ts times ours.
"""
import json
import sys
import time

try:
    import torch
except ImportError as e:
    print(json.dumps({"error": f"torch is not installed ({e})"}))
    sys.exit(0)
if not torch.cuda.is_available():
    print(json.dumps({"error": "torch sees no CUDA device"}))
    sys.exit(0)


def per_call(f, calls=100, reps=20):
    for _ in range(calls):
        f()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(calls):
            f()
        torch.cuda.synchronize()
        ts.append((time.perf_counter() - t0) / calls)
    ts.sort()
    return ts[len(ts) // 2]


def median(f, reps):
    for _ in range(3):
        f()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2]


out = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0)}
for n in json.loads(sys.argv[1]):
    reps = 50 if n <= (1 << 20) else 10
    x = torch.ones(n // 4, dtype=torch.float32)
    g = x.to("cuda")
    out[f"h2d_{n}"] = median(lambda: x.to("cuda"), reps)
    out[f"d2h_{n}"] = median(lambda: g.cpu(), reps)
    out[f"rt_{n}"] = median(lambda: x.to("cuda").cpu(), reps)
    if n >= (64 << 20):
        h = g.clone()
        out[f"add_{n}"] = median(lambda: g + h, reps)
        out[f"copy_{n}"] = median(lambda: g.clone(), reps)
sx = torch.randn(8192, 8192, device="cuda")
out["softmax_8192"] = median(lambda: torch.softmax(sx, dim=-1), 20)
del sx
torch.backends.cuda.matmul.allow_tf32 = False  # the default, stated: f32 GEMM in full f32
for dt_name, dt in (("f32", torch.float32), ("bf16", torch.bfloat16)):
    for n in (4096, 8192):
        a = torch.randn(n, n, device="cuda").to(dt)
        b = torch.randn(n, n, device="cuda").to(dt)
        out[f"gemm_{dt_name}_{n}"] = median(lambda: a @ b, 10)
        del a, b
w = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
for batch in (1, 16):
    x = torch.randn(batch, 8192, device="cuda", dtype=torch.float16)
    out[f"gemv_f16_{batch}"] = per_call(lambda: torch.nn.functional.linear(x, w))
print(json.dumps(out))
