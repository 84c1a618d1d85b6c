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

from fedgossip.run.node import Node

__all__ = ["over_budget", "nodes_over_budget"]


def over_budget(node: Node, steps: int) -> bool:
    """Return whether ``steps`` local steps would take ``node``'s ε past the budget."""
    privacy = node.privacy
    return privacy is not None and not privacy.stopped and privacy.would_exceed(steps)


def nodes_over_budget(node: Node, steps: int, comm: MPI.Intracomm, budget: float | None) -> list[int]:
    """Return the nodes of every rank that :func:`over_budget` stops this round (all ranks call it)."""
    if budget is None:  # the same on every rank: no budget, nothing to ask
        return []
    mine = np.array([over_budget(node, steps)], dtype=np.int8)
    flags = np.empty(comm.Get_size(), dtype=np.int8)
    comm.Allgather(mine, flags)
    return [int(r) for r in np.flatnonzero(flags)]
