"""``summary.json``: the figures a user compares runs by, computed only from a run's files.

Everything comes from ``run.json`` and ``metrics.h5``, so a summary can be
recomputed at any time (``fedgossip summary`` does when ``summary.json`` is
missing, stale or incomplete). A figure whose metric was never recorded is
``None`` (JSON ``null``), never an error: a run that failed before its first
evaluation still has a summary.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from fedgossip.bounded_read import FileProblem, file_problem
from fedgossip.records.jsonfile import jsonable, read_json, write_json_atomic
from fedgossip.records.metrics import METRICS_NAME, read_edges, read_metrics
from fedgossip.records.run import read_run_json

__all__ = [
    "SUMMARY_NAME",
    "SUMMARY_FORMAT_VERSION",
    "REQUIRED_KEYS",
    "summarize",
    "write_summary",
    "load_summary",
]

SUMMARY_NAME = "summary.json"
SUMMARY_FORMAT_VERSION = 1
# Dotted paths every summary has (values may be null); a summary.json missing one is recomputed.
REQUIRED_KEYS = (
    "format_version",
    "traffic_edges",
    "status",
    "name",
    "algorithm",
    "topology.spec",
    "topology.spectral_gap",
    "ranks",
    "partition.path",
    "partition.scheme",
    "partition.label_tv_distance_mean",
    "compressor",
    "optimizer.spec",
    "final.round",
    "final.test_accuracy.mean",
    "final.test_accuracy.min",
    "final.test_accuracy.max",
    "final.test_loss.mean",
    "final.avg_model_accuracy",
    "final.consensus_distance",
    "communication.bytes_sent_total",
    "communication.bytes_sent_per_rank_mean",
    "communication.bytes_sent_per_rank_max",
    "communication.fp32_equivalent_bytes",
    "communication.compression_ratio",
    "time.wall_s",
    "time.compute_s",
    "time.comm_s",
    "curve.round",
    "curve.avg_model_accuracy",
    "curve.test_accuracy_mean",
    "curve.mb_sent_total",
)


def summarize(run_dir: Path) -> dict[str, Any]:
    """Compute the summary of a run from ``run.json`` and ``metrics.h5``."""
    record = read_run_json(run_dir)
    metrics = read_metrics(run_dir)
    config = record.get("config") or {}
    topology = record.get("topology") or {}
    partition = record.get("partition") or {}
    heterogeneity = partition.get("stats") or {}
    rounds = metrics.get("round")
    last = len(rounds) - 1 if rounds is not None and len(rounds) else None
    attackers = [int(node) for node in record.get("attackers") or []]
    honest = _honest_columns(metrics, attackers)
    return jsonable(
        {
            "format_version": SUMMARY_FORMAT_VERSION,
            "name": record.get("name"),
            "status": record.get("status"),
            "error": record.get("error"),
            "failed_round": record.get("failed_round"),
            "started_at": record.get("started_at"),
            "ended_at": record.get("ended_at"),
            "algorithm": config.get("algorithm"),
            "compressor": config.get("compressor"),
            "consensus_step": record.get("consensus_step"),
            "model": config.get("model"),
            "mode": {
                "asynchronous": bool(config.get("asynchronous")),
                "slowdown": config.get("slowdown") or "none",
                "link": config.get("link") or "none",
            },
            "faulty": {
                "attack": config.get("attack") or "none",
                "attackers": attackers,
                "robust": config.get("robust") or "mean",
            },
            # which nodes were online each round (--availability); runs from before it: always
            "availability": record.get("availability") or {"spec": "always", "mean_online_fraction": 1.0},
            # nodes whose rank died, the run going on without them (--on-failure continue)
            "lost": record.get("lost") or [],
            "gossip": _gossip(metrics, last),
            "privacy": _privacy(metrics, last, record),
            "plugins": _plugins(metrics, last, record),
            "optimizer": {
                "spec": config.get("optimizer"),
                "lr": config.get("lr"),
                "schedule": config.get("lr_schedule"),
            },
            "ranks": record.get("world_size"),
            # devices: as many as ranks in runs written while a rank hosted one node
            "nodes": record.get("nodes", record.get("world_size")),
            "topology": {
                **topology,
                "spec": topology.get("spec") or config.get("topology"),
                "spectral_gap": topology.get("spectral_gap"),
            },
            "partition": {
                "path": partition.get("path"),
                "source": partition.get("source"),
                "scheme": partition.get("scheme"),
                "nodes": partition.get("nodes"),
                "label_tv_distance_mean": heterogeneity.get("label_tv_distance_mean"),
                "label_tv_distance_max": heterogeneity.get("label_tv_distance_max"),
            },
            "evals": 0 if last is None else last + 1,
            "final": _final(honest, last),
            "communication": _communication(metrics, last),
            "time": _time(metrics, last, record),
            "curve": _curve(honest, metrics),
            # [sender node, receiver node, bytes] per directed pair that carried model bytes
            "traffic_edges": _traffic_edges(run_dir),
            # what the figures were computed from: a summary.json is trusted only while it matches
            "metrics_sha256": metrics_fingerprint(run_dir),
        }
    )


def metrics_fingerprint(run_dir: Path) -> str | None:
    """Return the SHA-256 of ``run_dir/metrics.h5``: None if there is none, "unreadable" if unhashable."""
    path = Path(run_dir) / METRICS_NAME
    if not path.exists():
        return None
    if file_problem(path):
        return "unreadable"
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            while block := stream.read(1 << 20):
                digest.update(block)
    except OSError:
        return "unreadable"
    return digest.hexdigest()


def _honest_columns(metrics: dict[str, np.ndarray], attackers: list[int]) -> dict[str, np.ndarray]:
    """Return the metrics with the attackers' per-node columns left out (the accuracy figures are the
    honest nodes'; the average model is already theirs alone)."""
    if not attackers:
        return metrics
    kept = {}
    for name, values in metrics.items():
        if getattr(values, "ndim", 0) == 2:
            keep = np.ones(values.shape[1], dtype=bool)
            keep[[node for node in attackers if node < values.shape[1]]] = False
            values = values[:, keep]
        kept[name] = values
    return kept


