"""comp-ams with a biased compressor: per-step error feedback, the common mean, identical models.

argv: compressor, steps. At every step each rank checks, independently of the
algorithm's code path, that (1) its residual obeys e' = g + e − C(g + e) and
e' + C(g + e) = g + e, and (2) the gradient handed to the optimizer is the mean
over ranks of C(g_r + e_r). At the end every rank's model must equal rank 0's
bit for bit. The compressors used here are deterministic, so C can be
recomputed from the compressor alone.
"""

import sys

import numpy as np
import torch
from _common import check, comm, context, rank, size

from fedgossip.local.batches import BatchStream
from fedgossip.local.flat import FlatParameters
from fedgossip.local.models.base import build_model
from fedgossip.local.optim import make_lr_schedule, make_optimizer
from fedgossip.local.trainer import LocalTrainer

compressor_spec, steps = sys.argv[1], int(sys.argv[2])
FEATURES, CLASSES, BATCH = 20, 4, 16
rng = np.random.default_rng([11, rank])  # every rank holds different data
x = rng.normal(size=(8 * BATCH, FEATURES)).astype(np.float32)
y = rng.integers(0, CLASSES, size=8 * BATCH).astype(np.int64)

model = build_model("mlp:hidden=32", (FEATURES,), CLASSES, 0)
params = FlatParameters(model)
algorithm, ctx, _ = context("comp-ams", count=params.numel, compressor=compressor_spec)
algorithm.setup(ctx, params.flat)
compressor = ctx.codec.compressor
check(algorithm.feedback.enabled, f"error feedback is off for the biased {compressor_spec}")


def checked_reduce(grad: torch.Tensor) -> None:
    g, e_old = grad.clone(), algorithm.feedback.residual.clone()
    algorithm.reduce_gradient(grad)
    target = g + e_old
    own = compressor.decode(compressor.encode(target, 0))
    e_new = algorithm.feedback.residual
    step = algorithm.steps
    check(torch.equal(e_new, target - own), f"step {step}: residual is not (g + e) − C(g + e)")
    error = float((e_new + own - target).abs().max())
    check(
        error <= 1e-6 * (1 + float(target.abs().max())), f"step {step}: e' + C(g + e) ≠ g + e ({error:.3g})"
    )
    everyone = np.empty((size, own.numel()), dtype=np.float32)
    comm.Allgather(own.numpy(), everyone)
    mean = torch.zeros_like(own)
    for decoded in everyone:
        mean += torch.from_numpy(decoded)
    mean /= size
    check(
        torch.equal(grad, mean), f"step {step}: the gradient applied is not the mean of the compressed ones"
    )


optimizer = make_optimizer("amsgrad", model.parameters(), lr=0.01)
schedule = make_lr_schedule("constant", optimizer, steps)
stream = BatchStream(x, y, BATCH, seed=[1, rank])
trainer = LocalTrainer(model, params, optimizer, schedule, stream, gradient_hook=checked_reduce)
first = trainer.run(steps // 2)
second = trainer.run(steps - steps // 2)

models = np.empty((size, params.numel), dtype=np.float32)
comm.Allgather(params.flat.numpy(), models)
check(all(np.array_equal(models[0], m) for m in models), "models differ across ranks")
check(float(algorithm.feedback.residual.abs().max()) > 0, "the residual stayed zero: nothing was dropped")
check(
    second.mean_loss < first.mean_loss, f"loss did not fall: {first.mean_loss:.4f} → {second.mean_loss:.4f}"
)
sent = ctx.traffic.bytes_sent
expected = (size - 1) * steps * ctx.codec.max_packet
check(sent == expected, f"counted {sent} bytes sent, expected {expected}")
received = ctx.traffic.bytes_received
check(received == expected, f"counted {received} bytes received, expected {expected}")
if rank == 0:
    print(f"ok {compressor_spec} {steps} steps, loss {first.mean_loss:.3f} → {second.mean_loss:.3f}")
