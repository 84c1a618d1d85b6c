"""Uncompressed gossip with lr = 0 keeps the mean of the models (argv: algorithm topology rounds)."""

import sys

import numpy as np
from _common import check, comm, context, mean_of, rank

algorithm, topology, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
made, ctx, flat = context(algorithm, topology)
before = mean_of(flat)
spread_before = float(np.abs(flat.numpy() - before).max())
for round_index in range(1, rounds + 1):
    made.communicate(flat, round_index)
after = mean_of(flat)
drift = float(np.abs(after - before).max())
# float32 arithmetic on values of order 1: rounding is ~1e-7 per operation.
check(drift < 1e-5, f"{algorithm} on {topology} moved the mean by {drift:.3g}")
spread_after = comm.allreduce(float(np.abs(flat.numpy() - after).max()), op=max)
check(
    spread_after < spread_before, f"{algorithm} did not mix: spread {spread_before:.3g} -> {spread_after:.3g}"
)
if rank == 0:
    print(f"ok drift={drift:.3g} spread {spread_before:.3g}->{spread_after:.3g}")