def _final(metrics: dict[str, np.ndarray], last: int | None) -> dict[str, Any]:
    accuracy = _at(metrics, "test_accuracy", last)
    return {
        "round": _at(metrics, "round", last),
        "test_accuracy": {
            "mean": _mean(accuracy),
            "min": _reduce(np.nanmin, accuracy),
            "max": _reduce(np.nanmax, accuracy),
        },
        "test_loss": {"mean": _mean(_at(metrics, "test_loss", last))},
        "train_loss": {"mean": _mean(_at(metrics, "train_loss", last))},
        "avg_model_accuracy": _at(metrics, "avg_model_accuracy", last),
        "avg_model_loss": _at(metrics, "avg_model_loss", last),
        "consensus_distance": _at(metrics, "consensus_distance", last),
    }


def _communication(metrics: dict[str, np.ndarray], last: int | None) -> dict[str, Any]:
    # Byte counters are cumulative, so the last evaluation holds each rank's total.
    sent = _at(metrics, "bytes_sent", last)
    fp32 = _at(metrics, "fp32_bytes_sent", last)
    received = _at(metrics, "bytes_received", last)
    total = _count(_reduce(np.nansum, sent))
    fp32_total = _count(_reduce(np.nansum, fp32))
    within = _count(_reduce(np.nansum, _at(metrics, "bytes_within", last)))
    return {
        "bytes_sent_total": total,
        "bytes_sent_per_rank_mean": _mean(sent),
        "bytes_sent_per_rank_max": _count(_reduce(np.nanmax, sent)),
        "bytes_received_total": _count(_reduce(np.nansum, received)),
        "fp32_equivalent_bytes": fp32_total,
        # sent to a node of the same process (through memory, not MPI); absent in older runs
        "bytes_within_total": within,
        "bytes_within_share": within / total if total and within is not None else None,
        # samples shared by --share-data: on the same wire, labelled apart from the model's bytes
        "data_bytes_sent_total": _count(_reduce(np.nansum, _at(metrics, "data_bytes_sent", last))),
        "data_bytes_received_total": _count(_reduce(np.nansum, _at(metrics, "data_bytes_received", last))),
        "samples_processed_total": _count(_reduce(np.nansum, _at(metrics, "samples_processed", last))),
        # None when nothing was sent: a ratio of 0/0 means nothing.
        "compression_ratio": fp32_total / total if total and fp32_total is not None else None,
    }


