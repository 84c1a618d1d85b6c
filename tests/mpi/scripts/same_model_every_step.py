"""An algorithm that exchanges gradients keeps every rank's model identical (argv: spec, compressor, steps).

Every rank trains on different data from the same initial model; after every optimizer step
(every gradient exchange) all ranks' models must be equal bit for bit, since each applies the
same averaged gradient (comp-ams: Li, Karimi & Li 2022, Algorithm 2).
"""

import sys

import numpy as np
from _common import check, comm, context, rank, size
from mpi4py import MPI

from fedgossip.local.batches import BatchStream
from fedgossip.local.flat import FlatParameters
from fedgossip.local.models.base import build_model
from fedgossip.local.optim import make_lr_schedule, make_optimizer
from fedgossip.local.trainer import LocalTrainer

spec, compressor, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
FEATURES, CLASSES, BATCH = 12, 3, 8
data = np.random.default_rng([13, rank])  # every rank holds different data
x = data.normal(size=(4 * BATCH, FEATURES)).astype(np.float32)
y = data.integers(0, CLASSES, size=4 * BATCH).astype(np.int64)

model = build_model("mlp:hidden=16", (FEATURES,), CLASSES, 0)  # the same seed: the same start everywhere
params = FlatParameters(model)
algorithm, ctx, _ = context(spec, count=params.numel, compressor=compressor)
algorithm.setup(ctx, params.flat)
optimizer = make_optimizer("amsgrad", model.parameters(), lr=0.01)
trainer = LocalTrainer(
    model,
    params,
    optimizer,
    make_lr_schedule("constant", optimizer, steps),
    BatchStream(x, y, BATCH, seed=[1, rank]),
    gradient_hook=algorithm.reduce_gradient,
)
models = np.empty((size, params.numel), dtype=np.float32)
start = params.flat.clone()
for step in range(1, steps + 1):
    trainer.run(1)
    comm.Allgather([params.flat.numpy(), MPI.FLOAT], [models, MPI.FLOAT])
    check(bool((models == models[0]).all()), f"{spec}: the models differ after step {step}")
check(not bool((params.flat == start).all()), f"{spec}: the model never moved")
if rank == 0:
    print(f"ok {spec} {compressor}: one model on {size} ranks after each of {steps} steps")
