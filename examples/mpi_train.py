"""The same ``fg.train`` call under MPI: every rank runs this script, the nodes spread over the ranks.

    mpiexec -n 2 python examples/mpi_train.py OUT [--nodes 4] [--rounds 3]

Rank 0 makes the partition while the others wait; then every rank trains its
block of nodes (4 nodes on 2 ranks: 2 each) and rank 0, which writes the run
directory, prints where it went.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mpi4py import MPI

import fedgossip as fg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the partition and the run")
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    comm = MPI.COMM_WORLD
    data = args.out / "data"
    if comm.Get_rank() == 0 and not data.exists():
        fg.create_partition("digits", args.nodes, out=data)
    comm.Barrier()  # the partition exists before any rank opens it
    config = fg.TrainConfig(
        data=str(data), nodes=args.nodes, rounds=args.rounds, eval_every=1, out=str(args.out / "results")
    )
    try:
        run = fg.train(config)
    except fg.FedGossipError as exc:
        # A setting every rank refused alike raises on every rank; a failure on one rank only
        # would leave the others waiting in MPI, so the job ends as a whole.
        print(f"error: [rank {comm.Get_rank()}] {exc}", file=sys.stderr)
        comm.Abort(1)
    if run is not None:  # rank 0
        final = run.summary["final"]
        print(
            f"{run.path}: {run.status} on {comm.Get_size()} ranks, accuracy {final['avg_model_accuracy']:.3f}"
        )


if __name__ == "__main__":
    main()
