"""Times NumPy on the same operations as a bench file, in the same run, for the peer column.

Usage: python3 bench/numpy_peer.py '<json list of {"name", "setup", "stmt"}>'
Prints one JSON object {name: median seconds per call}. The setup runs once per case with
`np` imported; each statement is timed with timeit (auto-ranged, 7 repeats, median).
"""
import json
import sys
import timeit

try:
    import numpy as np
except ImportError as e:  # the bench says so and goes on without the peer
    print(json.dumps({"error": f"numpy is not installed ({e})"}))
    sys.exit(0)

# ---- linalg cases (bench/linalg.ts) ---------------------------------------------------------------
# A case {"name", "linalg": {"op", "n"}} times numpy.linalg on an n x n float32 matrix (standard
# normal; A^T A + n I for cholesky and eigh), b a float32 vector for solve.
LINALG_STMT = {
    "inv": "np.linalg.inv(a)",
    "solve": "np.linalg.solve(a, b)",
    "det": "np.linalg.det(a)",
    "cholesky": "np.linalg.cholesky(spd)",
    "qr": "np.linalg.qr(a)",
    "svd": "np.linalg.svd(a)",
    "eigh": "np.linalg.eigh(spd)",
}


def linalg_case(spec):
    n = int(spec["n"])
    setup = (
        f"rng = np.random.default_rng(1); a = rng.standard_normal(({n}, {n})).astype(np.float32); "
        f"b = rng.standard_normal({n}).astype(np.float32); "
        f"spd = (a.T @ a + {n} * np.eye({n}, dtype=np.float32)).astype(np.float32)"
    )
    return setup, LINALG_STMT[spec["op"]]


# ---- end of linalg cases ------------------------------------------------------------------------------

cases = json.loads(sys.argv[1])
out = {"numpy": np.__version__}
for case in cases:
    if "linalg" in case:
        case["setup"], case["stmt"] = linalg_case(case["linalg"])
    env = {"np": np}
    exec(case["setup"], env)
    t = timeit.Timer(case["stmt"], globals=env)
    number, _ = t.autorange()
    number = max(1, number // 2)
    runs = sorted(x / number for x in t.repeat(repeat=7, number=number))
    out[case["name"]] = runs[len(runs) // 2]
print(json.dumps(out))
