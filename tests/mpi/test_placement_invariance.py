"""Placement invariance: a seeded synchronous run of N nodes writes the same metrics on N, N/4 and 1 ranks.

Every node is a device of its own — its shard, model, optimizer, random streams and
counters — whichever process hosts it; co-hosted nodes exchange the same framed
packets in memory. So, trained one by one (``--one-by-one``), every metric but the
wall-clock ones must agree to the bit, except ``bytes_within`` (what stayed inside a
process), which is what placement changes. Vectorized (the default), co-hosted nodes'
matrix products add up in another order: their models agree within 1e-5.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from fedgossip.records.checkpoint import unpack_state

NODES = 8
RANKS = (NODES, NODES // 4, 1)
COMMON = (
    "--rounds",
    "4",
    "--eval-every",
    "2",
    "--local-steps",
    "3",
    "--model",
    "mlp:hidden=16",
    "--seed",
    "3",
)
ONE_BY_ONE = ("--one-by-one",)
WALL_CLOCK = {"wall_time", "compute_s", "comm_s", "codec_s", "link_s", "idle_s", "filter_saved_s"}

CASES = {
    "dpsgd": ("--algorithm", "dpsgd", "--topology", "torus"),
    "choco-qsgd4": ("--algorithm", "dpsgd", "--compressor", "qsgd:bits=5"),
    "swarm-topk": ("--algorithm", "swarm", "--compressor", "topk:ratio=0.2", "--topology", "complete"),
    "fedavg": ("--algorithm", "fedavg", "--client-fraction", "0.5", "--compressor", "sign"),
    "allreduce": ("--algorithm", "allreduce"),
    # drift corrections: gt's correction (after each optimizer step) and public copies of model and
    # direction, qgm's round-start model and buffer; d2's drift on a graph of another degree
    "gt-qsgd4-qgm": (
        "--algorithm",
        "gt",
        "--compressor",
        "qsgd:bits=5",
        "--optimizer",
        "qgm",
        "--momentum",
        "0.9",
    ),
    "d2": ("--algorithm", "d2", "--topology", "exponential"),
    "comp-ams": ("--algorithm", "comp-ams", "--compressor", "topk:ratio=0.1"),
    "dp-sgd": ("--dp", "dp-sgd:clip=1,noise=1.1", "--deterministic", "--slowdown", "ranks=1:factor=2"),
    # plugins: samples shared before rounds 1 and 3 through the network, a filter hiding easy ones
    "plugins": (
        *("--share-data", "budget=8,bits=4,every=2", "--filter", "hide:fraction=0.3,threshold=0.5"),
        *("--local-steps", "20"),  # past an epoch's end, where the filter decides what to hide
    ),
}


@pytest.fixture(scope="module")
def partitions(tmp_path_factory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("partitions")
    made = {}
    for shards in (NODES, NODES - 1):  # fedavg's node 0 is the server and holds no shard
        out = made[shards] = root / f"digits-{shards}"
        subprocess.run(
            [sys.executable, "-m", "fedgossip", "partition", "create", "digits", "--nodes", str(shards),
             "--scheme", "dirichlet:alpha=0.3", "--seed", "1", "--out", str(out)],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
    return made


def read(run_dir: Path) -> dict[str, np.ndarray]:
    found = {}
    with h5py.File(run_dir / "metrics.h5", "r") as f:
        f.visititems(
            lambda key, item: (
                found.__setitem__(key, item[()])
                if isinstance(item, h5py.Dataset) and key.rsplit("/", 1)[-1] not in WALL_CLOCK
                else None
            )
        )
    return found


@pytest.mark.parametrize("case", list(CASES))
def test_the_same_nodes_on_any_number_of_ranks_write_the_same_metrics(
    case, partitions, mpirun, fedgossip, tmp_path
):
    options = CASES[case]
    data = partitions[NODES - 1 if case == "fedavg" else NODES]
    runs = {}
    for ranks in RANKS:
        where = ("--out", str(tmp_path), "--name", f"{case}-{ranks}")
        train = ("train", "--data", str(data), "--nodes", str(NODES), *COMMON, *ONE_BY_ONE, *options, *where)
        done = mpirun(ranks, *fedgossip, *train, timeout=400)
        assert done.returncode == 0, done.output
        runs[ranks] = read(tmp_path / f"{case}-{ranks}")
    one_per_rank = runs[NODES]
    assert one_per_rank["test_accuracy"].shape == (2, NODES)
    if case == "plugins":  # they did something, the same on every placement
        assert np.all(one_per_rank["shared_samples"] > 0) and np.all(one_per_rank["hidden_fraction"][-1] > 0)
    assert np.all(one_per_rank["bytes_within"] == 0)
    if case not in ("allreduce", "comp-ams"):  # collectives have no peer: no edges
        assert one_per_rank["edges/edge_bytes"].size > 0  # the traffic matrix is compared below as well
    for ranks in RANKS[1:]:
        got = runs[ranks]
        assert sorted(got) == sorted(one_per_rank)
        differ = [
            name
            for name in sorted(got)
            if name != "bytes_within" and not np.array_equal(got[name], one_per_rank[name], equal_nan=True)
        ]
        assert not differ, f"{NODES} nodes on {ranks} ranks differ from one per rank in {differ}"
    everything = runs[1]
    if case not in ("allreduce", "comp-ams"):  # collectives have no peer: nothing is "within"
        assert np.array_equal(everything["bytes_within"], everything["bytes_sent"])
        within, sent = runs[2]["bytes_within"][-1].sum(), runs[2]["bytes_sent"][-1].sum()
        assert 0 < within < sent  # on 2 ranks, some packets cross between the processes


def checkpointed_models(run_dir: Path) -> dict[int, torch.Tensor]:
    """Return every node's model from the checkpoint of round 3 (a completed run keeps no later one)."""
    models = {}
    for path in sorted((run_dir / "checkpoints").glob("round-*/rank-*.pt")):
        state = unpack_state(torch.load(path, weights_only=True)["state"])
        models.update(zip(state["node_ids"], (node["model"] for node in state["nodes"]), strict=True))
    return models


