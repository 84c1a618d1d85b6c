"""``share-data`` on a ring: what arrives, where it came from, what it costs (argv: select bits budget every).

Rank r's shard is drawn from (SEED, r) with features centred on 10·r, so any rank can
regenerate a neighbour's shard and check that what it received is that neighbour's own
samples, quantized, with exact labels. Senders report the positions they chose (small
control data, pickled between these trusted test ranks); the payloads themselves are
the plugin's uint8 messages, which the plugin's conversations hand to the rank's
network, as a run does. Rank 0 prints one line ``RESULT {json}`` with every rank's
findings, which the pytest asserts on.
"""

import json
import sys
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import torch
from mpi4py import MPI
from torch.nn.functional import cross_entropy

from fedgossip.comm.network import NodeNetwork
from fedgossip.comm.placement import Placement
from fedgossip.comm.traffic import Traffic
from fedgossip.local.batches import BatchStream
from fedgossip.local.flat import FlatParameters
from fedgossip.local.models.base import build_model
from fedgossip.local.optim import make_lr_schedule, make_optimizer
from fedgossip.local.trainer import LocalTrainer
from fedgossip.plugins import PLUGINS, PluginHost

select, bits, budget, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
SEED, CLASSES, SHAPE, BLOCK = 11, 5, (2, 6), 1024
FEATURES = int(np.prod(SHAPE))
torch.set_num_threads(1)


def shard(node: int) -> tuple[np.ndarray, np.ndarray]:
    """Return node's own samples: fewer on the last rank, so some shards hold less than the budget."""
    n = 6 if node == size - 1 else 20
    rng = np.random.default_rng([SEED, node])
    return (rng.normal(size=(n, *SHAPE)) + 10 * node).astype(np.float32), rng.integers(0, CLASSES, n)


def expected_size(count: int) -> int:
    """The documented message size: header, uint8 labels, packet header, block scales, packed codes."""
    values = count * FEATURES
    return 24 + count + 52 + 8 * -(-values // BLOCK) + -(-values * bits // 8)


def half_steps(x: np.ndarray) -> np.ndarray:
    """Half the quantization step of each value's block, from the original values."""
    flat = x.reshape(-1).astype(np.float64)
    half = np.empty_like(flat)
    for start in range(0, flat.size, BLOCK):
        part = flat[start : start + BLOCK]
        half[start : start + BLOCK] = (part.max() - part.min()) / ((1 << bits) - 1) / 2
    return half.reshape(x.shape)


def losses_of(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each own sample's cross-entropy under the current model, in one pass (the plugin uses chunks)."""
    model.eval()
    with torch.no_grad():
        loss = cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y), reduction="none").numpy()
    model.train()
    return loss


x, y = shard(rank)
neighbors = ((rank - 1) % size, (rank + 1) % size)
model = build_model("mlp:hidden=16", SHAPE, CLASSES, seed=SEED)
flat = FlatParameters(model)
optimizer = make_optimizer("sgd", model.parameters(), lr=0.2)
stream = BatchStream(x, y, 4, seed=[SEED, rank])
trainer = LocalTrainer(model, flat, optimizer, make_lr_schedule("constant", optimizer, 100), stream)
host = PluginHost(
    comm,
    rank,
    neighbors,
    CLASSES,
    model,
    flat,
    stream,
    trainer,
    Traffic(),
    x,
    y,
    SEED,
    10,
    torch.device("cpu"),
)
network = NodeNetwork(comm, Placement(size, size), max_bytes=0)  # model packets: none in this test
network.attach(rank, host.traffic)
plugin = PLUGINS.create(f"share-data:budget={budget},bits={bits},select={select},every={every}")
plugin.check(SimpleNamespace(server=None), SimpleNamespace(asynchronous=False), None)
sent_bytes = {peer: 0 for peer in neighbors}  # what the messages cost, by the documented formula
received_bytes = {peer: 0 for peer in neighbors}


