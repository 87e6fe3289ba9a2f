"""PyTorch peer for bench/metal.ts (Apple's MPS backend, on the same Mac in the same run).

Usage: python3 bench/peers/torch_mps.py '<json list of byte sizes>' '<json list of n>'
Prints {"torch": version, "h2d_<bytes>": s, "d2h_<bytes>": s, "gemm_<dtype>_<n>": s, "add": s, "sum": s,
"softmax": s, "rmsnorm": s, "gemv": s} (median seconds, synchronised; products n x n x n in f32 and
f16; the kernels' shapes as bench/metal.ts, gemv an f16 4096 x 4096 layer for one token) or
{"error": ...}.
"""
import json
import sys
import time

try:
    import torch
except ImportError as e:
    print(json.dumps({"error": f"torch is not installed ({e})"}))
    sys.exit(0)
if not torch.backends.mps.is_available():
    print(json.dumps({"error": "torch sees no MPS device"}))
    sys.exit(0)


def median(f, reps=10, warm=3):
    for _ in range(warm):
        f()
    torch.mps.synchronize()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        torch.mps.synchronize()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2]


sizes = json.loads(sys.argv[1])
ns = json.loads(sys.argv[2])
out = {"torch": torch.__version__}
for b in sizes:
    x = torch.randn(b // 4)
    g = x.to("mps")
    out[f"h2d_{b}"] = median(lambda: x.to("mps"))
    out[f"d2h_{b}"] = median(lambda: g.cpu())
for n in ns:
    for name, dt in (("f32", torch.float32), ("f16", torch.float16)):
        a = torch.randn(n, n, device="mps", dtype=dt)
        b = torch.randn(n, n, device="mps", dtype=dt)
        out[f"gemm_{name}_{n}"] = median(lambda: a @ b)
a = torch.randn(16 << 20, device="mps")
b = torch.randn(16 << 20, device="mps")
out["add"] = median(lambda: a + b)
out["sum"] = median(lambda: a.sum())
r = torch.randn(4096, 4096, device="mps")
out["softmax"] = median(lambda: torch.softmax(r, dim=-1))
w = torch.ones(4096, device="mps")
out["rmsnorm"] = median(lambda: torch.nn.functional.rms_norm(r, (4096,), w))
W = torch.randn(4096, 4096, device="mps", dtype=torch.float16)
x = torch.randn(1, 4096, device="mps", dtype=torch.float16)
out["gemv"] = median(lambda: x @ W.T)
print(json.dumps(out))
