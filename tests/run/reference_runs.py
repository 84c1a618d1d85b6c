"""Seeded synchronous runs whose metrics.h5 must stay bit-identical across refactorings.

The references in ``tests/run/reference_metrics/`` were written by this script on the
commit before the node/engine redesign (777af61), with torch 2.13.0 on CPU and one
thread per rank. ``python tests/run/reference_runs.py OUT`` writes them anew; the test
beside it runs the same cases and compares every dataset but the wall-clock ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

REFERENCES = Path(__file__).parent / "reference_metrics"
RANKS = 4

# name -> (partition nodes, extra options); every case shares _COMMON.
CASES: dict[str, tuple[int, tuple[str, ...]]] = {
    "dpsgd": (4, ("--algorithm", "dpsgd")),
    "choco-qsgd4": (4, ("--algorithm", "dpsgd", "--compressor", "qsgd:bits=5")),
    "swarm": (4, ("--algorithm", "swarm", "--compressor", "qsgd:bits=9")),
    "fedavg": (3, ("--algorithm", "fedavg", "--client-fraction", "0.5")),
    "allreduce": (4, ("--algorithm", "allreduce")),
    "comp-ams": (4, ("--algorithm", "comp-ams", "--compressor", "topk:ratio=0.1", "--local-steps", "3")),
    "dp-sgd": (4, ("--dp", "dp-sgd:clip=1,noise=1.1", "--deterministic")),
}
_COMMON = (
    "--rounds",
    "4",
    "--eval-every",
    "2",
    "--local-steps",
    "5",
    "--model",
    "mlp:hidden=32",
    "--seed",
    "7",
)

# Seconds measured on the clock differ from run to run; everything else must not.
WALL_CLOCK = {"wall_time", "compute_s", "comm_s", "codec_s", "link_s", "idle_s", "filter_saved_s"}


def _mpiexec() -> str:
    for candidate in (Path(sys.executable).parent / "mpiexec", Path("/usr/bin/mpiexec")):
        if candidate.exists():
            return str(candidate)
    return "mpiexec"


def make_partitions(root: Path) -> dict[int, Path]:
    """Write the digits partitions the cases train on (3 and 4 nodes, Dirichlet 0.5, seed 0)."""
    paths = {}
    for nodes in sorted({nodes for nodes, _ in CASES.values()}):
        out = root / f"digits-{nodes}"
        if not out.exists():
            subprocess.run(
                [sys.executable, "-m", "fedgossip", "partition", "create", "digits", "--nodes", str(nodes),
                 "--scheme", "dirichlet:alpha=0.5", "--seed", "0", "--out", str(out)],
                check=True, capture_output=True, timeout=300,
            )  # fmt: skip
        paths[nodes] = out
    return paths


def run_case(name: str, root: Path, partitions: dict[int, Path]) -> Path:
    """Run one case on RANKS ranks under mpiexec; return its metrics.h5."""
    nodes, extra = CASES[name]
    options = list(_COMMON)
    if "--local-steps" in extra:  # the case's own value wins
        at = options.index("--local-steps")
        del options[at : at + 2]
    command = [_mpiexec(), "-n", str(RANKS), sys.executable, "-m", "fedgossip", "train",
               "--data", str(partitions[nodes]), *options, *extra,
               "--out", str(root / "runs"), "--name", name]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=root)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{done.stdout}\n{done.stderr}")
    return root / "runs" / name / "metrics.h5"


def read_metrics(path: Path) -> dict[str, np.ndarray]:
    """Return every dataset of a metrics.h5 but the wall-clock ones, by path inside the file."""
    found: dict[str, np.ndarray] = {}

    def visit(key: str, item) -> None:
        if isinstance(item, h5py.Dataset) and key.rsplit("/", 1)[-1] not in WALL_CLOCK:
            found[key] = item[()]

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return found


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    partitions = make_partitions(work)
    for name in CASES:
        metrics = read_metrics(run_case(name, work, partitions))
        with h5py.File(out / f"{name}.h5", "w") as f:
            for key, value in metrics.items():
                f.create_dataset(key, data=value)
        print(name, len(metrics), "datasets")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