def _gossip(metrics: dict[str, np.ndarray], last: int | None) -> dict[str, Any] | None:
    """Return the asynchronous gossip's counters, mean over ranks; None for a synchronous run."""
    interactions = _at(metrics, "interactions", last)
    if interactions is None or not np.any(np.isfinite(interactions)):
        return None
    return {
        "interactions_per_rank_mean": _mean(interactions),
        "offers_served_per_rank_mean": _mean(_at(metrics, "offers_served", last)),
        "staleness_steps_mean": _mean(_at(metrics, "staleness_steps", last)),
        "idle_s_mean": _mean(_at(metrics, "idle_s", last)),
    }


def _privacy(
    metrics: dict[str, np.ndarray], last: int | None, record: dict[str, Any]
) -> dict[str, Any] | None:
    """Return the privacy spent (ε over nodes at the last evaluation) and the budget; None without --dp."""
    config = record.get("config") or {}
    spec = config.get("dp") or "none"
    if spec == "none":
        return None
    epsilon = _at(metrics, "epsilon", last)
    delta = _at(metrics, "dp_delta", last)
    stopped = _at(metrics, "dp_stopped", last)
    budget = record.get("budget") or {}
    mechanism = record.get("privacy") or {}
    return {
        "mechanism": spec,
        "level": mechanism.get("level"),
        "clip": mechanism.get("clip"),
        "noise": mechanism.get("noise"),
        "epsilon_max": _reduce(np.nanmax, epsilon),
        "epsilon_mean": _mean(epsilon),
        "delta_min": _reduce(np.nanmin, delta),
        "delta_max": _reduce(np.nanmax, delta),
        "target_epsilon": config.get("dp_target_epsilon"),
        "deterministic": bool(config.get("deterministic")),
        # a synchronous stop may fall on an evaluation taken before it was known: run.json names the
        # nodes ("ranks" in runs written while a rank hosted one node)
        "stopped_nodes": _stopped_nodes(budget, stopped),
        "budget_round": budget.get("round"),  # synchronous runs: the last round trained
        "curve_epsilon_max": None
        if metrics.get("epsilon") is None
        else [_reduce(np.nanmax, row) for row in metrics["epsilon"]],
    }


def _plugins(
    metrics: dict[str, np.ndarray], last: int | None, record: dict[str, Any]
) -> list[dict[str, Any]]:
    """Return each training-time plugin with its values at the last evaluation (mean, min, max over ranks)."""
    plugins = []
    for plugin in record.get("plugins") or []:
        final = {}
        for name in plugin.get("metrics") or []:
            values = _at(metrics, name, last)
            final[name] = {
                "mean": _mean(values),
                "min": _reduce(np.nanmin, values),
                "max": _reduce(np.nanmax, values),
            }
        plugins.append(
            {
                "name": plugin.get("name"),
                "kind": plugin.get("kind"),
                "spec": plugin.get("spec"),
                "final": final,
            }
        )
    return plugins


def _time(metrics: dict[str, np.ndarray], last: int | None, record: dict[str, Any]) -> dict[str, Any]:
    # The last evaluation's wall time matches the compute and comm totals taken at that moment;
    # the timestamps of run.json are the fallback for a run that never evaluated.
    wall = _at(metrics, "wall_time", last)
    if wall is None:
        wall = _elapsed(record.get("started_at"), record.get("ended_at"))
    return {
        "wall_s": wall,
        "compute_s": _mean(_at(metrics, "compute_s", last)),
        "comm_s": _mean(_at(metrics, "comm_s", last)),
        "link_s": _mean(_at(metrics, "link_s", last)),
    }


