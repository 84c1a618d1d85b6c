"""Read a finished (or running) run directory: status, settings, metrics by name and summary.

``Run`` is what :func:`fedgossip.train` returns and what scripts open later; it
reads only files, so it works on a copy of ``results/<run>/`` on a laptop. Each
attribute reads its file when asked, so a run still training shows its latest state.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from fedgossip.errors import DataError
from fedgossip.records.metrics import read_metrics
from fedgossip.records.run import RUN_NAME, read_run_json
from fedgossip.records.summary import load_summary

__all__ = ["Run", "Metrics", "runs"]


class Metrics(dict):
    """Metrics of one run by name; an unknown name is a ``KeyError`` that lists the recorded ones.

    Axes: ``round`` and ``wall_time`` are ``[evaluations]``; a per-node metric such as
    ``test_accuracy`` is ``[evaluations, nodes]``; a scalar one such as
    ``avg_model_accuracy`` is ``[evaluations]``.
    """

    def __init__(self, values: dict[str, np.ndarray], run_dir: Path):
        super().__init__(values)
        self._run_dir = run_dir

    def __missing__(self, name: str) -> np.ndarray:
        recorded = ", ".join(sorted(self)) or "none (the run never evaluated)"
        raise KeyError(f"{self._run_dir} has no metric {name!r}; recorded: {recorded}")


class Run:
    """A run directory opened for reading; ``run.json`` is checked on open.

    Parameters
    ----------
    path
        The run directory, e.g. ``results/20260101-120000-dpsgd-digits-8``.

    Raises
    ------
    DataError
        ``path`` is not a run directory, or its ``run.json`` is damaged.
    """

    def __init__(self, path: str | os.PathLike):
        self._path = Path(path)
        self._record = read_run_json(self._path)
        self._summary: dict[str, Any] | None = None  # the one training just wrote, if it came from train()

    @classmethod
    def trained(cls, path: str | os.PathLike, summary: dict[str, Any]) -> Run:
        """Open the run training just ended, keeping the summary it wrote (not read back from disk)."""
        run = cls(path)
        run._summary = summary
        return run

    @property
    def path(self) -> Path:
        """The run directory."""
        return self._path

    @property
    def name(self) -> str:
        """The run's name, as ``--name`` gave it or the automatic time-algorithm-data."""
        return str(self._record["name"])

    @property
    def status(self) -> str:
        """Return running, completed, failed, budget-exhausted or preempted, read from run.json now."""
        return str(read_run_json(self._path)["status"])

    @property
    def config(self) -> dict[str, Any]:
        """Return the settings the run was started with, as ``TrainConfig`` fields (a fresh copy)."""
        return dict(read_run_json(self._path).get("config") or {})

    @property
    def metrics(self) -> Metrics:
        """Return every recorded metric as a numpy array by name (see :class:`Metrics` for the axes)."""
        return Metrics(read_metrics(self._path), self._path)

    @property
    def summary(self) -> dict[str, Any]:
        """Return the figures ``fedgossip summary`` shows, from summary.json (recomputed if stale)."""
        if self._summary is not None and self._summary.get("status") == self.status:
            return dict(self._summary)
        return load_summary(self._path)

    def __repr__(self) -> str:
        return f"Run({str(self._path)!r})"


def runs(directory: str | os.PathLike = "results") -> list[Run]:
    """Open every run directory in ``directory``, oldest first (names start with the start time).

    Raises
    ------
    DataError
        ``directory`` is not a directory, or one of its runs is damaged (the message names it).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(
            f"{directory} is not a directory; runs land in results/ after training, "
            "or pass the directory that holds them"
        )
    return [Run(path) for path in sorted(p for p in directory.iterdir() if os.path.lexists(p / RUN_NAME))]
