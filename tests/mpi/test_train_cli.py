"""``fedgossip train`` under mpiexec as users run it: records, reproducibility and failures."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from fedgossip.records import read_metrics, read_run_json

SHORT = ["--rounds", "8", "--eval-every", "4", "--local-steps", "8"]


def _run_dirs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "results").iterdir() if p.is_dir())


def _partition(fedgossip_cmd, tmp_path, nodes, scheme="dirichlet:alpha=0.5"):
    import subprocess

    out = tmp_path / f"data-{nodes}"
    args = ["partition", "create", "digits", "--nodes", str(nodes), "--scheme", scheme, "--out", str(out)]
    subprocess.run([*fedgossip_cmd, *args], check=True, capture_output=True, timeout=120)
    return out


@pytest.mark.parametrize("algorithm", ["dpsgd", "swarm", "allreduce", "fedavg"])
def test_each_algorithm_trains_and_records(mpirun, fedgossip, tmp_path, algorithm):
    done = mpirun(4, *fedgossip, "train", "--algorithm", algorithm, *SHORT)
    assert done.returncode == 0, done.output
    (run,) = _run_dirs(tmp_path)
    record = read_run_json(run)
    assert record["status"] == "completed" and record["world_size"] == 4
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final"]["round"] == 8
    assert summary["final"]["avg_model_accuracy"] > 0.5  # 10 classes: chance is 0.1
    assert summary["communication"]["bytes_sent_total"] > 0
    with h5py.File(run / "metrics.h5") as metrics:
        assert metrics["test_accuracy"].shape == (2, 4)
        assert list(metrics["round"][...]) == [4, 8]


def test_synchronous_run_is_reproducible_from_its_seed(mpirun, fedgossip, tmp_path):
    curves = []
    for name in ("first", "second"):
        done = mpirun(4, *fedgossip, "train", "--algorithm", "swarm", *SHORT, "--name", name, "--seed", "5")
        assert done.returncode == 0, done.output
        with h5py.File(tmp_path / "results" / name / "metrics.h5") as metrics:
            curves.append({k: metrics[k][...] for k in ("test_accuracy", "test_loss", "consensus_distance")})
    for key in curves[0]:
        np.testing.assert_array_equal(curves[0][key], curves[1][key])


def test_world_size_must_match_the_shards(mpirun, fedgossip, tmp_path):
    data = _partition(fedgossip, tmp_path, 3)
    done = mpirun(4, *fedgossip, "train", "--data", data, *SHORT)
    assert done.returncode == 1, done.output
    assert done.stderr.count("error:") == 1, done.stderr
    assert "has 3 shards, enough for 3 nodes of dpsgd, but 4 ranks were started" in done.stderr
    assert not (tmp_path / "results").exists()


def test_fedavg_needs_one_shard_fewer_than_ranks(mpirun, fedgossip, tmp_path):
    data = _partition(fedgossip, tmp_path, 3)
    done = mpirun(4, *fedgossip, "train", "--data", data, "--algorithm", "fedavg", *SHORT)
    assert done.returncode == 0, done.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "nowhere"], "nowhere is not a partition directory"),
        (["--topology", "file:path=two-islands.txt"], "disconnected"),
        (["--algorithm", "gossip-magic"], "unknown algorithm 'gossip-magic'"),
        (["--model", "mlp:hidden=0"], "hidden"),
        (["--config", "bad.toml"], "unknown settings"),
    ],
)
def test_bad_input_stops_every_rank_with_one_message(mpirun, fedgossip, tmp_path, args, message):
    (tmp_path / "two-islands.txt").write_text("0 1\n2 3\n")
    (tmp_path / "bad.toml").write_text("rounds = 3\nlearning_rate = 0.1\n")
    done = mpirun(4, *fedgossip, "train", *args, *SHORT, timeout=180)
    assert done.returncode == 1, done.output
    assert done.stderr.count("error:") == 1, done.stderr
    assert message in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algorithm", "allreduce", "--compressor", "qsgd:bits=4"], "allreduce cannot use the lossy"),
        (["--model", "mlp:hiden=3"], "unknown parameter 'hiden'"),
        (["--model", "nosuch"], "unknown model 'nosuch'"),
    ],
)
def test_a_setting_refused_at_set_up_leaves_no_run_directory(mpirun, fedgossip, tmp_path, args, message):
    done = mpirun(2, *fedgossip, "train", *args, "--rounds", "1", "--name", "refused", timeout=180)
    assert done.returncode == 1, done.output
    assert done.stderr.count("error:") == 1 and message in done.stderr, done.stderr
    assert not (tmp_path / "results").exists()


def test_usage_error_exits_2(mpirun, fedgossip):
    done = mpirun(2, *fedgossip, "train", "--rounds", "0")
    assert done.returncode == 2, done.output


def test_diverging_loss_fails_the_run_and_keeps_metrics(mpirun, fedgossip, tmp_path):
    done = mpirun(2, *fedgossip, "train", "--rounds", "30", "--eval-every", "1", "--lr-schedule", "constant",
                  "--lr", "1e30", "--local-steps", "5", "--name", "diverged")  # fmt: skip
    assert done.returncode != 0
    assert "loss became NaN/Inf" in done.stderr
    record = read_run_json(tmp_path / "results" / "diverged")
    assert record["status"] == "failed"
    assert record["failed_round"] >= 1 and "round" in record["error"]
    metrics = read_metrics(tmp_path / "results" / "diverged")  # evaluations before the failure survive
    assert len(metrics.get("round", [])) == record["failed_round"] - 1


def _poison_features(data: Path, shard: int) -> None:
    """Make every feature of ``shard`` NaN, keeping partition.json's hash of it true."""
    import hashlib

    path = data / f"shard-{shard:05d}.h5"
    with h5py.File(path, "r+") as stream:
        stream["x"][...] = np.full(stream["x"].shape, np.nan, dtype=stream["x"].dtype)
    manifest_path = data / "partition.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))


def test_error_on_one_rank_ends_the_job_without_a_traceback(mpirun, fedgossip, tmp_path):
    data = _partition(fedgossip, tmp_path, 2)
    _poison_features(data, 1)
    done = mpirun(2, *fedgossip, "train", "--data", data, "--rounds", "2", "--name", "poisoned", timeout=180)
    assert done.returncode != 0, done.output
    assert "NaN" in done.stderr, done.output
    assert "Traceback" not in done.output and "UnboundLocalError" not in done.output, done.output


def test_ddp_benchmark_runs_and_saves_a_ratio(mpirun, fedgossip, tmp_path):
    done = mpirun(2, *fedgossip, "bench", "ddp", "--steps", "5", "--out", "bench")
    assert done.returncode == 0, done.output
    result = json.loads((tmp_path / "bench" / "ddp.json").read_text())
    assert result["ranks"] == 2 and result["reference"] == "torch DDP (gloo)"
    assert result["ratio_to_reference"] == result["seconds_per_round"] / result["reference_seconds_per_round"]
