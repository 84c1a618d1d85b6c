"""The privacy gate: before each burst of local steps, whether a node may spend that much of its budget.

One rule for both schedules: a node trains only if the steps it is about to take
keep its ε within ``--dp-target-epsilon`` (:meth:`NodePrivacy.would_exceed`), so a
node never spends beyond its budget. What follows differs by nature: in synchronous
rounds every node moves in step, so the first node over budget ends the run for
all (status budget-exhausted, :func:`nodes_over_budget` asks every rank); with
``--async`` that node alone stops training and keeps serving its neighbours.
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from fedgossip.comm.json_buffers import allgather_json
from fedgossip.run.node import Node

__all__ = ["over_budget", "nodes_over_budget"]


def over_budget(node: Node, steps: int) -> bool:
    """Return whether ``steps`` local steps would take ``node``'s ε past the budget."""
    privacy = node.privacy
    return privacy is not None and not privacy.stopped and privacy.would_exceed(steps)


def nodes_over_budget(
    steps: dict[int, int], nodes: list[Node], comm: MPI.Intracomm, budget: float | None
) -> list[int]:
    """Return the nodes of every rank that :func:`over_budget` stops this round (all ranks call it).

    ``steps`` are the local steps each of this rank's ``nodes`` is about to take, by node id.
    """
    if budget is None:  # the same on every rank: no budget, nothing to ask
        return []
    mine = np.array([1 if over_budget(node, steps[node.id]) else 0 for node in nodes], dtype=np.int64)
    count = np.array([mine.sum()], dtype=np.int64)
    total = np.empty(1, dtype=np.int64)
    comm.Allreduce(count, total, op=MPI.SUM)
    if not total[0]:
        return []
    ids = [node.id for node, over in zip(nodes, mine, strict=True) if over]
    return sorted(int(node) for ids_of_rank in allgather_json(comm, ids) for node in ids_of_rank)
