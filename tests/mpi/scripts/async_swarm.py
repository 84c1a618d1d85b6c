"""Asynchronous swarm gossip under mpiexec, repeated: termination, mean, references, stragglers.

argv: repeats interactions. Each repeat builds fresh random models (lr = 0: a
"local step" is a short sleep, stretched 10× on a straggler) and runs the
protocol to its end, cycling through four variants:

- uncompressed: the mean of the models is preserved to float rounding;
- compressed (qsgd 4-bit): both ends of every edge hold bit-identical references;
- a straggler (rank 0, factor 10): when the others have made all their
  offers, it has made at most half of its own (in lockstep it would have
  made them all: nobody could finish before it);
- an early finisher (rank 0 makes one offer): it keeps serving while offers
  are still in flight to it, and nobody hangs.
"""

import os
import sys
import time

import numpy as np
import torch
from _common import check, comm, context, mean_of, rank, size

from fedgossip.algorithms.swarm_async import AsyncSwarm

repeats, interactions = int(sys.argv[1]), int(sys.argv[2])
STEP_S = 0.001  # one emulated local step
VARIANTS = ("uncompressed", "compressed", "straggler", "early-finisher")


def run(variant: str, seed: int) -> tuple[AsyncSwarm, torch.Tensor, list[float]]:
    """Run one protocol to its end; return the engine, the model and when each own offer was made."""
    compressor = "qsgd:bits=4" if variant == "compressed" else "none"
    _, ctx, flat = context("swarm", "ring", count=500, seed=seed, compressor=compressor)
    engine = AsyncSwarm(ctx, flat, np.random.default_rng([seed, rank]))
    steps = np.random.default_rng([seed, rank, 1])
    factor = 10 if variant == "straggler" and rank == 0 else 1
    mine = 1 if variant == "early-finisher" and rank == 0 else interactions
    offered_at = []
    for _ in range(mine):
        for _ in range(int(steps.integers(1, 4))):
            time.sleep(STEP_S * factor)
            engine.steps += 1
            engine.poll(flat)
        engine.wait_for_reply(flat)
        engine.offer(flat)
        offered_at.append(time.time())  # one clock for every rank of this host
    engine.finish(flat)
    return engine, flat, offered_at


def references_match(engine: AsyncSwarm) -> bool:
    """Swap each edge's references with the neighbour: my sent copy must equal its received one."""
    same = True
    for peer in engine.neighbors:
        mine = torch.cat([engine.references.sent[peer], engine.references.received[peer]]).numpy()
        theirs = np.empty_like(mine)
        comm.Sendrecv(mine, dest=peer, recvbuf=theirs, source=peer)
        half = mine.size // 2
        same &= np.array_equal(mine[:half], theirs[half:]) and np.array_equal(mine[half:], theirs[:half])
    return same


for repeat in range(repeats):
    variant = VARIANTS[repeat % len(VARIANTS)]
    seed = 100 + repeat
    before = mean_of(context("swarm", "ring", count=500, seed=seed)[2])
    engine, flat, offered_at = run(variant, seed)
    stats = comm.allgather((engine.stats.interactions, engine.stats.offers_served))
    expected = [1 if variant == "early-finisher" and r == 0 else interactions for r in range(size)]
    check([s[0] for s in stats] == expected, f"{variant}: interactions {stats}, expected {expected}")
    check(sum(s[0] for s in stats) == sum(s[1] for s in stats), f"{variant}: offers ≠ served {stats}")
    if variant == "uncompressed":
        error = float(np.abs(mean_of(flat) - before).max())
        check(error < 1e-6, f"repeat {repeat}: the mean moved by {error:.3g}")
    if variant == "compressed":
        check(comm.allreduce(references_match(engine)) == size, f"repeat {repeat}: references differ")
    if variant == "early-finisher" and rank == 0:
        check(engine.stats.offers_served > 0, "the early finisher served nobody: nothing was in flight")
    finished = comm.allgather(offered_at[-1])
    # Few ranks: its neighbours are all there is. Many ranks on few cores: the contention for the
    # cores, not the emulated steps, sets everybody's pace. Either way the claim is not testable.
    if variant == "straggler" and rank == 0 and 3 < size <= 2 * (os.cpu_count() or 1) * 4:
        # the straggler's own offers made by the time the typical other rank had made all of its own
        made = sum(t <= float(np.median(finished[1:])) for t in offered_at) / len(offered_at)
        check(made <= 0.5, f"repeat {repeat}: the others waited for the straggler ({made:.0%} of its offers)")
    comm.Barrier()
if rank == 0:
    print(f"ok {repeats} repeats on {size} ranks")
