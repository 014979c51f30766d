"""CPU time of symnet verify verdicts after imports (docs/verify.md, Speed).

    python benchmarks/bench_verify.py [--repeat 3]

For each case a fresh process imports symnet.verify, loads the network, then times
(CPU, time.process_time) the first verdict (the derivation included) and a second
one on the same network. Prints one row per case: the median over --repeat runs.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CASES = [
    ("examples/mlp.toml", r"dW^{(1)} = \delta^{(1)} (a^{(0)})^T"),
    ("examples/lenet.toml", r"dW^{(1)} = a^{(0)} \star \delta^{(1)}"),
    ("examples/lenet.toml", r"\frac{\partial \ell}{\partial a^{(0)}_{c,u,v}} = \sum_{f=0}^{5} \sum_{q=0}^{4} "
                            r"\sum_{r=0}^{4} W^{(1)}_{f,c,q,r} \delta^{(1)}_{f,u - q,v - r}"),
    ("examples/lenet.toml", r"\frac{\partial \ell}{\partial a^{(1)}_{c,i,j}} = \sum_{q=0}^{11} \sum_{r=0}^{11} "
                            r"\bar{a}^{(2)}_{cqr} \mathbb{1}\left[i = u^{(2)}_{cqr},\ j = v^{(2)}_{cqr}\right]"),
    ("examples/digits_cnn.toml", r"\frac{\partial \ell}{\partial a^{(2)}_{c,i,j}} = \sum_{k=1}^{10} "
                                 r"W^{(4)}_{k,16 c + 4 i + j + 1} \delta^{(4)}_{k}"),
    ("docs/specs/conv_pool.toml", r"\frac{\partial \ell}{\partial a^{(0)}_{c,u,v}} = \sum_{f=0}^{2} \sum_{q=0}^{2} "
                                  r"\sum_{r=0}^{2} W^{(1)}_{f,c,q,r} \check{\delta}^{(1)}_{f,u + 1 - q,v + 1 - r}"),
    ("docs/specs/avg_bn.toml", r"\frac{\partial \mathcal{L}}{\partial \gamma^{(3)}_{c}} = \sum_{k=1}^{\bar{m}} "
                               r"\delta^{(3)}_{k} \hat{u}_{k}"),
]

CHILD = r"""
import json, sys, time
import symnet
from symnet.verify import verify
net = symnet.load(sys.argv[1])
t = time.process_time(); v = verify(net, None, sys.argv[2]); first = time.process_time() - t
t = time.process_time(); verify(net, None, sys.argv[2]); second = time.process_time() - t
print(json.dumps([v.status, first, second]))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'network':<12} {'first s':>8} {'second s':>9}  verdict  formula")
    for spec, formula in CASES:
        runs = [json.loads(subprocess.run([sys.executable, "-c", CHILD, spec, formula], cwd=ROOT, check=True,
                                          capture_output=True, text=True).stdout) for _ in range(args.repeat)]
        name = os.path.splitext(os.path.basename(spec))[0]
        print(f"{name:<12} {statistics.median(r[1] for r in runs):8.2f} {statistics.median(r[2] for r in runs):9.3f}"
              f"  {runs[0][0]:<7}  {formula[:60]}")


if __name__ == "__main__":
    main()
