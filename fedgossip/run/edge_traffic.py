"""Gather every node's per-peer byte counts on rank 0: the run's traffic matrix, as sparse edges.

Each node counts the model bytes it sent to each peer node (``Traffic.sent_to``), co-hosted
peers included, so the matrix is the same however nodes are placed on ranks. Only directed
pairs that carried bytes are listed: a ring of 1000 nodes has 2000 edges, not 10⁶ cells.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mpi4py import MPI

from fedgossip.run.node import Node

__all__ = ["gather_edges"]


def gather_edges(nodes: Sequence[Node], comm: MPI.Comm) -> np.ndarray | None:
    """Return ``[edges, 3]`` int64 rows (sender, receiver, bytes) sorted by pair on rank 0; None elsewhere.

    A collective: every rank calls it, with its own nodes.
    """
    rows = [(node.id, peer, sent) for node in nodes for peer, sent in sorted(node.traffic.sent_to.items())]
    own = np.ascontiguousarray(np.asarray(rows, dtype=np.int64).reshape(-1, 3))
    counts = np.zeros(comm.Get_size(), dtype=np.int64) if comm.Get_rank() == 0 else None
    comm.Gather(np.array([own.size], dtype=np.int64), counts, root=0)
    if comm.Get_rank() != 0:
        comm.Gatherv(own, None, root=0)
        return None
    gathered = np.empty(int(counts.sum()), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    comm.Gatherv(own, [gathered, (counts.tolist(), starts.tolist()), MPI.INT64_T], root=0)
    edges = gathered.reshape(-1, 3)
    return edges[np.lexsort((edges[:, 1], edges[:, 0]))]
