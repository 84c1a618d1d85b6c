"""Pick the curve ``fedgossip plot`` draws out of a run's metrics, with an axis label that says what it is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedgossip.errors import DataError

__all__ = ["X_AXES", "Y_AXES", "Curve", "run_curve"]

# What each axis choice reads from metrics.h5 (results/README.md), and the label it gets.
X_AXES = {
    "round": "round (interactions per node for --async runs)",
    "bytes": "bytes sent per node (cumulative, mean over nodes)",
    "wall": "wall time (s)",
}
Y_AXES = {
    "accuracy": "test accuracy of the average model (%)",
    "loss": "test loss of the average model",
    "consensus": "consensus distance 1/n Σ‖x_i − x̄‖²",
}
_Y_METRIC = {"accuracy": "avg_model_accuracy", "loss": "avg_model_loss", "consensus": "consensus_distance"}


@dataclass(frozen=True)
class Curve:
    """One line of a figure: the run's name and its points, NaN points already dropped."""

    name: str
    x: np.ndarray
    y: np.ndarray


def run_curve(run_dir: Path, name: str, metrics: dict[str, np.ndarray], x: str, y: str) -> Curve:
    """Return the ``y`` against ``x`` curve of one run; a run with nothing to draw is a ``DataError``."""
    if not metrics or len(metrics.get("round", ())) == 0:
        raise DataError(
            f"{run_dir} has no evaluations in metrics.h5 yet; plot it after its first evaluation "
            "(--eval-every sets how often a run evaluates)"
        )
    xs = _x_values(metrics, x)
    metric = _Y_METRIC[y]
    ys = np.asarray(metrics.get(metric, np.full(len(xs), np.nan)), dtype=np.float64)
    if y == "accuracy":
        ys = ys * 100.0
    keep = np.isfinite(xs) & np.isfinite(ys)
    if not keep.any():
        raise DataError(
            f"{run_dir} records no {metric} (its algorithm does not measure it); "
            f"plot it with another --y ({', '.join(k for k in Y_AXES if k != y)})"
        )
    return Curve(name, xs[keep], ys[keep])


def _x_values(metrics: dict[str, np.ndarray], x: str) -> np.ndarray:
    if x == "round":
        return np.asarray(metrics["round"], dtype=np.float64)
    if x == "wall":
        return np.asarray(metrics["wall_time"], dtype=np.float64)
    sent = np.asarray(metrics.get("bytes_sent", np.full((len(metrics["round"]), 1), np.nan)))
    # A rank that has not reported yet is NaN; an all-NaN row stays NaN and is dropped.
    with np.errstate(invalid="ignore"):
        counted = np.isfinite(sent).sum(axis=1)
        total = np.where(np.isfinite(sent), sent, 0.0).sum(axis=1)
        return np.where(counted > 0, total / np.maximum(counted, 1), np.nan)
