"""COMP-AMS under a real mpiexec: AMSGrad when uncompressed, error feedback, identical models, learning."""

import json

import pytest

from fedgossip.compress import COMPRESSORS
from fedgossip.compress.wire import HEADER_SIZE
from fedgossip.local.models.base import build_model


def test_uncompressed_comp_ams_equals_single_process_amsgrad(mpirun, script):
    done = mpirun(4, *script("comp_ams_matches_amsgrad.py"))
    assert done.returncode == 0, done.output
    assert "ok max difference" in done.stdout


@pytest.mark.parametrize("compressor", ["topk:ratio=0.01", "sign:block=64"])
def test_error_feedback_and_identical_models_step_by_step(mpirun, script, compressor):
    done = mpirun(4, *script("comp_ams_feedback.py"), compressor, 300)
    assert done.returncode == 0, done.output
    assert f"ok {compressor} 300 steps" in done.stdout


@pytest.mark.parametrize("compressor", ["topk:ratio=0.01", "sign:block=256"])
def test_comp_ams_learns_digits(mpirun, fedgossip, tmp_path, compressor):
    options = ["--rounds", "40", "--local-steps", "20", "--eval-every", "20"]
    done = mpirun(4, *fedgossip, "train", "--algorithm", "comp-ams", "--compressor", compressor, *options)
    assert done.returncode == 0, done.output
    (run,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    summary = json.loads((run / "summary.json").read_text())
    final = summary["final"]
    assert final["avg_model_accuracy"] > 0.8  # 10 classes: chance is 0.1
    # every rank applied the same steps, so every model is the average model
    assert final["consensus_distance"] == 0.0
    assert final["test_accuracy"]["min"] == final["test_accuracy"]["max"] == final["avg_model_accuracy"]
    record = json.loads((run / "run.json").read_text())
    config = record["config"]
    # run.json records the canonical optimizer spec: torch's betas and eps unless given
    expected = ("amsgrad:beta1=0.9,beta2=0.999,eps=1e-08", 0.001, "constant")
    assert (config["optimizer"], config["lr"], config["lr_schedule"]) == expected
    assert summary["topology"]["spec"] == "complete"
    # each step's packet goes to the 3 other ranks: header plus exactly nbytes(model size)
    count = sum(p.numel() for p in build_model("mlp", (64,), 10, seed=0).parameters())  # digits: 8×8 pixels
    packet = HEADER_SIZE + COMPRESSORS.create(compressor).nbytes(count)
    assert summary["communication"]["bytes_sent_total"] == 4 * 3 * 40 * 20 * packet
    assert summary["communication"]["compression_ratio"] == pytest.approx((HEADER_SIZE + 4 * count) / packet)


def test_a_setting_comp_ams_cannot_use_stops_every_rank_with_one_message(mpirun, fedgossip):
    done = mpirun(
        2, *fedgossip, "train", "--algorithm", "comp-ams", "--optimizer", "sgd", "--local-epochs", "1"
    )
    assert done.returncode != 0
    assert done.stderr.count("comp-ams applies AMSGrad to the averaged gradient, not sgd") == 1
    assert "give a fixed --local-steps, not --local-epochs" in done.stderr
    assert "Traceback" not in done.output


def test_amsgrad_is_the_local_optimizer_of_other_algorithms_too(mpirun, fedgossip, tmp_path, summary_screen):
    spec = "amsgrad:beta1=0.9,beta2=0.99,eps=1e-08"
    options = ["--rounds", "20", "--local-steps", "10", "--eval-every", "10", "--name", "ams"]
    done = mpirun(2, *fedgossip, "train", "--optimizer", spec, "--lr", "0.003", *options)
    assert done.returncode == 0, done.output
    run = tmp_path / "results" / "ams"
    assert json.loads((run / "run.json").read_text())["config"]["optimizer"] == spec
    assert json.loads((run / "summary.json").read_text())["final"]["avg_model_accuracy"] > 0.8
    assert f"{spec} · lr 0.003 · cosine" in summary_screen(run)
