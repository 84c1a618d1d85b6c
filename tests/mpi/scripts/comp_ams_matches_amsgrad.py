"""comp-ams with no compression equals single-process AMSGrad on the concatenated batch.

Every rank draws its own mini-batches and steps through the real LocalTrainer
with the algorithm's gradient hook; the reference model, run on every rank,
takes one plain torch AMSGrad step per step on all ranks' batches put together.
"""

import numpy as np
import torch
from _common import check, comm, context, rank, step_on_all_batches
from mpi4py import MPI

from fedgossip.local.batches import BatchStream
from fedgossip.local.flat import FlatParameters
from fedgossip.local.models.base import build_model
from fedgossip.local.optim import make_lr_schedule, make_optimizer
from fedgossip.local.trainer import LocalTrainer

FEATURES, CLASSES, BATCH, STEPS = 20, 4, 16, 40
BETAS, EPS, LR, WEIGHT_DECAY = (0.8, 0.99), 1e-6, 0.01, 1e-3
rng = np.random.default_rng([7, rank])  # every rank holds different data
x = rng.normal(size=(4 * BATCH, FEATURES)).astype(np.float32)
y = rng.integers(0, CLASSES, size=4 * BATCH).astype(np.int64)


def torch_amsgrad(params):
    # the reference is torch's own AMSGrad, built directly, not through fedgossip's optimizer specs
    return torch.optim.Adam(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WEIGHT_DECAY, amsgrad=True)


def node():
    model = build_model("mlp:hidden=16", (FEATURES,), CLASSES, 0)
    return model, FlatParameters(model)


model, params = node()
algorithm, ctx, _ = context("comp-ams", count=params.numel)
algorithm.setup(ctx, params.flat)
optimizer = make_optimizer(
    f"amsgrad:beta1={BETAS[0]},beta2={BETAS[1]},eps={EPS}", model.parameters(), LR, 0.0, WEIGHT_DECAY
)
schedule = make_lr_schedule("cosine", optimizer, STEPS)
stream = BatchStream(x, y, BATCH, seed=[1, rank])
seen = []
draw = stream.next_batch
stream.next_batch = lambda: seen.append(draw()) or seen[-1]  # record what each step trained on
trainer = LocalTrainer(model, params, optimizer, schedule, stream, gradient_hook=algorithm.reduce_gradient)

ref_model, ref_params = node()
ref_optimizer = torch_amsgrad(ref_model.parameters())
ref_schedule = make_lr_schedule("cosine", ref_optimizer, STEPS)
for _ in range(STEPS):
    trainer.run(1)
    step_on_all_batches(ref_model, ref_params, ref_optimizer, ref_schedule, seen[-1])

difference = float((params.flat - ref_params.flat).abs().max())
check(difference < 1e-5, f"comp-ams with none differs from single-process AMSGrad by {difference:.3g}")
moved = float((ref_params.flat - node()[1].flat).abs().max())
check(moved > 1e-2, f"the models barely moved ({moved:.3g}): the comparison would prove nothing")
difference = comm.allreduce(difference, op=MPI.MAX)
if rank == 0:
    print(f"ok max difference {difference:.3g}")
