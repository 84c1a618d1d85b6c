"""List the runs of a results directory, one row per run, without failing on a damaged one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fedgossip.errors import DataError, FedGossipError
from fedgossip.records.run import RUN_NAME
from fedgossip.records.summary import load_summary

__all__ = ["list_runs"]


def list_runs(directory: Path) -> list[dict[str, Any]]:
    """Return one row per subdirectory of ``directory`` holding a ``run.json``, sorted by name.

    Names start with the start time, so the order is chronological. A run that
    cannot be read still gets a row, with ``note`` saying why and its figures ``None``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(
            f"{directory} is not a directory; runs land in results/ after `fedgossip train`, "
            "or pass the directory that holds them"
        )
    rows = []
    # lexists: a run.json that became a FIFO or a dangling link is a damaged run, listed as one
    for run_dir in sorted(p for p in directory.iterdir() if os.path.lexists(p / RUN_NAME)):
        try:
            rows.append(_row(run_dir, load_summary(run_dir)))
        except FedGossipError as exc:
            rows.append(_unreadable(run_dir, str(exc)))
        except (KeyError, TypeError, AttributeError) as exc:  # a summary.json of the wrong shape
            rows.append(_unreadable(run_dir, f"{run_dir} has a summary of the wrong form ({exc!r})"))
    return rows


def _row(run_dir: Path, summary: dict[str, Any]) -> dict[str, Any]:
    final = summary["final"]
    sent = summary["communication"]["bytes_sent_total"]
    return {
        "name": summary.get("name") or run_dir.name,
        "path": str(run_dir),
        "status": summary["status"],
        "algorithm": summary["algorithm"],
        "ranks": summary["ranks"],
        "round": final["round"],
        "avg_model_accuracy": final["avg_model_accuracy"],
        "test_accuracy_mean": final["test_accuracy"]["mean"],
        "mb_sent": None if sent is None else sent / 1e6,
        "note": None,
    }


def _unreadable(run_dir: Path, note: str) -> dict[str, Any]:
    figures = ("status", "algorithm", "ranks", "round", "avg_model_accuracy", "test_accuracy_mean", "mb_sent")
    return {"name": run_dir.name, "path": str(run_dir), **dict.fromkeys(figures), "note": note}
