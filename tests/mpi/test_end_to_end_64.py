"""The product's own command on 64 ranks: `mpiexec -n 64 fedgossip train` with no options."""

import json


def test_mpiexec_64_trains_the_embedded_default(mpirun, fedgossip, tmp_path):
    # 64 ranks share 2 cores here: importing torch alone takes about a minute.
    done = mpirun(64, *fedgossip, "train", timeout=900)
    assert done.returncode == 0, done.output[-5000:]
    (run,) = (tmp_path / "results").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["ranks"] == 64
    assert summary["final"]["round"] == 60
    assert summary["final"]["avg_model_accuracy"] > 0.85, summary["final"]
    assert summary["final"]["test_accuracy"]["min"] > 0.7, summary["final"]
    assert summary["communication"]["bytes_sent_total"] > 0
    assert "average model accuracy" in done.stdout  # the summary screen was printed
    partition = json.loads((tmp_path / "datasets" / "digits-64" / "partition.json").read_text())
    assert partition["nodes"] == 64 and partition["source"] == "digits"
