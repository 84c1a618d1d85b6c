"""What each rank reads and warms up before its node is built: its shard, the test set, the codec."""

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


def load_local_data(plan: RunPlan, comm: MPI.Intracomm) -> tuple[ShardData | None, ShardData]:
    """Read this rank's shard (checksum verified) and the test set."""

    def read() -> tuple[ShardData | None, ShardData]:
        partition = Partition(plan.data_dir)
        shard_index = plan.algorithm.shard_of(comm.Get_rank())
        shard = None if shard_index is None else partition.read_shard(shard_index)
        if shard is not None and len(shard.y) == 0:
            raise DataError(f"shard {shard_index} of {plan.data_dir} is empty; recreate the partition")
        return shard, partition.read_test()

    return agree(comm, read)


def sample_counts(shard: ShardData | None, comm: MPI.Intracomm) -> np.ndarray:
    """Return every rank's number of training samples (0 for a rank without a shard)."""
    mine = np.array([0 if shard is None else len(shard.y)], dtype=np.int64)
    counts = np.empty(comm.Get_size(), dtype=np.int64)
    comm.Allgather(mine, counts)
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
