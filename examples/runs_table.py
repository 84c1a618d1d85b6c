"""Read every run of a results folder into one table, and save it as CSV.

    python examples/runs_table.py RESULTS [--csv FILE]

One row per run: its name, status, algorithm and compressor (from run.json's
settings), the average model's final accuracy and the megabytes all nodes sent.
The CSV goes to RESULTS/runs.csv unless --csv says otherwise.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import fedgossip as fg

COLUMNS = ["name", "status", "algorithm", "compressor", "rounds", "avg_model_accuracy", "mb_sent"]


def row(run: fg.Run) -> dict:
    """Return one table row of ``run``, its figures read from its metrics."""
    metrics = run.metrics
    return {
        "name": run.name,
        "status": run.status,
        "algorithm": run.config["algorithm"],
        "compressor": run.config["compressor"],
        "rounds": int(metrics["round"][-1]),
        "avg_model_accuracy": float(metrics["avg_model_accuracy"][-1]),
        "mb_sent": float(metrics["bytes_sent"][-1].sum()) / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="folder holding run directories")
    parser.add_argument("--csv", type=Path, help="where to write the table [default: RESULTS/runs.csv]")
    args = parser.parse_args()

    rows = [row(run) for run in fg.runs(args.results) if run.status == "completed"]
    path = args.csv or args.results / "runs.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    width = max([len("compressor"), *(len(r["compressor"]) for r in rows)])
    print(f"{'name':18} {'compressor':{width}} {'accuracy':>8} {'MB sent':>8}")
    for r in sorted(rows, key=lambda r: r["mb_sent"]):
        print(f"{r['name']:18} {r['compressor']:{width}} {r['avg_model_accuracy']:8.3f} {r['mb_sent']:8.3f}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
