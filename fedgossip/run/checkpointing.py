"""Checkpoints of one rank: its nodes' whole state, written and restored at a round boundary.

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
from fedgossip.comm.json_buffers import gather_json
from fedgossip.errors import DataError
from fedgossip.records import MetricsWriter
from fedgossip.records.checkpoint import commit_checkpoint, write_rank_checkpoint
from fedgossip.run.node import Node

__all__ = ["checkpoint_bytes", "rank_state", "restore_rank", "write_checkpoint"]

_FORMAT = 2  # 2: the states of every node of the rank ("nodes"); 1: one node's, at the top level


def checkpoint_bytes(nodes: list[Node]) -> int:
    """Return a generous estimate of one checkpoint file of this rank (models, optimizers, references)."""
    return sum(8 * 4 * node.params.numel for node in nodes) + (1 << 20)


def rank_state(
    nodes: list[Node], comm: MPI.Intracomm, step: int, loop: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Return this rank's state after ``step``: its nodes' states, and where it stands in the run.

    ``loop`` is what the asynchronous schedule itself needs to go on (its evaluations so far).
    """
    return {
        "format": _FORMAT,
        "round": step,
        "rank": comm.Get_rank(),
        "world_size": comm.Get_size(),
        "node_ids": [node.id for node in nodes],
        "nodes": [node.state_dict() for node in nodes],
        "loop": loop,
    }


def restore_rank(nodes: list[Node], comm: MPI.Intracomm, state: dict[str, Any]) -> None:
    """Restore a state from :func:`rank_state` into this rank's freshly built nodes.

    A format-1 checkpoint (written before ranks hosted several nodes) holds its one node's
    state at the top level.
    """
    rank = comm.Get_rank()
    if state.get("format") not in (1, _FORMAT) or state.get("rank") != rank:
        raise DataError(
            f"checkpoint of rank {state.get('rank')} (format {state.get('format')}) cannot restore rank "
            f"{rank}; the checkpoint directory is mixed up: start a new run"
        )
    written_by = state.get("world_size", comm.Get_size())  # a latest.json may lie; the state was saved then
    if written_by != comm.Get_size():
        raise DataError(
            f"the checkpoint of rank {rank} was written by a job of {written_by} ranks, this one has "
            f"{comm.Get_size()}; the checkpoint directory does not belong to this run: start a new run"
        )
    states = [state] if state["format"] == 1 else state.get("nodes")
    ids = [nodes[0].id] if state["format"] == 1 else list(state.get("node_ids", []))
    if ids != [node.id for node in nodes] or len(states) != len(nodes):
        raise DataError(
            f"the checkpoint of rank {rank} holds nodes {_span(ids)}, this rank hosts "
            f"{_span([node.id for node in nodes])}; resume with the same --nodes and number of ranks"
        )
    for node, saved in zip(nodes, states, strict=True):
        try:
            node.load_state_dict(saved)
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
            raise DataError(
                f"the checkpoint of node {node.id} (rank {rank}) does not fit this run "
                f"({type(exc).__name__}: {exc}); was it written by another fedgossip version or run? "
                "start a new run"
            ) from exc


def _span(ids: list[int]) -> str:
    return f"{ids[0]}–{ids[-1]}" if len(ids) > 1 else (str(ids[0]) if ids else "none")


def write_checkpoint(
    nodes: list[Node],
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
    state = rank_state(nodes, comm, step, loop)
    digest = agree(comm, lambda: write_rank_checkpoint(run_dir, step, comm.Get_rank(), state))
    hashes = gather_json(comm, digest, root=0)
    agree(
        comm,
        lambda: commit_checkpoint(run_dir, step, writer.evals, wall_s, hashes, comm.Get_size()),
        root_only=True,
    )
