"""Delta exchange under a real mpiexec: CHOCO-gossip, per-edge references, compressed fedavg."""

import json
import os
import subprocess

import pytest

from fedgossip.compress import COMPRESSORS
from fedgossip.compress.wire import HEADER_SIZE
from fedgossip.local.models.base import build_model


@pytest.mark.parametrize(
    ("algorithm", "compressor", "gamma"),
    [
        ("dpsgd", "uniform:bits=8", ()),
        ("dpsgd", "qsgd:bits=5", ()),
        # Pure consensus between unrelated random models is top-k's hardest case: every coordinate
        # differs, so it needs a smaller step than the default tuned for training.
        ("dpsgd", "topk:ratio=0.05", ("0.1",)),
        ("swarm", "qsgd:bits=5", ()),
        ("swarm", "sign", ()),
        ("fedavg", "topk:ratio=0.1", ()),
    ],
)
def test_compressed_gossip_keeps_its_invariants(mpirun, script, algorithm, compressor, gamma):
    done = mpirun(4, *script("compressed_gossip.py"), algorithm, compressor, 80, *gamma)
    assert done.returncode == 0, done.output
    assert f"ok {algorithm} {compressor}" in done.stdout


SHORT = ["--rounds", "30", "--eval-every", "10", "--local-steps", "10"]


@pytest.mark.parametrize(
    ("algorithm", "compressor"),
    [("dpsgd", "uniform:bits=8"), ("dpsgd", "uniform:bits=4"), ("swarm", "qsgd:bits=5")],
)
def test_compressed_training_learns_digits(mpirun, fedgossip, tmp_path, algorithm, compressor):
    ranks = 4
    done = mpirun(ranks, *fedgossip, "train", "--algorithm", algorithm, "--compressor", compressor, *SHORT)
    assert done.returncode == 0, done.output
    (run,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final"]["avg_model_accuracy"] > 0.85  # 10 classes: chance is 0.1
    # Every packet costs the header plus exactly nbytes(model size): the ratio follows from the code.
    count = sum(p.numel() for p in build_model("mlp", (64,), 10, seed=0).parameters())  # digits: 8×8 pixels
    packet = HEADER_SIZE + COMPRESSORS.create(compressor).nbytes(count)
    expected_ratio = (HEADER_SIZE + 4 * count) / packet
    assert summary["communication"]["compression_ratio"] == pytest.approx(expected_ratio, rel=1e-9)
    assert summary["communication"]["bytes_sent_total"] % packet == 0


def test_summary_shows_bytes_and_compression_ratio(mpirun, fedgossip, tmp_path):
    done = mpirun(4, *fedgossip, "train", "--compressor", "qsgd:bits=5", *SHORT, "--name", "q4")
    assert done.returncode == 0, done.output
    shown = subprocess.run(
        [*fedgossip, "summary", str(tmp_path / "results" / "q4")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert shown.returncode == 0, shown.stderr
    summary = json.loads((tmp_path / "results" / "q4" / "summary.json").read_text())
    ratio = summary["communication"]["compression_ratio"]
    assert f"{ratio:.3g}×" in shown.stdout and "sent per node" in shown.stdout
    gamma = COMPRESSORS.create("qsgd:bits=5").consensus_step
    assert f"qsgd:bits=5,block=512 · CHOCO-gossip, γ = {gamma:.3g}" in shown.stdout
