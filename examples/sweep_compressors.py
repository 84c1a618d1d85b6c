"""Sweep over compressors: the same D-PSGD run with each, then accuracy against bytes sent.

    python examples/sweep_compressors.py OUT [--nodes 4] [--rounds 3]

Makes a digits partition in OUT/data (Dirichlet α=0.5), trains one run per
compressor into OUT/results, and prints a line per run. Read them back with
``python examples/runs_table.py OUT/results``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import fedgossip as fg

COMPRESSORS = ["none", "fp16", "qsgd:bits=4", "topk:ratio=0.1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the partition and the runs")
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    data = args.out / "data"
    partition = fg.Partition(data) if data.exists() else fg.create_partition("digits", args.nodes, out=data)
    for compressor in COMPRESSORS:
        config = fg.TrainConfig(
            data=str(partition.path),
            compressor=compressor,
            rounds=args.rounds,
            eval_every=1,
            local_steps=5,
            out=str(args.out / "results"),
            name=compressor.replace(":", "-").replace("=", ""),  # a directory name per compressor
        )
        run = fg.train(config)
        final = run.summary["final"]
        sent = run.metrics["bytes_sent"][-1].sum()  # cumulative per node: the last row is the total
        print(f"{compressor:16} accuracy {final['avg_model_accuracy']:.3f}  sent {sent / 1e6:.3f} MB")


if __name__ == "__main__":
    main()
