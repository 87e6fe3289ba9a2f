"""PyTorch peer for bench/metal.ts (Apple's MPS backend, on the same Mac in the same run).

Usage: python3 bench/peers/torch_mps.py '<json list of byte sizes>' '<json list of n>'
Prints {"torch": version, "h2d_<bytes>": s, "d2h_<bytes>": s, "gemm_<dtype>_<n>": s} (median seconds,
synchronised; products n x n x n in f32 and f16) or {"error": ...}.
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
print(json.dumps(out))
