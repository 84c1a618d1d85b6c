"""allreduce with one local step per round equals single-process SGD on the concatenated batch.

Every rank draws its own mini-batches; the reference model, run on every rank,
takes one step per round on all ranks' batches of that step put together.
"""

import numpy as np
from _common import check, comm, context, rank, size, step_on_all_batches
from mpi4py import MPI

from fedgossip.local.batches import BatchStream
from fedgossip.local.flat import FlatParameters
from fedgossip.local.models.base import build_model
from fedgossip.local.optim import make_lr_schedule, make_optimizer
from fedgossip.local.trainer import LocalTrainer

FEATURES, CLASSES, BATCH, STEPS = 20, 4, 16, 30
rng = np.random.default_rng([7, rank])  # every rank holds different data
x = rng.normal(size=(4 * BATCH, FEATURES)).astype(np.float32)
y = rng.integers(0, CLASSES, size=4 * BATCH).astype(np.int64)


def node(model_seed: int):
    model = build_model("mlp:hidden=16", (FEATURES,), CLASSES, model_seed)
    params = FlatParameters(model)
    optimizer = make_optimizer("sgd", model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    return model, params, optimizer, make_lr_schedule("cosine", optimizer, STEPS)


model, params, optimizer, schedule = node(0)
stream = BatchStream(x, y, BATCH, seed=[1, rank])
seen = []
draw = stream.next_batch
stream.next_batch = lambda: seen.append(draw()) or seen[-1]  # record what each step trained on
trainer = LocalTrainer(model, params, optimizer, schedule, stream)
algorithm, ctx, _ = context("allreduce", count=params.numel)
algorithm.setup(ctx, params.flat)

ref_model, ref_params, ref_optimizer, ref_schedule = node(0)
for step in range(1, STEPS + 1):
    trainer.run(1)
    algorithm.communicate(params.flat, step)
    step_on_all_batches(ref_model, ref_params, ref_optimizer, ref_schedule, seen[-1])

difference = float((params.flat - ref_params.flat).abs().max())
check(difference < 1e-5, f"allreduce H=1 differs from large-batch SGD by {difference:.3g}")
moved = float((ref_params.flat - node(0)[1].flat).abs().max())
check(moved > 1e-3, f"the models barely moved ({moved:.3g}): the comparison would prove nothing")
# counted as a ring allreduce sends and receives: 2·(n−1)/n of the float32 buffer per round
per_round = 4 * (2 * (size - 1) * params.numel // size)
totals = ctx.traffic.totals()
counted = (totals["bytes_sent"], totals["bytes_received"])
check(counted == (STEPS * per_round,) * 2, f"counted {counted}, expected {STEPS * per_round} each way")
difference = comm.allreduce(difference, op=MPI.MAX)
if rank == 0:
    print(f"ok max difference {difference:.3g}")
