"""Checkpointed state: saved, sent through torch.save, loaded into a fresh object, it goes on identically."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import torch
from mpi4py import MPI

from fedgossip.algorithms import ALGORITHMS, GossipContext
from fedgossip.comm.codec import Codec
from fedgossip.comm.conversation import Exchange
from fedgossip.comm.traffic import Traffic
from fedgossip.compress import COMPRESSORS
from fedgossip.compress.wire import HEADER_SIZE, unframe
from fedgossip.local.batches import BatchStream
from fedgossip.local.flat import FlatParameters
from fedgossip.local.models import build_model
from fedgossip.local.optim import make_lr_schedule, make_optimizer
from fedgossip.local.trainer import LocalTrainer
from fedgossip.plugins.base import PluginHost
from fedgossip.plugins.filtering import ImportanceFilter
from fedgossip.plugins.share_data import ShareData
from fedgossip.privacy.accountant import RdpAccountant
from fedgossip.privacy.dp_update import DpUpdate
from fedgossip.privacy.node import NodePrivacy
from fedgossip.topology.base import make_topology

torch.set_num_threads(1)

COUNT = 40  # model values of the algorithm tests


# --- the disk round trip, and exact comparison ---


def _to_tensors(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"__ndarray__": torch.from_numpy(value.copy())}
    if isinstance(value, dict):
        return {key: _to_tensors(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_to_tensors(item) for item in value]
    return value


def _to_numpy(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__ndarray__"}:
            return value["__ndarray__"].numpy()
        return {key: _to_numpy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_numpy(item) for item in value]
    return value


def through_disk(state: Any) -> Any:
    """Return ``state`` as torch.save and torch.load(weights_only=True) give it back, arrays included."""
    buffer = io.BytesIO()
    torch.save(_to_tensors(state), buffer)
    buffer.seek(0)
    return _to_numpy(torch.load(buffer, weights_only=True))


def assert_same(a: Any, b: Any) -> None:
    """Assert ``a`` and ``b`` are equal to the bit: tensors and arrays elementwise, the rest with ==."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b)
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    else:
        assert a == b


