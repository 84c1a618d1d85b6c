"""Private training under a real mpiexec: ε per node as the accountant says, budgets that stop in time."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedgossip.algorithms.base import round_rng
from fedgossip.data.manifest import Manifest
from fedgossip.privacy.accountant import RdpAccountant, default_delta
from fedgossip.records import read_metrics, read_run_json


def _shard_sizes(tmp_path, ranks: int) -> list[int]:
    """Return the shard sizes of the embedded default partition the run made in ``tmp_path``."""
    return [shard.size for shard in Manifest.read(tmp_path / "datasets" / f"digits-{ranks}").shards]


def _epsilon(noise: float, rate: float, steps: int, delta: float) -> float:
    accountant = RdpAccountant()
    accountant.spend(noise, rate, steps)
    return accountant.epsilon(delta)


def test_sync_budget_ends_the_run_before_any_node_passes_it(mpirun, fedgossip, tmp_path, summary_screen):
    noise, target, steps_per_round, batch = 2.0, 4.0, 5, 32
    options = [
        "--dp", f"dp-sgd:clip=1,noise={noise}", "--dp-target-epsilon", str(target),
        "--rounds", "80", "--local-steps", str(steps_per_round), "--eval-every", "3", "--name", "budget",
    ]  # fmt: skip
    done = mpirun(4, *fedgossip, "train", *options)
    assert done.returncode == 0, done.output
    run = tmp_path / "results" / "budget"
    sizes = _shard_sizes(tmp_path, 4)

    def epsilon(node: int, rounds: int) -> float:
        rate = min(1.0, batch / sizes[node])
        return _epsilon(noise, rate, rounds * steps_per_round, default_delta(sizes[node]))

    # The last round every node can afford, computed apart from the run.
    last = max(r for r in range(0, 81) if all(epsilon(i, r) <= target for i in range(4)))
    assert 0 < last < 80, "the settings must make the budget bind mid-run"
    record = read_run_json(run)
    assert record["status"] == "budget-exhausted"
    assert record["budget"]["round"] == last
    assert record["budget"]["nodes"] == [i for i in range(4) if epsilon(i, last + 1) > target]
    metrics = read_metrics(run)
    assert metrics["round"][-1] == last  # the stop is evaluated even off the --eval-every grid
    recorded = metrics["epsilon"]
    np.testing.assert_allclose(recorded[-1], [epsilon(i, last) for i in range(4)], rtol=1e-9)
    assert np.all(recorded <= target) and np.all(np.diff(recorded, axis=0) > 0)
    np.testing.assert_array_equal(metrics["dp_delta"][-1], [default_delta(n) for n in sizes])
    assert np.isnan(metrics["train_loss"]).all()  # raw-data losses never leave a private node
    summary = json.loads((run / "summary.json").read_text())
    assert summary["privacy"]["epsilon_max"] == pytest.approx(max(epsilon(i, last) for i in range(4)))
    shown = summary_screen(run)
    assert "budget-exhausted" in shown and f"training stopped after round {last}" in shown
    assert "ε spent" in shown and "sample-level" in shown


def test_async_nodes_past_their_budget_stop_training_and_keep_serving(
    mpirun, fedgossip, tmp_path, summary_screen
):
    noise, target, steps, batch, rounds = 2.0, 3.0, 4, 32, 40
    options = [
        "--algorithm", "swarm", "--async", "--dp", f"dp-sgd:clip=1,noise={noise}",
        "--dp-target-epsilon", str(target), "--rounds", str(rounds), "--local-steps", str(steps),
        "--eval-every", "10", "--name", "async-budget",
    ]  # fmt: skip
    done = mpirun(4, *fedgossip, "train", *options)
    assert done.returncode == 0, done.output  # a stopped node that stopped serving would hang the others
    run = tmp_path / "results" / "async-budget"
    sizes = _shard_sizes(tmp_path, 4)

    def affordable(node: int) -> int:
        rate = min(1.0, batch / sizes[node])
        delta = default_delta(sizes[node])
        return max(k for k in range(rounds + 1) if _epsilon(noise, rate, k * steps, delta) <= target)

    expected = [affordable(i) for i in range(4)]
    assert min(expected) < rounds, "the settings must make the budget bind for some node"
    metrics = read_metrics(run)
    np.testing.assert_array_equal(metrics["interactions"][-1], expected)
    np.testing.assert_array_equal(metrics["dp_stopped"][-1], [k < rounds for k in expected])
    assert np.all(metrics["epsilon"] <= target)
    # every offer made was answered by a neighbour, stopped or not
    assert metrics["offers_served"][-1].sum() == metrics["interactions"][-1].sum()
    assert read_run_json(run)["status"] == "completed"
    stopped = sum(k < rounds for k in expected)
    assert f"{stopped} of 4 nodes stopped training and kept serving" in summary_screen(run)


def test_deterministic_noise_repeats_and_os_noise_differs(mpirun, fedgossip, tmp_path):
    common = ["--dp", "dp-update:clip=0.5,noise=0.5", "--rounds", "4", "--local-steps", "3"]
    runs = {"a": ["--deterministic"], "b": ["--deterministic"], "c": []}
    for name, extra in runs.items():
        done = mpirun(2, *fedgossip, "train", *common, *extra, "--name", name)
        assert done.returncode == 0, done.output
    loss = {name: read_metrics(tmp_path / "results" / name)["test_loss"] for name in runs}
    np.testing.assert_array_equal(loss["a"], loss["b"])
    assert not np.array_equal(loss["a"], loss["c"])


def test_private_training_on_digits_still_learns(mpirun, fedgossip, tmp_path):
    options = ["--dp", "dp-sgd:clip=1,noise=0.8", "--rounds", "40", "--eval-every", "20", "--name", "learns"]
    done = mpirun(4, *fedgossip, "train", *options)
    assert done.returncode == 0, done.output
    summary = json.loads((tmp_path / "results" / "learns" / "summary.json").read_text())
    assert summary["final"]["avg_model_accuracy"] > 0.8  # 10 classes: chance is 0.1
    assert 0 < summary["privacy"]["epsilon_max"] < float("inf")


def test_fedavg_clients_pay_for_the_rounds_they_are_chosen_for(mpirun, fedgossip, tmp_path):
    noise, rounds = 1.0, 12
    options = [
        "--algorithm", "fedavg", "--client-fraction", "0.5", "--local-epochs", "1", "--lr", "0.05",
        "--dp", f"dp-update:clip=2,noise={noise}", "--rounds", str(rounds), "--eval-every", "6",
        "--name", "fl",
    ]  # fmt: skip
    done = mpirun(5, *fedgossip, "train", *options)
    assert done.returncode == 0, done.output
    metrics = read_metrics(tmp_path / "results" / "fl")
    sizes = [shard.size for shard in Manifest.read(tmp_path / "datasets" / "digits-4").shards]
    clients = metrics["epsilon"][-1][1:]  # rank 0 is the server, which holds no data
    assert np.isnan(metrics["epsilon"][-1][0])
    # Two of four clients a round, drawn from the run seed as fedavg does: a client pays one Gaussian
    # mechanism (rate 1: everybody knows who was chosen) for each round it trained in.
    chosen = [round_rng(0, r, 2).choice(np.arange(1, 5), size=2, replace=False) for r in range(1, rounds + 1)]
    rounds_in = [sum(client in c for c in chosen) for client in range(1, 5)]
    assert min(rounds_in) > 0 and max(rounds_in) < rounds
    expected = [_epsilon(noise, 1.0, k, default_delta(n)) for k, n in zip(rounds_in, sizes, strict=True)]
    np.testing.assert_allclose(clients, expected, rtol=1e-9)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--dp-delta", "1e-5"], "dp-delta applies to private training only; add --dp dp-sgd or"),
        (["--deterministic"], "deterministic applies to private training only"),
        (["--dp", "laplace"], "unknown privacy mechanism 'laplace'; known: dp-sgd, dp-update"),
        (
            ["--algorithm", "comp-ams", "--dp", "dp-update"],
            "--dp dp-update privatizes each round's model update, but comp-ams sends a gradient",
        ),
        (["--dp", "dp-sgd:clip=0"], "invalid spec 'dp-sgd:clip=0': clip='0': must be > 0"),
    ],
)
def test_bad_privacy_settings_stop_every_rank_with_one_message(mpirun, fedgossip, options, message):
    done = mpirun(2, *fedgossip, "train", *options, "--rounds", "2")
    assert done.returncode == 1, done.output
    assert done.stderr.count(message) == 1, done.stderr
