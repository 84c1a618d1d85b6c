"""With lr = 0, dpsgd consensus distance decays at least as fast as (1 − gap)^(2t) (argv: topology rounds)."""

import sys

from _common import check, consensus_distance, context, rank

from fedgossip.topology.mixing import metropolis_weights, spectral_gap

topology, rounds = sys.argv[1], int(sys.argv[2])
made, ctx, flat = context("dpsgd", topology)
gap = spectral_gap(metropolis_weights(ctx.topology))
start = consensus_distance(flat)
for t in range(1, rounds + 1):
    made.communicate(flat, t)
    distance = consensus_distance(flat)
    bound = (1 - gap) ** (2 * t) * start
    check(
        distance <= bound * (1 + 1e-4) + 1e-9, f"round {t}: distance {distance:.6g} above bound {bound:.6g}"
    )
if rank == 0:
    print(f"ok gap={gap:.4f} start={start:.4g} end={distance:.4g}")
