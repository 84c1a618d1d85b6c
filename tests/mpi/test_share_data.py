"""``share-data``: what it refuses, and on a real 4-rank ring what arrives, from whom, and what it costs."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from fedgossip.errors import ConfigError
from fedgossip.plugins import PLUGINS
from fedgossip.plugins.sample_packets import message_size
from fedgossip.plugins.share_data import ShareData

DECENTRALIZED = SimpleNamespace(name="dpsgd", server=None)
SYNCHRONOUS = SimpleNamespace(asynchronous=False)


def test_is_registered_with_its_defaults():
    plugin = PLUGINS.create("share-data")
    assert isinstance(plugin, ShareData)
    assert plugin.spec == "share-data:budget=32,bits=8,select=loss,every=0"
    assert plugin.kind == "share-data" and plugin.shares_raw_data and plugin.metrics == ("shared_samples",)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("share-data:budget=0", "budget"),
        ("share-data:bits=9", "bits"),
        ("share-data:bits=0", "bits"),
        ("share-data:select=gradient", "select"),
        ("share-data:every=-1", "every"),
    ],
)
def test_bad_parameters_are_refused(spec, match):
    with pytest.raises(ConfigError, match=match):
        PLUGINS.create(spec)


def test_direct_construction_checks_like_a_spec():
    with pytest.raises(ConfigError, match="budget"):
        ShareData(budget=0)


def test_an_algorithm_with_a_server_is_refused():
    with pytest.raises(ConfigError, match="fedavg has a server"):
        ShareData().check(SimpleNamespace(name="fedavg", server=0), SYNCHRONOUS, None)


def test_every_problem_is_reported_at_once():
    fedavg = SimpleNamespace(name="fedavg", server=0)
    with pytest.raises(ConfigError, match=r"server.*--link"):
        ShareData().check(fedavg, SimpleNamespace(asynchronous=False, link="latency=5ms"), None)


def test_decentralized_synchronous_runs_are_accepted():
    ShareData().check(DECENTRALIZED, SYNCHRONOUS, None)


def test_a_message_beyond_the_budget_is_refused_before_it_is_read(mpirun, script):
    done = mpirun(2, *script("share_data_oversized.py"), timeout=120)
    assert done.returncode == 0, done.output
    limit = message_size(5, 4, 2, 3)
    assert f"REFUSED rank 1 sent a {limit + 1000}-byte packet; at most {limit} were expected" in done.stdout
    assert "RECEIVED 0" in done.stdout, done.output


RING = 4


def _ranks(mpirun, script, select, bits, budget, every) -> list[dict]:
    """Return every rank's findings, in rank order; fail unless all the ranks of the ring reported."""
    done = mpirun(RING, *script("share_data_exchange.py"), select, bits, budget, every, timeout=180)
    assert done.returncode == 0, done.output
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    result = json.loads(line.removeprefix("RESULT "))
    assert result["size"] == RING
    reported = [node["rank"] for node in result["ranks"]]
    assert reported == list(range(RING)), f"ranks {reported} reported, expected one line from each of 0..3"
    return result["ranks"]


@pytest.mark.parametrize(
    ("select", "bits", "budget", "every", "rounds"),
    [
        ("loss", 8, 8, 2, [1, 3]),  # rank 3 holds 6 samples: it sends all it has
        ("random", 3, 8, 3, [1, 4]),
        ("loss", 1, 4, 0, [1]),  # every=0: only before round 1
    ],
)
def test_ring_neighbours_train_on_each_others_quantized_samples(
    mpirun, script, select, bits, budget, every, rounds
):
    for node in _ranks(mpirun, script, select, str(bits), str(budget), str(every)):
        where = f"rank {node['rank']}"
        ring = {str((node["rank"] - 1) % RING), str((node["rank"] + 1) % RING)}
        assert node["exchange_rounds"] == rounds, where
        assert [exchange["round"] for exchange in node["exchanges"]] == rounds, where
        assert node["steps_kept"], f"{where}: before_round changed the number of steps"
        assert node["restored"], f"{where}: a restored checkpoint serves other samples"
        for exchange in node["exchanges"]:
            where = f"rank {node['rank']}, exchange of round {exchange['round']}"
            own = exchange["own_samples"]
            assert set(exchange["sent"]) == set(exchange["received"]) == ring, f"{where}: not its neighbours"
            assert exchange["sent_distinct_and_in_shard"], where
            assert set(exchange["sent"].values()) == {min(budget, own)}, where
            assert all(0 < count <= budget for count in exchange["received"].values()), where
            assert exchange["labels_exact"], where
            assert exchange["provenance"], f"{where}: samples do not come from the neighbour's own shard"
            assert exchange["max_error_over_bound"] <= 1, f"{where}: beyond half a quantization step"
            received = sum(exchange["received"].values())
            assert exchange["stream_samples"] == own + received, where
            assert exchange["stream_tail_is_received"], where
            assert exchange["values"] == [received], where
            assert exchange["data_bytes_sent"] == exchange["expected_bytes_sent"], where
            assert exchange["data_bytes_received"] == exchange["expected_bytes_received"], where
            assert exchange["model_bytes"] == 0 and exchange["fp32_bytes"] == 0, f"{where}: counted as model"
            assert exchange["model_left_in_train_mode"], where
            if select == "loss":
                assert exchange["same_for_every_neighbour"], where
                assert exchange["highest_first"], where
                # None: the whole shard fits the budget; else no sample left behind is harder
                assert exchange["loss_gap"] is None or exchange["loss_gap"] >= -1e-5, where
            elif exchange["round"] == 1:
                assert exchange["seeded_draws"], f"{where}: not drawn from (seed, rank, 8)"