# gt's update correction is applied to the stacked rows of co-hosted nodes (qgm trains them one by one)
VECTORIZED = {**CASES, "gt": ("--algorithm", "gt", "--topology", "exponential")}


@pytest.mark.parametrize("case", ["dpsgd", "choco-qsgd4", "gt"])
def test_vectorized_co_hosted_nodes_end_within_float_rounding_of_one_per_rank(
    case, partitions, mpirun, fedgossip, tmp_path
):
    models, counted = {}, {}
    for ranks in (NODES, 2, 1):  # on 2 ranks, uncompressed dpsgd mixes co-hosted and remote neighbours
        where = ("--out", str(tmp_path), "--name", f"{case}-{ranks}", "--checkpoint-every", "3")
        train = ("train", "--data", str(partitions[NODES]), "--nodes", str(NODES), *COMMON, *VECTORIZED[case])
        done = mpirun(ranks, *fedgossip, *train, *where, timeout=400)
        assert done.returncode == 0, done.output
        models[ranks] = checkpointed_models(tmp_path / f"{case}-{ranks}")
        counted[ranks] = read(tmp_path / f"{case}-{ranks}")
    for ranks in (2, 1):
        assert sorted(models[ranks]) == sorted(models[NODES]) == list(range(NODES))
        gaps = [float((models[ranks][node] - models[NODES][node]).abs().max()) for node in range(NODES)]
        assert max(gaps) < 1e-5, (ranks, gaps)
        # vectorized for real: co-hosted nodes computed in another order than 8 ranks of one
        assert max(gaps) > 0, "bit-identical: was the vectorized path taken at all?"
        for name in ("bytes_sent", "bytes_received", "fp32_bytes_sent"):  # counted as the packets are
            assert np.array_equal(counted[ranks][name], counted[NODES][name]), (ranks, name)
