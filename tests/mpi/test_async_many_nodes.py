"""Asynchronous swarm with many nodes per rank: co-hosted pairs in memory, the others by MPI offers."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from fedgossip.records import read_metrics, read_run_json, update_run_status
from fedgossip.records.checkpoint import latest_checkpoint

NODES, ROUNDS = 8, 12
ASYNC = ("--nodes", str(NODES), "--algorithm", "swarm", "--async", "--local-steps", "geometric:mean=2")


@pytest.mark.parametrize(
    ("ranks", "nodes", "topology"), [(1, 8, "ring"), (2, 8, "ring"), (3, 8, "erdos-renyi:p=0.5")]
)
def test_co_hosted_async_gossip_preserves_the_mean_and_keeps_both_ends_of_every_edge(
    mpirun, script, ranks, nodes, topology
):
    # random models, uncompressed then qsgd 4-bit, nodes driven as the schedule drives them
    done = mpirun(ranks, *script("async_cohosted.py"), nodes, 20, topology, timeout=200)
    assert done.returncode == 0, done.output[-5000:]
    assert f"ok {nodes} nodes on {ranks} ranks" in done.stdout


def _train(mpirun, fedgossip, run_dir, ranks: int, *options: str) -> dict[str, np.ndarray]:
    """Train the job on ``ranks`` ranks, check what holds on every placement, return the last evaluation."""
    done = mpirun(ranks, *fedgossip, "train", *ASYNC, *options, "--rounds", str(ROUNDS), "--eval-every", "4",
                  "--name", run_dir.name, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.output[-5000:]
    metrics = read_metrics(run_dir)
    assert metrics["test_accuracy"].shape == (3, NODES)  # one column per node
    np.testing.assert_array_equal(metrics["round"], [4, 8, 12])
    last = {name: values[-1] for name, values in metrics.items() if values.ndim == 2}
    np.testing.assert_array_equal(last["interactions"], [ROUNDS] * NODES)  # the last follows every reply
    assert last["offers_served"].sum() == NODES * ROUNDS  # every offer was served by someone
    assert last["bytes_sent"].sum() == last["bytes_received"].sum() > 0
    within, sent = last["bytes_within"], last["bytes_sent"]
    if ranks == 1:
        np.testing.assert_array_equal(within, sent)
    elif ranks == 2:  # a ring of 8 split 4 | 4: nodes 0, 3, 4 and 7 also talk across the ranks
        assert 0 < within.sum() < sent.sum() and np.all(within[[1, 2, 5, 6]] == sent[[1, 2, 5, 6]])
    else:
        assert within.sum() == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["nodes"] == NODES and summary["ranks"] == ranks
    assert summary["gossip"]["interactions_per_rank_mean"] == ROUNDS
    return last


def test_the_counts_of_every_async_node_do_not_depend_on_its_placement(mpirun, fedgossip, tmp_path):
    # each node draws its own partners, so whom it offered to, how many offers it served and the
    # bytes it sent are the same on 1 rank, on 2, and with one node per rank; only timing differs
    results = tmp_path / "results"
    runs = {ranks: _train(mpirun, fedgossip, results / f"on-{ranks}", ranks) for ranks in (8, 2, 1)}
    for name in ("interactions", "offers_served", "bytes_sent", "bytes_received", "fp32_bytes_sent"):
        for ranks in (2, 1):
            np.testing.assert_array_equal(runs[ranks][name], runs[8][name], err_msg=f"{name} on {ranks}")


@pytest.mark.parametrize("ranks", [1, 2])
def test_compressed_async_nodes_with_stragglers_and_a_slow_link(mpirun, fedgossip, tmp_path, ranks):
    options = ("--compressor", "qsgd:bits=5", "--slowdown", "ranks=0,5:factor=3", "--link", "latency=1ms")
    last = _train(mpirun, fedgossip, tmp_path / "results" / "slow", ranks, *options)
    assert np.all(last["link_s"] > 0)  # co-hosted packets cross the emulated link too
    assert np.all(last["bytes_sent"] < last["fp32_bytes_sent"] / 4)


def test_co_hosted_nodes_under_node_level_privacy_wait_for_the_end_of_each_others_bursts(
    mpirun, fedgossip, tmp_path
):
    # dp-update: a node's packets wait while it trains its burst, the rank serving its other nodes
    last = _train(mpirun, fedgossip, tmp_path / "results" / "dp", 2, "--dp", "dp-update:clip=1,noise=0.5")
    assert np.all(last["epsilon"] > 0)


def test_an_async_run_of_co_hosted_nodes_resumes_from_a_consistent_cut(mpirun, fedgossip, tmp_path):
    # compressed: a resume from an inconsistent cut would fail the packets' sequence checks
    options = (*ASYNC, "--compressor", "qsgd:bits=5", "--rounds", "10", "--eval-every", "2",
               "--checkpoint-every", "4", "--name", "cut")  # fmt: skip
    done = mpirun(2, *fedgossip, "train", *options, timeout=300)
    assert done.returncode == 0, done.output[-5000:]
    run, reference_dir = tmp_path / "results" / "cut", tmp_path / "uninterrupted"
    reference_dir.mkdir()
    shutil.copy(run / "metrics.h5", reference_dir / "metrics.h5")
    assert latest_checkpoint(run).round == 8  # so the resume makes interactions 9 and 10 again
    update_run_status(run, "failed", error="as if killed after interaction 9")
    done = mpirun(2, *fedgossip, "train", "--resume", str(run), timeout=300)
    assert done.returncode == 0, done.output[-5000:]
    resumed, reference = read_metrics(run), read_metrics(reference_dir)
    np.testing.assert_array_equal(resumed["round"], [2, 4, 6, 8, 10])
    for name in sorted(reference):  # the evaluations up to the cut come back from the checkpoint
        np.testing.assert_array_equal(resumed[name][:4], reference[name][:4], err_msg=name)
    # at the cut every offer was answered, so every node ends with exactly its 10 interactions
    np.testing.assert_array_equal(resumed["interactions"][-1], [10] * NODES)
    assert resumed["offers_served"][-1].sum() == 10 * NODES
    assert resumed["bytes_sent"][-1].sum() == resumed["bytes_received"][-1].sum()
    assert read_run_json(run)["resumed"][-1]["round"] == 8
