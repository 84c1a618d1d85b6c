"""fedavg keeps one global model (argv: algorithm spec, rounds).

Every round the chosen clients change their models, as local training would; after the
exchange every rank, server and clients alike, must hold the same model bit for bit, and it
must be the average of the chosen clients' models weighted by their sample counts
(McMahan et al. 2017, Algorithm 1). Uncompressed, so the average is exact up to float rounding.
"""

import sys

import numpy as np
import torch
from _common import check, comm, context, rank, size
from mpi4py import MPI

spec, rounds = sys.argv[1], int(sys.argv[2])
counts = np.array([0, *(40 * client for client in range(1, size))], dtype=np.int64)  # rank 0: the server
# The copies of the global model start as every rank's model, which training makes equal.
made, ctx, flat = context(spec, "star", counts=counts, same_start=True)
local_work = np.random.default_rng([5, rank])  # each client changes its model differently


def everyone(mine: torch.Tensor) -> np.ndarray:
    models = np.empty((size, mine.numel()), dtype=np.float32)
    comm.Allgather([mine.numpy(), MPI.FLOAT], [models, MPI.FLOAT])
    return models


for round_index in range(1, rounds + 1):
    chosen = [int(c) for c in made.selected(round_index)]
    expected_count = max(1, round(made.client_fraction * (size - 1)))
    check(len(chosen) == expected_count, f"round {round_index}: chose {chosen}, expected {expected_count}")
    if made.trains(rank, round_index):
        flat.add_(torch.from_numpy(local_work.normal(size=flat.numel()).astype(np.float32)))
    before = everyone(flat)
    made.communicate(flat, round_index)
    after = everyone(flat)
    check(bool((after == after[made.server]).all()), f"round {round_index}: a rank differs from the server")
    weights = counts[chosen] / counts[chosen].sum()
    average = (weights[:, None] * before[chosen].astype(np.float64)).sum(axis=0)
    gap = float(np.abs(after[made.server] - average).max())
    # float32 arithmetic: a few roundings of values of this size
    check(gap < 1e-5 * (1 + float(np.abs(average).max())), f"round {round_index}: {gap:.3g} from the average")
if rank == 0:
    print(f"ok {spec}: {rounds} rounds, one global model, the weighted average of the chosen clients")
