"""How often `genbench agree --cluster-by`'s 95% interval holds the true accuracy, by number of clusters.

Simulated votes: G clusters (prompts) of 20 pairs, each cluster's accuracy drawn from Beta(6, 4) (mean 0.6,
sd 0.15), each pair right with its cluster's accuracy; the interval is `genbench.agreement.bootstrap_ci`'s
cluster bootstrap (1000 resamples). Backs `genbench.agreement.MIN_CLUSTERS`.

    python benchmarks/cluster_bootstrap_coverage.py [--draws 400]
"""

from __future__ import annotations

import argparse

import numpy as np

from attiqa.cli import run_app
from genbench.agreement import bootstrap_ci


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=400, help="simulated studies per number of clusters")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    for n_clusters in (2, 3, 4, 5, 8, 10, 15, 20, 30):
        held = 0
        for draw in range(args.draws):
            accuracy = rng.beta(6, 4, n_clusters)
            credits = (rng.random((n_clusters, 20)) < accuracy[:, None]).astype(float).ravel()
            lo, hi = bootstrap_ci(credits, 1000, draw, groups=np.repeat(np.arange(n_clusters), 20))
            held += lo <= 0.6 <= hi
        print(f"{n_clusters:3d} clusters: the 95% interval held the true accuracy in {held / args.draws:.1%}")


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
