"""What each rank reads and warms up before its nodes are built: their shards, the test set, the codec."""

from __future__ import annotations

import numpy as np
import torch
from mpi4py import MPI

from fedgossip.comm.collective import agree
from fedgossip.compress.base import Compressor
from fedgossip.data.shards import Partition, ShardData
from fedgossip.errors import DataError
from fedgossip.run.plan import RunPlan

__all__ = ["load_local_data", "sample_counts", "warm_up_compressor"]


def load_local_data(plan: RunPlan, comm: MPI.Intracomm) -> tuple[dict[int, ShardData | None], ShardData]:
    """Read the shards of this rank's nodes (checksums verified), by node, and the test set."""

    def read() -> tuple[dict[int, ShardData | None], ShardData]:
        partition = Partition(plan.data_dir)
        shards = {}
        for node in plan.placement.nodes_of(comm.Get_rank()):
            index = plan.algorithm.shard_of(node)
            shard = shards[node] = None if index is None else partition.read_shard(index)
            if shard is not None and len(shard.y) == 0:
                raise DataError(f"shard {index} of {plan.data_dir} is empty; recreate the partition")
        return shards, partition.read_test()

    return agree(comm, read)


def sample_counts(shards: dict[int, ShardData | None], plan: RunPlan, comm: MPI.Intracomm) -> np.ndarray:
    """Return every node's number of training samples (0 for a node without a shard), in node order."""
    mine = np.array([0 if shard is None else len(shard.y) for shard in shards.values()], dtype=np.int64)
    placement = plan.placement
    counts = np.empty(placement.nodes, dtype=np.int64)
    blocks = [len(placement.nodes_of(rank)) for rank in range(placement.ranks)]
    starts = [placement.first(rank) for rank in range(placement.ranks)]
    comm.Allgatherv(mine, [counts, (blocks, starts), MPI.INT64_T])
    return counts


def warm_up_compressor(compressor: Compressor, comm: MPI.Intracomm) -> None:
    """Run the compressor once on one rank per host first, then on every rank.

    Quantizers compile their kernels on first use (numba: seconds of CPU each)
    and cache them on disk. Sixty-four ranks compiling at once on a few cores
    would take minutes; loading what one rank compiled takes a moment.
    """
    host = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        agree(host, lambda: _exercise(compressor), root_only=True)
    finally:
        host.Free()
    _exercise(compressor)


def _exercise(compressor: Compressor) -> None:
    compressor.decode(compressor.encode(torch.linspace(-1.0, 1.0, 100)))
