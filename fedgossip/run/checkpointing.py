"""Checkpoints of one rank: its node's whole state, written and restored at a round boundary.

A synchronous run resumed from round r must produce exactly the metrics an
uninterrupted run would: so the state holds the model, the optimizer and its
schedule, the data stream's position and generators, the codec's random keys,
the algorithm's public copies and residuals, the privacy accountant, the
plugins' bookkeeping and every cumulative counter (:meth:`Node.state_dict`).
Wall-clock figures (compute seconds, wall time) carry on from their saved values
but cannot repeat exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mpi4py import MPI

from fedgossip.comm.collective import agree
from fedgossip.errors import DataError
from fedgossip.records import MetricsWriter
from fedgossip.records.checkpoint import commit_checkpoint, write_rank_checkpoint
from fedgossip.run.node import Node

__all__ = ["checkpoint_bytes", "rank_state", "restore_rank", "write_checkpoint"]

_FORMAT = 1


def checkpoint_bytes(node: Node) -> int:
    """Return a generous estimate of one checkpoint file of this rank (model, optimizer, references)."""
    return 8 * 4 * node.params.numel + (1 << 20)


def rank_state(
    node: Node, comm: MPI.Intracomm, step: int, loop: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Return this rank's state after ``step``: its node's state, and where it stands in the run.

    ``loop`` is what the asynchronous schedule itself needs to go on (its evaluations so far).
    """
    return {
        "format": _FORMAT,
        "round": step,
        "rank": comm.Get_rank(),
        "world_size": comm.Get_size(),
        **node.state_dict(),
        "loop": loop,
    }


def restore_rank(node: Node, comm: MPI.Intracomm, state: dict[str, Any]) -> None:
    """Restore a state from :func:`rank_state` into this freshly built rank's node."""
    rank = comm.Get_rank()
    if state.get("format") != _FORMAT or state.get("rank") != rank:
        raise DataError(
            f"checkpoint of rank {state.get('rank')} (format {state.get('format')}) cannot restore rank "
            f"{rank}; the checkpoint directory is mixed up: start a new run"
        )
    try:
        node.load_state_dict(state)
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
        raise DataError(
            f"the checkpoint of rank {rank} does not fit this run ({type(exc).__name__}: {exc}); "
            "was it written by another fedgossip version or run? start a new run"
        ) from exc


def write_checkpoint(
    node: Node,
    comm: MPI.Intracomm,
    run_dir: Path,
    step: int,
    writer: MetricsWriter | None,
    wall_s: float,
    loop: dict[str, Any] | None = None,
) -> None:
    """Write every rank's checkpoint of ``step``; rank 0 commits it once all are written.

    A rank that cannot write (disk full) stops every rank with its message, and the
    last committed checkpoint stays the one to resume from.
    """
    state = rank_state(node, comm, step, loop)
    digest = agree(comm, lambda: write_rank_checkpoint(run_dir, step, comm.Get_rank(), state))
    hashes = comm.gather(digest, root=0)
    agree(
        comm,
        lambda: commit_checkpoint(run_dir, step, writer.evals, wall_s, hashes, comm.Get_size()),
        root_only=True,
    )
