"""Checkpoints of one rank: everything its future depends on, written and restored at a round boundary.

A synchronous run resumed from round r must produce exactly the metrics an
uninterrupted run would: so the state holds the model, the optimizer and its
schedule, the data stream's position and generators, the codec's random keys,
the algorithm's public copies and residuals, the privacy accountant, the
plugins' bookkeeping and every cumulative counter. Wall-clock figures (compute
seconds, wall time) carry on from their saved values but cannot repeat exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fedgossip.comm.collective import agree
from fedgossip.errors import DataError
from fedgossip.records import MetricsWriter
from fedgossip.records.checkpoint import commit_checkpoint, write_rank_checkpoint
from fedgossip.run.plan import RunPlan

__all__ = ["checkpoint_bytes", "rank_state", "restore_rank", "write_checkpoint"]


def checkpoint_bytes(node) -> int:
    """Return a generous estimate of one checkpoint file of this rank (model, optimizer, references)."""
    return 8 * 4 * node.params.numel + (1 << 20)


def rank_state(node, round_index: int, loop: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return this rank's state after round ``round_index``: tensors, arrays and plain data only.

    ``loop`` is what the asynchronous loop itself needs to go on (its evaluations so far).
    """
    trainer = node.trainer
    return {
        "format": 1,
        "round": round_index,
        "rank": node.rank,
        "world_size": node.comm.Get_size(),
        "model": node.params.flat.detach().cpu().clone(),
        "counters": {
            "compute_s": node.compute_s,
            "loss_sum": node.loss_sum,
            "loss_samples": node.loss_samples,
            "samples_processed": node.samples_processed,
        },
        "codec": node.codec.state_dict(),
        "traffic": node.traffic.state_dict(),
        "algorithm": node.algorithm.state_dict(),
        "training": None
        if trainer is None
        else {
            "optimizer": trainer.optimizer.state_dict(),
            "schedule": None if trainer.schedule is None else trainer.schedule.state_dict(),
            "trainer": trainer.state_dict(),
            "stream": trainer.stream.state_dict(),
            "steps_rng": node.steps_rng.bit_generator.state,
        },
        "privacy": None if node.privacy is None else node.privacy.state_dict(),
        "plugins": [plugin.state_dict() for plugin in node.plugins],
        "gossip": None if node.gossip is None else node.gossip.state_dict(),
        "loop": loop,
    }


def restore_rank(node, state: dict[str, Any], plan: RunPlan) -> None:
    """Restore a state from :meth:`state_dict` into this freshly built rank, in dependency order."""
    if state.get("format") != 1 or state.get("rank") != node.rank:
        raise DataError(
            f"checkpoint of rank {state.get('rank')} (format {state.get('format')}) cannot restore rank "
            f"{node.rank}; the checkpoint directory is mixed up: start a new run"
        )
    try:
        _restore(node, state, plan)
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
        raise DataError(
            f"the checkpoint of rank {node.rank} does not fit this run ({type(exc).__name__}: {exc}); "
            "was it written by another fedgossip version or run? start a new run"
        ) from exc


def _restore(node, state: dict[str, Any], plan: RunPlan) -> None:
    with torch.no_grad():
        node.params.flat.copy_(torch.as_tensor(state["model"]).to(node.params.device))
    counters = state["counters"]
    node.compute_s = float(counters["compute_s"])
    node.loss_sum, node.loss_samples = float(counters["loss_sum"]), int(counters["loss_samples"])
    node.samples_processed = int(counters["samples_processed"])
    node.codec.load_state_dict(state["codec"])
    node.algorithm.load_state_dict(state["algorithm"])
    training = state["training"]
    if (training is None) != (node.trainer is None):
        raise ValueError("the checkpoint and this rank disagree on whether it trains")
    if node.trainer is not None:
        trainer = node.trainer
        # plugins first: share-data puts its received samples back into the stream, whose own
        # state (order, position, hidden samples) is then restored exactly on top
        if node.plugins:
            host = node.plugin_host(plan)
            for plugin, saved in zip(node.plugins, state["plugins"], strict=True):
                plugin.restore(host, saved)
        trainer.optimizer.load_state_dict(training["optimizer"])
        if trainer.schedule is not None:
            trainer.schedule.load_state_dict(training["schedule"])
        trainer.load_state_dict(training["trainer"])
        trainer.stream.load_state_dict(training["stream"])
        node.steps_rng.bit_generator.state = training["steps_rng"]
    if (state["privacy"] is None) != (node.privacy is None):
        raise ValueError("the checkpoint and this rank disagree on --dp")
    if node.privacy is not None:
        node.privacy.load_state_dict(state["privacy"])
    if (state["gossip"] is None) != (node.gossip is None):
        raise ValueError("the checkpoint and this run disagree on --async")
    if node.gossip is not None:
        node.gossip.load_state_dict(state["gossip"])
    # last: restoring a plugin may have counted bytes (it must not, but the saved totals are the truth)
    node.traffic.load_state_dict(state["traffic"])


def write_checkpoint(
    node,
    run_dir: Path,
    round_index: int,
    writer: MetricsWriter | None,
    wall_s: float,
    loop: dict[str, Any] | None = None,
) -> None:
    """Write every rank's checkpoint of ``round_index``; rank 0 commits it once all are written.

    A rank that cannot write (disk full) stops every rank with its message, and the
    last committed checkpoint stays the one to resume from.
    """
    comm = node.comm
    state = rank_state(node, round_index, loop)
    digest = agree(comm, lambda: write_rank_checkpoint(run_dir, round_index, node.rank, state))
    hashes = comm.gather(digest, root=0)
    agree(
        comm,
        lambda: commit_checkpoint(run_dir, round_index, writer.evals, wall_s, hashes, comm.Get_size()),
        root_only=True,
    )
