"""Asynchronous swarm gossip under mpiexec, repeated: termination, mean, references, stragglers.

argv: repeats interactions. Each repeat builds fresh random models (lr = 0: a
"local step" is a short sleep, stretched 10× on a straggler) and runs the
protocol to its end, cycling through four variants:

- uncompressed: the mean of the models is preserved to float rounding;
- compressed (qsgd 4-bit): both ends of every edge hold bit-identical references;
- a straggler (rank 0): its local steps take 10× what the others' took in the
  last uncompressed repeat, measured, not assumed (on few cores the contention for
  them, not the emulated 1 ms, sets the others' pace). On every graph it answers
  offers in the polls between its own local steps, while more steps are due before
  its next offer (lockstep rounds would exchange only at its offers). From 3 ranks
  on, where every rank has a partner other than the straggler: when the typical
  other rank has made all its offers, the straggler has made at most half of its
  own (in lockstep it would have made them all: nobody could finish before it).
  With 2 ranks the partner has only the straggler: its offers wait for the
  straggler's polls, so only the first claim is made there;
- an early finisher (rank 0 makes one offer): it keeps serving while offers
  are still in flight to it, and nobody hangs.
"""

import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from _common import check, comm, context, mean_of, rank, size

from fedgossip.algorithms.asynchronous import finish
from fedgossip.algorithms.swarm_async import AsyncSwarm

repeats, interactions = int(sys.argv[1]), int(sys.argv[2])
STEP_S = 0.001  # one emulated local step
VARIANTS = ("uncompressed", "compressed", "straggler", "early-finisher")


@dataclass
class Finished:
    """One protocol run as this rank saw it."""

    engine: AsyncSwarm
    flat: torch.Tensor
    started: float  # when the first local step began
    offered_at: list[float]  # when each own offer was made
    served_between_steps: int  # others' offers answered while more own steps were due before an offer


def run(variant: str, seed: int, straggler_step_s: float) -> Finished:
    """Run one protocol to its end."""
    compressor = "qsgd:bits=5" if variant == "compressed" else "none"
    _, ctx, flat = context("swarm", "ring", count=500, seed=seed, compressor=compressor)
    engine = AsyncSwarm(ctx, flat, np.random.default_rng([seed, rank]))
    engine.transport.open()
    steps = np.random.default_rng([seed, rank, 1])
    step_s = straggler_step_s if variant == "straggler" and rank == 0 else STEP_S
    mine = 1 if variant == "early-finisher" and rank == 0 else interactions
    offered_at, served_between_steps = [], 0
    started = time.time()  # one clock for every rank of this host
    for _ in range(mine):
        count = int(steps.integers(1, 4))
        for step in range(count):
            time.sleep(step_s)
            engine.steps += 1
            served = engine.stats.offers_served
            engine.poll()
            if step < count - 1:
                served_between_steps += engine.stats.offers_served - served
        engine.wait_for_reply()
        engine.offer(flat)
        offered_at.append(time.time())
    finish([engine])
    engine.transport.free()
    return Finished(engine, flat, started, offered_at, served_between_steps)


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


straggler_step_s = 10 * STEP_S  # until an uncompressed repeat has measured the others' pace
for repeat in range(repeats):
    variant = VARIANTS[repeat % len(VARIANTS)]
    seed = 100 + repeat
    before = mean_of(context("swarm", "ring", count=500, seed=seed)[2])
    done = run(variant, seed, straggler_step_s)
    engine, flat, offered_at = done.engine, done.flat, done.offered_at
    stats = comm.allgather((engine.stats.interactions, engine.stats.offers_served))
    expected = [1 if variant == "early-finisher" and r == 0 else interactions for r in range(size)]
    check([s[0] for s in stats] == expected, f"{variant}: interactions {stats}, expected {expected}")
    check(sum(s[0] for s in stats) == sum(s[1] for s in stats), f"{variant}: offers ≠ served {stats}")
    if variant == "uncompressed":
        error = float(np.abs(mean_of(flat) - before).max())
        check(error < 1e-6, f"repeat {repeat}: the mean moved by {error:.3g}")
        # wall time per local step, waiting and contention included; the same on every rank
        pace = comm.allgather((offered_at[-1] - done.started) / engine.steps)
        straggler_step_s = 10 * max(STEP_S, float(np.median(pace)))
    if variant == "compressed":
        check(comm.allreduce(references_match(engine)) == size, f"repeat {repeat}: references differ")
    if variant == "early-finisher" and rank == 0:
        check(engine.stats.offers_served > 0, "the early finisher served nobody: nothing was in flight")
    finished = comm.allgather(offered_at[-1])
    if variant == "straggler" and rank == 0:
        between, served = done.served_between_steps, engine.stats.offers_served
        # about a third of them in practice; lockstep rounds would answer none there
        check(
            between > 0,
            f"repeat {repeat}: the straggler answered none of the {served} offers it served between its "
            "own local steps: the others waited for its offers",
        )
    if variant == "straggler" and rank == 0 and size >= 3:
        # the straggler's own offers made by the time the typical other rank had made all of its own
        made = sum(t <= float(np.median(finished[1:])) for t in offered_at) / len(offered_at)
        check(made <= 0.5, f"repeat {repeat}: the others waited for the straggler ({made:.0%} of its offers)")
    comm.Barrier()
if rank == 0:
    print(f"ok {repeats} repeats on {size} ranks")