def inspect(losses: np.ndarray) -> dict:
    """Check the exchange just done, from this rank's side as sender and as receiver."""
    count = min(budget, len(y))
    chosen = {peer: np.asarray(plugin.sent_indices[peer]) for peer in neighbors}
    found = {
        "sent": {str(p): len(chosen[p]) for p in neighbors},
        "sent_distinct_and_in_shard": all(
            len(set(c.tolist())) == len(c) == count and c.min() >= 0 and c.max() < len(y)
            for c in chosen.values()
        ),
    }
    if select == "loss":
        # The chosen samples are the hardest: none left behind has a higher loss (float slack for chunking).
        c = chosen[neighbors[0]]
        left = np.setdiff1d(np.arange(len(y)), c)
        found["same_for_every_neighbour"] = all(np.array_equal(c, chosen[p]) for p in neighbors)
        found["loss_gap"] = float(losses[c].min() - losses[left].max()) if len(left) else None
        found["highest_first"] = bool(np.all(np.diff(losses[c]) <= 1e-6))
    reports = comm.allgather({p: chosen[p].tolist() for p in neighbors})
    state = plugin.state_dict()
    received, errors, provenance, labels_exact = {}, [], True, True
    for peer in neighbors:
        rx, ry = state["received_x"][peer], state["received_y"][peer]
        positions = np.asarray(reports[peer][rank], dtype=np.int64)  # what peer says it sent to this rank
        px, py = shard(peer)
        received[str(peer)] = len(ry)
        labels_exact &= bool(np.array_equal(ry, py[positions]))
        provenance &= len(ry) == len(positions) and abs(float(rx.mean()) - 10 * peer) < 3
        # Within half a step of the peer's originals, plus float32 rounding of values up to ~35.
        bound = half_steps(px[positions]) + 1e-5 * (1 + np.abs(px[positions]))
        errors.append(float(np.max(np.abs(rx - px[positions]) / bound)) if len(ry) else 0.0)
        sent_bytes[peer] += expected_size(len(chosen[peer]))
        received_bytes[peer] += expected_size(len(positions))
    tail_x, tail_y = (t.numpy() for t in stream.full_batch())
    order = sorted(neighbors)
    traffic = host.traffic
    found.update(
        received=received,
        labels_exact=labels_exact,
        provenance=bool(provenance),
        max_error_over_bound=max(errors),
        stream_samples=stream.num_samples,
        own_samples=len(y),
        stream_tail_is_received=bool(
            np.array_equal(tail_x[len(y) :], np.concatenate([state["received_x"][p] for p in order]))
            and np.array_equal(tail_y[len(y) :], np.concatenate([state["received_y"][p] for p in order]))
        ),
        data_bytes_sent=int(traffic.data_bytes_sent),
        data_bytes_received=int(traffic.data_bytes_received),
        expected_bytes_sent=sum(sent_bytes[p] for p in neighbors),
        expected_bytes_received=sum(received_bytes[p] for p in neighbors),
        model_bytes=int(traffic.bytes_sent + traffic.bytes_received + traffic.collective_bytes),
        fp32_bytes=int(traffic.fp32_bytes_sent),
        values=list(plugin.values()),
        model_left_in_train_mode=model.training,
    )
    return found


def talk(round_index: int) -> None:
    """Run the plugin's conversation before ``round_index`` as the synchronous schedule does."""
    conversation = plugin.conversation(round_index)
    network.converse({rank: conversation} if conversation is not None else {})  # every rank calls it


exchanges = []
plugin.start(host)
exchange_rounds, steps_kept = [], True
for round_index in range(1, (every or 2) + 2):
    before = int(host.traffic.data_bytes_sent)
    losses = losses_of(model, x, y)
    talk(round_index)
    steps_kept &= plugin.before_round(round_index, 5) == 5
    if host.traffic.data_bytes_sent != before:
        exchange_rounds.append(round_index)
        exchanges.append({"round": round_index, **inspect(losses)})
    if round_index == 1 and select == "random":  # drawn from (seed, rank, 8), in neighbour order
        rng = np.random.default_rng([SEED, rank, 8])
        draws = [rng.choice(len(y), size=min(budget, len(y)), replace=False) for _ in neighbors]
        exchanges[0]["seeded_draws"] = all(
            np.array_equal(d, plugin.sent_indices[p]) for d, p in zip(draws, neighbors, strict=True)
        )
    trainer.run(5)  # the model moves, so the next loss-based selection may differ

# A checkpoint of the plugin, restored into one attached to a fresh stream, serves the same samples.
restored = PLUGINS.create(plugin.spec)
fresh = replace(host, stream=BatchStream(x, y, 4, seed=[SEED, rank]), traffic=Traffic())
restored.start(fresh)  # attaches without a message: the checkpoint holds what neighbours sent
restored.load_state_dict(plugin.state_dict())
restored_ok = bool(
    all(torch.equal(a, b) for a, b in zip(fresh.stream.full_batch(), stream.full_batch(), strict=True))
    and restored.values() == plugin.values()
    and restored.state_dict()["rng"] == plugin.state_dict()["rng"]
)

found = {
    "rank": rank,
    "exchange_rounds": exchange_rounds,
    "steps_kept": bool(steps_kept),
    "restored": restored_ok,
    "exchanges": exchanges,
}
everything = comm.gather(found, root=0)
if rank == 0:
    print("RESULT " + json.dumps({"size": size, "ranks": everything}), flush=True)
network.free()