def _curve(honest: dict[str, np.ndarray], metrics: dict[str, np.ndarray]) -> dict[str, Any]:
    sent = metrics.get("bytes_sent")  # every node's bytes, the attackers' too: they crossed the wire
    accuracy = honest.get("test_accuracy")
    return {
        "round": metrics.get("round"),
        "avg_model_accuracy": metrics.get("avg_model_accuracy"),
        "test_accuracy_mean": None if accuracy is None else [_mean(row) for row in accuracy],
        "mb_sent_total": None if sent is None else [_megabytes(_reduce(np.nansum, row)) for row in sent],
    }


def _at(metrics: dict[str, np.ndarray], name: str, index: int | None) -> Any:
    values = metrics.get(name)
    if values is None or index is None:
        return None
    value = values[index]
    return value if value.ndim else value.item()


def _reduce(reduce, values: np.ndarray | None) -> float | None:
    """Apply a NaN-ignoring reduction; ``None`` if no value was recorded (all NaN)."""
    if values is None or not np.isfinite(values).any():
        return None
    return float(reduce(values))


def _count(value: float | None) -> int | None:
    """Return a byte count as an integer (metrics.h5 stores every metric as float64)."""
    return None if value is None else round(value)


def _megabytes(value: float | None) -> float | None:
    return None if value is None else value / 1e6


def _mean(values: np.ndarray | None) -> float | None:
    return _reduce(np.nanmean, values)


def _elapsed(started: str | None, ended: str | None) -> float | None:
    try:
        start, end = (datetime.fromisoformat(t.replace("Z", "+00:00")).astimezone() for t in (started, ended))
    except (TypeError, ValueError, AttributeError):
        return None
    return (end - start).total_seconds()


def write_summary(run_dir: Path, summary: dict[str, Any]) -> Path:
    """Write ``summary`` as ``run_dir/summary.json`` atomically and return its path."""
    path = Path(run_dir) / SUMMARY_NAME
    write_json_atomic(path, summary)
    return path


def load_summary(run_dir: Path) -> dict[str, Any]:
    """Return the run's summary: ``summary.json`` when present, complete and current, else computed.

    ``summary.json`` is current when its status is the one ``run.json`` has now
    (a resumed run may have left one from an earlier attempt) and ``metrics.h5``
    is the file it was computed from (its SHA-256 is in ``metrics_sha256``).
    """
    record = read_run_json(run_dir)
    try:
        saved = read_json(Path(run_dir) / SUMMARY_NAME)
    except (FileNotFoundError, FileProblem):  # computed again below, from the files it summarizes
        saved = None
    if (
        _complete(saved)
        and saved["status"] == record["status"]
        and saved["name"] == record["name"]
        # metrics.h5 damaged, replaced or removed since: its figures are not the run's any more
        and saved.get("metrics_sha256") == metrics_fingerprint(run_dir)
    ):
        return saved
    return summarize(run_dir)


def _complete(summary: Any) -> bool:
    if not isinstance(summary, dict) or summary.get("format_version") != SUMMARY_FORMAT_VERSION:
        return False
    for key in REQUIRED_KEYS:
        node = summary
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
    return True


def _stopped_nodes(budget: dict, stopped) -> int | None:
    """Return how many nodes the privacy budget stopped: as run.json names them, else as counted."""
    named = budget.get("nodes", budget.get("ranks"))
    return len(named) if named is not None else _count(_reduce(np.nansum, stopped))


def _traffic_edges(run_dir: Path) -> list[list[int]] | None:
    """Return the run's traffic matrix as [sender, receiver, bytes] rows; None before the run ends."""
    edges = read_edges(run_dir)
    return None if edges is None else edges.tolist()