def _shard(n: int, seed: int = 0, features: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Return Gaussian blobs, one per class of 4, easy enough for a linear model."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = 6.0 * np.eye(4, features)[y] + rng.normal(0.0, 0.5, (n, features))
    return x.astype(np.float32), y.astype(np.int64)


# --- data stream, trainer, traffic, codec ---


def test_stream_resumes_mid_epoch_with_extra_and_hidden_samples():
    x, y = _shard(10)
    stream = BatchStream(x, y, batch_size=3, seed=(0, 0))
    stream.next_batch()
    stream.set_extra(*_shard(4, seed=1))  # ends epoch 0; generation 1
    stream.next_batch()
    stream.hide(np.array([1, 5, 11]))  # from the next epoch on
    stream.next_batch()
    state = through_disk(stream.state_dict())

    restored = BatchStream(x, y, batch_size=3, seed=(9, 9))
    restored.load_state_dict(state)
    assert (restored.num_samples, restored.generation, restored.epoch) == (14, 1, 1)
    assert (restored.steps_per_epoch, restored.visible_samples) == (stream.steps_per_epoch, 11)
    for a, b in zip(stream.full_batch(), restored.full_batch(), strict=True):
        assert torch.equal(a, b)
    for _ in range(12):  # past two epoch starts, which draw from the restored generator
        for a, b in zip(stream.next_batch(), restored.next_batch(), strict=True):
            assert torch.equal(a, b)
    assert_same(stream.state_dict(), restored.state_dict())


def _trainer(stream: BatchStream | None = None) -> LocalTrainer:
    """Return SGD with momentum and a cosine schedule on a linear model, over ``stream`` or a fresh one."""
    stream = stream or BatchStream(*_shard(50), batch_size=8, seed=(0, 0))
    model = build_model("logreg", (8,), 4, seed=0)
    optimizer = make_optimizer("sgd", model.parameters(), lr=0.3, momentum=0.9)
    schedule = make_lr_schedule("cosine", optimizer, 200)
    return LocalTrainer(model, FlatParameters(model), optimizer, schedule, stream)


def _trainer_state(trainer: LocalTrainer) -> dict[str, Any]:
    return {
        "trainer": trainer.state_dict(),
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "schedule": trainer.schedule.state_dict(),
        "stream": trainer.stream.state_dict(),
    }


def test_trainer_resumes_with_its_scaled_rate_schedule_and_momentum():
    trainer = _trainer()
    trainer.run(3)
    trainer.set_lr_scale(1.25)
    trainer.run(4)
    state = through_disk(_trainer_state(trainer))

    restored = _trainer(BatchStream(*_shard(50), batch_size=8, seed=(5, 0)))
    restored.load_state_dict(state["trainer"])
    assert restored.optimizer.param_groups[0]["lr"] == 0.3  # the rates come from the optimizer's state
    restored.model.load_state_dict(state["model"])
    restored.optimizer.load_state_dict(state["optimizer"])
    restored.schedule.load_state_dict(state["schedule"])
    restored.stream.load_state_dict(state["stream"])
    assert (restored.lr_scale, restored.total_steps) == (1.25, 7)
    for steps, scale in ((3, 2.0), (5, 1.0), (2, 1.5)):
        trainer.set_lr_scale(scale)
        restored.set_lr_scale(scale)
        assert trainer.run(steps).loss_sum == restored.run(steps).loss_sum
        assert trainer.optimizer.param_groups[0]["lr"] == restored.optimizer.param_groups[0]["lr"]
        assert torch.equal(trainer.flat.flat, restored.flat.flat)


def test_trainer_state_names_its_keys():
    with pytest.raises(ValueError, match="trainer state has keys"):
        _trainer().load_state_dict({"lr_scale": 1.0})


def test_traffic_counters_go_on_from_the_checkpoint():
    traffic = Traffic()
    traffic.record_send(1, 120, 25)
    traffic.record_receive(3, 80)
    traffic.record_collective(64, 16)
    traffic.record_data_send(2, 300)
    traffic.record_data_receive(2, 310)
    traffic.comm_seconds, traffic.link_seconds = 0.125, 0.5
    restored = Traffic()
    restored.load_state_dict(through_disk(traffic.state_dict()))
    for counter in (traffic, restored):
        counter.record_send(2, 40, 5)
        counter.record_data_receive(1, 7)
    assert_same(traffic.state_dict(), restored.state_dict())
    assert traffic.totals() == restored.totals()
    with pytest.raises(ValueError, match="traffic state has keys"):
        Traffic().load_state_dict({"bytes_sent": 1})


def test_traffic_of_a_checkpoint_with_per_rank_arrays_resumes_as_totals():
    """Checkpoints written before nodes shared a process kept one counter per rank."""
    old = Traffic().state_dict()
    del old["bytes_within"]
    old.update(bytes_sent=np.array([0, 120, 40]), bytes_received=np.array([80, 0, 0]))
    old.update(data_bytes_sent=np.array([0, 0, 300]), data_bytes_received=np.array([0, 7, 310]))
    restored = Traffic()
    restored.load_state_dict(through_disk(old))
    assert (restored.bytes_sent, restored.bytes_received) == (160, 80)
    assert (restored.data_bytes_sent, restored.data_bytes_received, restored.bytes_within) == (300, 317, 0)


def test_traffic_counts_model_bytes_per_peer_node_and_keeps_them_through_a_checkpoint():
    traffic = Traffic()
    for peer, nbytes in [(7, 100), (2, 30), (7, 5), (1000, 1)]:
        traffic.record_send(peer, nbytes, 1, within=peer == 2)
    traffic.record_collective(64, 16)  # no single peer: in bytes_sent, not per peer
    traffic.record_data_send(2, 300)  # samples, not model bytes
    assert traffic.sent_to == {7: 105, 2: 30, 1000: 1}
    assert sum(traffic.sent_to.values()) == traffic.bytes_sent == traffic.totals()["bytes_sent"] - 64
    restored = Traffic()
    restored.load_state_dict(through_disk(traffic.state_dict()))
    assert restored.sent_to == {7: 105, 2: 30, 1000: 1}
    restored.record_send(2, 10, 1)
    assert restored.sent_to[2] == 40


def test_traffic_of_a_checkpoint_without_per_peer_counts_resumes_with_none():
    old = Traffic()
    old.record_send(3, 50, 1)
    state = old.state_dict()
    del state["sent_to_peer"], state["sent_to_bytes"]
    restored = Traffic()
    restored.load_state_dict(through_disk(state))
    assert (restored.bytes_sent, restored.sent_to) == (50, {})
    state.update(sent_to_peer=np.array([1, 2]), sent_to_bytes=np.array([5]))
    with pytest.raises(ValueError, match="2 peers but 1 per-peer byte counts"):
        Traffic().load_state_dict(state)


def test_codec_draws_the_same_stochastic_keys_after_restore():
    x = torch.linspace(-1, 1, 500)
    codec = Codec(COMPRESSORS.create("qsgd:bits=3"), 0, 500, seed=3)
    codec.pack(x)
    codec.seconds = 0.25
    state = through_disk(codec.state_dict())
    restored = Codec(COMPRESSORS.create("qsgd:bits=3"), 0, 500, seed=99)
    restored.load_state_dict(state)
    assert restored.seconds == 0.25
    for _ in range(3):
        assert np.array_equal(codec.pack(x)[0], restored.pack(x)[0])
    older = Codec(COMPRESSORS.create("qsgd:bits=3"), 0, 500)
    older.load_state_dict({"keys": state["keys"]})  # saved before seconds were kept
    assert older.seconds == 0.0


# --- privacy ---


def test_accountant_restores_the_summed_curve_bit_for_bit():
    accountant = RdpAccountant()
    # each setting recurs: a replay would charge its summed steps at once, another float sum
    for step in range(40):
        accountant.spend(1.1 - 0.2 * (step % 3), (0.01, 0.05, 0.02)[step % 3], 7 + step % 5)
    state = through_disk(accountant.state_dict())
    restored = RdpAccountant()
    restored.load_state_dict(state)
    assert_same(restored.state_dict(), accountant.state_dict())
    for accounting in (accountant, restored):
        accounting.spend(0.8, 0.03, 11)
    assert restored.epsilon(1e-5) == accountant.epsilon(1e-5)
    assert restored.steps == accountant.steps
    replayed = RdpAccountant()
    replayed.load_state_dict({"history": state["history"], "orders": state["orders"]})  # an older state
    assert replayed.steps == 40 * 7 + 2 * 40 and replayed.epsilon(1e-5) > 0


def _node(deterministic: bool) -> NodePrivacy:
    return NodePrivacy(DpUpdate(clip=1.0, noise=1.0), 400, 32, None, None, 3, 1, deterministic)


def _privatized_round(node: NodePrivacy, flat: torch.Tensor) -> None:
    node.train(flat, lambda: flat.add_(0.01))
    node.spend(5)


def test_deterministic_node_draws_the_same_noise_after_restore():
    node, flat = _node(deterministic=True), torch.zeros(COUNT)
    for _ in range(3):
        _privatized_round(node, flat)
    state = through_disk(node.state_dict())
    restored = _node(deterministic=True)
    generator = restored.generator
    restored.load_state_dict(state)
    assert restored.generator is generator  # restored in place: DP-SGD's gradient holds this object
    other = flat.clone()
    for _ in range(3):
        _privatized_round(node, flat)
        _privatized_round(restored, other)
        assert torch.equal(flat, other)
    assert restored.epsilon == node.epsilon


def test_os_seeded_node_saves_no_generator_state():
    node = _node(deterministic=False)
    _privatized_round(node, torch.zeros(COUNT))
    node.stopped = True
    state = through_disk(node.state_dict())
    assert state["generator"] is None  # the noise seed stays secret
    restored = _node(deterministic=False)
    restored.load_state_dict(state)
    assert restored.stopped and restored.epsilon == node.epsilon
    with pytest.raises(ValueError, match="saved without --deterministic"):
        _node(deterministic=True).load_state_dict(state)


# --- algorithms: this process plays one rank; the others send packets fixed by (peer, sequence) ---


class _World:
    """Stands in for the communicator: only rank and size are asked, the exchanges are faked."""

    def __init__(self, rank: int, size: int):
        self.rank, self.size = rank, size

    def Get_rank(self) -> int:
        return self.rank

    def Get_size(self) -> int:
        return self.size


class _Peers:
    """Stands in for a round of exchange: every peer sends a vector fixed by its rank and the sequence."""

    def __init__(self, ctx: GossipContext):
        self.ctx = ctx

    def exchange(self, outgoing: dict, incoming: list[int]) -> dict[int, np.ndarray]:
        codec, sequence = self.ctx.codec, 0
        if outgoing:
            buffer = next(iter(outgoing.values()))[0]
            header, _ = unframe(
                buffer, self.ctx.rank, codec.compressor.wire_id, COUNT, codec.max_packet - HEADER_SIZE
            )
            sequence = header.sequence
        received = {}
        for peer in incoming:
            vector = 0.1 * torch.sin(torch.arange(COUNT, dtype=torch.float32) * (peer + 1) + sequence)
            received[peer] = Codec(codec.compressor, peer, COUNT, seed=sequence).pack(vector, sequence)[0]
        return received


def _converse(ctx: GossipContext, conversation) -> None:
    """Answer a node's conversation as the network would, each Exchange by the fake peers."""
    peers = _Peers(ctx)
    request = next(conversation, None)
    while request is not None:
        assert isinstance(request, Exchange), request
        try:
            request = conversation.send(peers.exchange(request.outgoing, list(request.incoming)))
        except StopIteration:
            request = None


def _algorithm(name: str, compressor: str, rank: int = 0, size: int = 3, fraction: float = 1.0):
    """Set up ``name`` on ``rank`` of a ring of ``size``; return it with its model vector."""
    world = MPI.COMM_SELF if size == 1 else _World(rank, size)
    codec = Codec(COMPRESSORS.create(compressor), rank, COUNT, seed=1)
    graph = "star" if name == "fedavg" else "ring" if size > 1 else "complete"
    ctx = GossipContext(world, make_topology(graph, size, 0), codec, Traffic(), 1, np.ones(size))
    flat = torch.linspace(-1, 1, COUNT)
    algorithm = ALGORITHMS.create(f"fedavg:client_fraction={fraction}" if name == "fedavg" else name)
    algorithm.setup(ctx, flat)
    return algorithm, flat


def _local_work(flat: torch.Tensor, round_index: int) -> None:
    flat.add_(torch.cos(torch.arange(COUNT, dtype=torch.float32) * round_index), alpha=0.05)


def _rounds(algorithm, flat: torch.Tensor, rounds: range) -> None:
    for round_index in rounds:
        if algorithm.trains(algorithm.ctx.rank, round_index):
            _local_work(flat, round_index)
        _converse(algorithm.ctx, algorithm.conversation(flat, round_index))


@pytest.mark.parametrize(
    ("name", "compressor", "rank", "part"),
    [
        ("dpsgd", "qsgd:bits=3", 0, "copies"),
        ("swarm", "qsgd:bits=3", 0, "references"),
        ("fedavg", "topk:ratio=0.2", 0, "feedback"),  # the server's broadcast residual
        ("fedavg", "topk:ratio=0.2", 1, "feedback"),  # a client's uplink residual
    ],
)
def test_algorithm_resumes_the_same_rounds(name, compressor, rank, part):
    algorithm, flat = _algorithm(name, compressor, rank, fraction=0.5)
    _rounds(algorithm, flat, range(1, 6))
    state = through_disk({"algorithm": algorithm.state_dict(), "codec": algorithm.ctx.codec.state_dict()})
    assert part in state["algorithm"]
    restored, other = _algorithm(name, compressor, rank, fraction=0.5)
    restored.load_state_dict(state["algorithm"])
    restored.ctx.codec.load_state_dict(state["codec"])
    other.copy_(flat)  # the model is the loop's to restore
    assert_same(restored.state_dict(), algorithm.state_dict())
    for round_index in range(6, 12):
        _rounds(algorithm, flat, range(round_index, round_index + 1))
        _rounds(restored, other, range(round_index, round_index + 1))
        assert torch.equal(flat, other)
    assert_same(restored.state_dict(), algorithm.state_dict())


def test_uncompressed_dpsgd_saves_no_copies_and_resumes_from_the_model_alone():
    algorithm, flat = _algorithm("dpsgd", "none")
    _rounds(algorithm, flat, range(1, 6))
    state = through_disk(algorithm.state_dict())
    assert state == {"copies": None}  # exact averaging keeps no memory of past rounds
    restored, other = _algorithm("dpsgd", "none")  # a fresh rank that never ran rounds 1 to 5
    restored.load_state_dict(state)
    other.copy_(flat)
    neighbours = [0.1 * torch.sin(torch.arange(COUNT, dtype=torch.float32) * (peer + 1)) for peer in (1, 2)]
    for round_index in range(6, 12):
        expected = flat.clone()
        _local_work(expected, round_index)
        expected = (expected + neighbours[0] + neighbours[1]) / 3  # Metropolis weights on a ring of 3
        _rounds(algorithm, flat, range(round_index, round_index + 1))
        _rounds(restored, other, range(round_index, round_index + 1))
        assert torch.equal(flat, other)
        torch.testing.assert_close(flat, expected, rtol=0, atol=1e-6)
    assert restored.state_dict() == algorithm.state_dict() == {"copies": None}


@pytest.mark.parametrize("compressor", ["topk:ratio=0.1", "sign:block=8"])
def test_comp_ams_resumes_its_residual_and_sequence(compressor):
    algorithm, _ = _algorithm("comp-ams", compressor, size=1)
    rng = np.random.default_rng(0)
    gradients = [torch.from_numpy(rng.normal(size=COUNT).astype(np.float32)) for _ in range(8)]
    for grad in gradients[:4]:
        algorithm.reduce_gradient(grad.clone())
    state = through_disk({"algorithm": algorithm.state_dict(), "codec": algorithm.ctx.codec.state_dict()})
    assert state["algorithm"]["steps"] == 4
    restored, _ = _algorithm("comp-ams", compressor, size=1)
    restored.load_state_dict(state["algorithm"])
    restored.ctx.codec.load_state_dict(state["codec"])
    for grad in gradients[4:]:
        a, b = grad.clone(), grad.clone()
        algorithm.reduce_gradient(a)
        restored.reduce_gradient(b)
        assert torch.equal(a, b)
    assert_same(restored.state_dict(), algorithm.state_dict())


def test_allreduce_has_nothing_to_save():
    algorithm, _ = _algorithm("allreduce", "none", size=1)
    assert algorithm.state_dict() == {}
    algorithm.load_state_dict({})
    with pytest.raises(ValueError, match="allreduce state does not fit"):
        algorithm.load_state_dict({"global": torch.zeros(COUNT)})


def test_algorithm_state_of_another_run_is_refused_naming_each_difference():
    lossy, _ = _algorithm("dpsgd", "qsgd:bits=3")
    lossless, _ = _algorithm("dpsgd", "none")
    with pytest.raises(ValueError, match=r"dpsgd.copies is present in the checkpoint, absent in this run"):
        lossless.load_state_dict(lossy.state_dict())
    state = lossy.state_dict()
    state["copies"]["own"] = torch.zeros(COUNT + 1)
    del state["copies"]["sequence"]
    with pytest.raises(ValueError, match=r"copies has keys .*; dpsgd.copies.own has shape \(41,\)"):
        lossy.load_state_dict(state)


# --- plugins: restored from a checkpoint without exchanging, before the stream ---


class _NoComm:
    """A communicator that fails the test if anything is sent or received."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"restore communicated: comm.{name}")


def _host(comm: Any = MPI.COMM_SELF) -> PluginHost:
    x, y = _shard(60)
    stream = BatchStream(x, y, batch_size=8, seed=(0, 0))
    trainer = _trainer(stream)
    return PluginHost(
        comm,
        0,
        (1, 2),
        4,
        trainer.model,
        trainer.flat,
        stream,
        trainer,
        Traffic(),
        x,
        y,
        0,
        20,
        torch.device("cpu"),
    )


def test_share_data_and_filter_restore_without_exchanging_and_train_the_same():
    received = {1: _shard(5, seed=1), 2: _shard(3, seed=2)}
    saved_exchange = {
        "received_x": {peer: x for peer, (x, _) in received.items()},
        "received_y": {peer: y for peer, (_, y) in received.items()},
        "exchanges": 1,
        "rng": None,
    }
    host, share, hide = _host(_NoComm()), ShareData(every=0), ImportanceFilter(fraction=0.3, warmup=1)
    hide.start(host)
    share.restore(host, saved_exchange)  # stands in for start's exchange: serves 8 extra samples
    plugins = (share, hide)

    def rounds(host: PluginHost, plugins: tuple, first: int, count: int) -> list[np.ndarray]:
        served = []
        for round_index in range(first, first + count):
            steps = 6
            for plugin in plugins:
                steps = plugin.before_round(round_index, steps)
            for _ in range(steps):
                host.trainer.run(1)
                served.append(host.stream.last_indices.numpy().copy())
        return served

    rounds(host, plugins, 1, 5)
    assert host.stream.visible_samples < host.stream.num_samples == 68  # the filter hides by now
    state = through_disk(
        {"share": share.state_dict(), "hide": hide.state_dict(), **_trainer_state(host.trainer)}
    )

    fresh = _host(_NoComm())
    restored = (ShareData(every=0), ImportanceFilter(fraction=0.3, warmup=1))
    for plugin, key in zip(restored, ("share", "hide"), strict=True):
        plugin.restore(fresh, state[key])  # before the stream and the trainer, as the loop does
    assert fresh.trainer.lr_scale == 1.0  # the filter decided nothing
    fresh.stream.load_state_dict(state["stream"])
    fresh.trainer.load_state_dict(state["trainer"])
    fresh.model.load_state_dict(state["model"])
    fresh.trainer.optimizer.load_state_dict(state["optimizer"])
    fresh.trainer.schedule.load_state_dict(state["schedule"])
    assert fresh.stream.visible_samples == host.stream.visible_samples
    for plugin, twin in zip(plugins, restored, strict=True):
        assert plugin.values()[:3] == twin.values()[:3]

    for expected, served in zip(rounds(host, plugins, 6, 5), rounds(fresh, restored, 6, 5), strict=True):
        np.testing.assert_array_equal(served, expected)
    assert torch.equal(host.params.flat, fresh.params.flat)
    for plugin, twin in zip(plugins, restored, strict=True):
        assert_same(plugin.state_dict(), twin.state_dict())
    assert_same(host.stream.state_dict(), fresh.stream.state_dict())
