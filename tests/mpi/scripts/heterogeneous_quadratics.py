"""Exact methods reach the global optimum of heterogeneous quadratics; D-PSGD stops short.

argv: algorithm local_steps rounds [compressor]. Rank i minimizes f_i(x) = ½ a_i ‖x − b_i‖² with its own
curvature a_i and centre b_i; the optimum of Σ_i f_i is Σ a_i b_i / Σ a_i. Local steps are plain
gradient steps at η = 0.1, followed by the algorithm's correction (gt) and its exchange. Prints
the largest distance of any rank's model to the optimum; for gt it also checks Σ_i c_i = 0 (the
trackers' sum is the gradients' sum) after every round.
"""

import sys

import numpy as np
import torch
from _common import check, comm, context, rank, size
from mpi4py import MPI

algorithm, local_steps, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
compressor = sys.argv[4] if len(sys.argv) > 4 else "none"
count, rate = 50, 0.1
made, ctx, flat = context(algorithm, "ring", count=count, same_start=True, compressor=compressor)
rng = np.random.default_rng([11, rank])
curvature = float(rng.uniform(0.5, 2.0))
centre = torch.from_numpy(rng.normal(scale=3.0, size=count).astype(np.float32))
weighted = (curvature * centre).numpy().astype(np.float64)
comm.Allreduce(MPI.IN_PLACE, weighted, op=MPI.SUM)
optimum = weighted / comm.allreduce(curvature, op=MPI.SUM)

for round_index in range(1, rounds + 1):
    for _ in range(local_steps):
        flat.sub_(curvature * (flat - centre), alpha=rate)
        if made.correction is not None:
            made.correction.apply(flat, rate)
    made.communicate(flat, round_index)
    if made.correction is not None:
        total = made.correction.offset.numpy().astype(np.float64)
        comm.Allreduce(MPI.IN_PLACE, total, op=MPI.SUM)
        scale = comm.allreduce(float(made.correction.offset.abs().max()), op=MPI.MAX)
        # float32 rounding: a few ulps a round uncompressed; the public copies' running sums
        # (s_i += W_ij q_j) carry theirs from round to round, so compressed it may add up
        rounding = 1e-5 * max(scale, 1.0) * size * (round_index if compressor != "none" else 1)
        check(
            float(np.abs(total).max()) <= rounding,
            f"round {round_index}: the corrections sum to {np.abs(total).max():.3g}, not 0",
        )
error = comm.allreduce(float(np.abs(flat.numpy() - optimum).max()), op=MPI.MAX)
check(bool(np.isfinite(error)), f"{algorithm} diverged")
if rank == 0:
    print(f"error={error:.6g}")
