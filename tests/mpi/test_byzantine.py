"""Faulty neighbours under a real mpiexec: attackers speak the protocol, honest figures leave them out,
and robust aggregation holds where the plain mean breaks. 8 nodes on 2 ranks, so attackers' packets
cross between processes and travel within one."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from fedgossip.records import read_metrics
from fedgossip.records.checkpoint import unpack_state

ATTACKERS = (2, 5)  # node 2 on rank 0, node 5 on rank 1


@pytest.fixture(scope="module")
def digits_8(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "digits-8"
    command = [sys.executable, "-m", "fedgossip", "partition", "create", "digits", "--nodes", "8"]
    subprocess.run([*command, "--scheme", "dirichlet:alpha=0.5", "--out", str(out)], check=True, timeout=300)
    return out


def _train(mpirun, fedgossip, tmp_path, data, name, *options, nodes=8):
    common = ("--nodes", str(nodes), "--rounds", "8", "--local-epochs", "1", "--lr", "0.05", "--lr-schedule",
              "constant", "--eval-every", "4", "--out", str(tmp_path), "--name", name)  # fmt: skip
    done = mpirun(2, *fedgossip, "train", "--data", str(data), *common, *options, timeout=400)
    assert done.returncode == 0, done.output
    run = tmp_path / name
    return run, json.loads((run / "summary.json").read_text())


def _honest(metrics, name):
    values = metrics[name][-1]
    return np.delete(values, ATTACKERS)


def test_sign_flip_breaks_the_mean_and_clipping_holds_with_figures_of_honest_nodes(
    digits_8, mpirun, fedgossip, tmp_path, summary_screen
):
    ids = ",".join(map(str, ATTACKERS))
    attack = ("--attack", "sign-flip", "--attackers", ids, "--checkpoint-every", "4")
    free = _train(mpirun, fedgossip, tmp_path, digits_8, "free")[1]["final"]["avg_model_accuracy"]
    run, plain = _train(mpirun, fedgossip, tmp_path, digits_8, "mean", *attack)
    _, clipped = _train(mpirun, fedgossip, tmp_path, digits_8, "clip", *attack, "--robust", "clip")
    record = json.loads((run / "run.json").read_text())
    assert record["attackers"] == list(ATTACKERS)
    assert plain["faulty"] == {"attack": "sign-flip", "attackers": list(ATTACKERS), "robust": "mean"}
    assert "sign-flip by nodes 2, 5 (left out of the accuracy figures)" in summary_screen(run)
    # the accuracy figures are the honest nodes'
    metrics = read_metrics(run)
    accuracy = _honest(metrics, "test_accuracy")
    assert plain["final"]["test_accuracy"]["mean"] == pytest.approx(float(accuracy.mean()))
    assert plain["final"]["test_accuracy"]["min"] == pytest.approx(float(accuracy.min()))
    # ... and so are the average model and the consensus distance: recomputed from the models of round 4
    # (the checkpoint a completed run keeps), evaluated at round 4 too
    models = {}
    for path in sorted((run / "checkpoints").glob("round-*/rank-*.pt")):
        state = unpack_state(torch.load(path, weights_only=True)["state"])
        models.update(zip(state["node_ids"], (node["model"] for node in state["nodes"]), strict=True))
    honest = torch.stack([models[node].double() for node in sorted(models) if node not in ATTACKERS])
    distance = float(((honest - honest.mean(dim=0)) ** 2).sum(dim=1).mean())
    assert metrics["round"][0] == 4
    assert metrics["consensus_distance"][0] == pytest.approx(distance, rel=1e-4)
    everyone = torch.stack([models[node].double() for node in sorted(models)])
    with_attackers = float(((everyone - everyone.mean(dim=0)) ** 2).sum(dim=1).mean())
    assert metrics["consensus_distance"][0] != pytest.approx(with_attackers, rel=1e-2)
    # −x from two of eight nodes drags the plain average far down; clipping bounds their pull
    assert plain["final"]["avg_model_accuracy"] < free - 0.15
    assert clipped["final"]["avg_model_accuracy"] > plain["final"]["avg_model_accuracy"] + 0.15
    # the attackers' packets are real packets, counted: every node sends every round
    assert np.all(metrics["bytes_sent"][-1] > 0)


def test_label_flipping_attackers_learn_flipped_labels_and_choco_trims_them(
    digits_8, mpirun, fedgossip, tmp_path
):
    attack = (
        "--attack",
        "label-flip",
        "--attackers",
        "2,5",
        "--compressor",
        "qsgd:bits=5",
        "--topology",
        "complete",
    )
    robust = ("--robust", "trimmed-mean:b=2")
    run, summary = _train(mpirun, fedgossip, tmp_path, digits_8, "flip", *attack, *robust)
    own = read_metrics(run)["test_accuracy"][-1]
    # trained on y → 9 − y, an attacker's own model answers the test set wrongly
    assert max(own[list(ATTACKERS)]) < 0.3 < summary["final"]["test_accuracy"]["min"]
    assert summary["final"]["avg_model_accuracy"] > 0.6
    assert summary["communication"]["compression_ratio"] > 5  # CHOCO's 4-bit packets, forged ones too


def test_fedavg_with_krum_withstands_two_malicious_clients(digits_8, mpirun, fedgossip, tmp_path):
    # nodes 1..8 are the clients on the same 8 shards; clients 3 and 6 send −S × their update
    attack = ("--algorithm", "fedavg", "--attack", "sign-flip:scale=4", "--attackers", "3,6")
    _, plain = _train(mpirun, fedgossip, tmp_path, digits_8, "fedavg-mean", *attack, nodes=9)
    _, krum = _train(
        mpirun, fedgossip, tmp_path, digits_8, "fedavg-krum", *attack, "--robust", "krum:f=2", nodes=9
    )
    assert krum["final"]["avg_model_accuracy"] > plain["final"]["avg_model_accuracy"] + 0.15


def test_swarm_clips_its_partners_pull(digits_8, mpirun, fedgossip, tmp_path):
    attack = (
        "--algorithm",
        "swarm",
        "--attack",
        "gaussian:std=10",
        "--attackers",
        "2,5",
        "--topology",
        "complete",
    )
    _, plain = _train(mpirun, fedgossip, tmp_path, digits_8, "swarm-mean", *attack)
    _, clipped = _train(
        mpirun, fedgossip, tmp_path, digits_8, "swarm-clip", *attack, "--robust", "clip:tau=1"
    )
    assert clipped["final"]["avg_model_accuracy"] > plain["final"]["avg_model_accuracy"] + 0.15
