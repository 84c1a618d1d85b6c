"""``--model FILE.py:Class``: a user's own nn.Module, written by the test, trains end to end on one rank."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import fedgossip.run.records
from fedgossip.cli.main import cli
from fedgossip.data.create import PartitionRequest, create_partition
from fedgossip.errors import ConfigError
from fedgossip.local.models.base import build_model
from fedgossip.local.models.user import UserModel
from fedgossip.records import read_run_json, update_run_status
from fedgossip.settings.model_spec import UserModelSpec

NET = """\
import math

from torch import nn


class Net(nn.Module):
    \"\"\"One hidden layer; ``width`` from the spec.\"\"\"

    def __init__(self, input_shape, num_classes, width: int = 16, scale: float = 1.0):
        super().__init__()
        self.shape, self.scale = tuple(input_shape), scale
        self.body = nn.Sequential(
            nn.Flatten(), nn.Linear(math.prod(input_shape), width), nn.ReLU(), nn.Linear(width, num_classes)
        )

    def forward(self, x):
        return self.body(x) * self.scale
"""
CHANCE = 0.1  # ten digit classes

# The built-in mlp (fedgossip/local/models/mlp.py) written as a user's class, layer for layer.
MLP_TWIN = """\
import math

from torch import nn


class Twin(nn.Sequential):
    def __init__(self, input_shape, num_classes, hidden: int = 64):
        width = math.prod(input_shape)
        super().__init__(nn.Flatten(), nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))
"""


@pytest.fixture(scope="module")
def four_shards(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("user-model") / "digits-4"
    create_partition(PartitionRequest("digits", "iid", 4, 0), directory)
    return directory


@pytest.fixture
def train(tmp_path, monkeypatch, four_shards):
    """Return ``run(*options)``: ``fedgossip train`` on four digit shards, into tmp_path/results."""
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(fedgossip.run.records, "start_guardian", lambda *args, **kwargs: None)

    def run(*options: str, code: int = 0):
        resuming = options[0] == "--resume"
        data = ["--data", str(four_shards), "--nodes", "4", "--out", str(tmp_path / "results")]
        args = [] if resuming else data
        result = CliRunner().invoke(cli, ["train", *args, *options], catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    return run


def test_a_model_file_trains_above_chance_on_four_nodes(train, tmp_path):
    model_file = tmp_path / "nets" / "mine.py"
    model_file.parent.mkdir()
    model_file.write_text(NET)
    train("--model", f"{model_file}:Net:width=32", "--rounds", "4", "--name", "mine", "--lr", "0.05")
    run = tmp_path / "results" / "mine"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["model"] == f"{model_file}:Net:width=32"
    assert summary["final"]["avg_model_accuracy"] > 3 * CHANCE, summary["final"]
    with h5py.File(run / "metrics.h5") as metrics:
        losses = np.asarray(metrics["train_loss"])
    assert losses.size and np.isfinite(losses).all()
    record = read_run_json(run)
    assert record["model_file"] == {
        "target": str(model_file),
        "class": "Net",
        "sha256": hashlib.sha256(model_file.read_bytes()).hexdigest(),
    }


def test_a_user_copy_of_the_builtin_mlp_trains_exactly_like_it(train, tmp_path):
    (tmp_path / "twin.py").write_text(MLP_TWIN)
    common = ("--rounds", "2", "--local-steps", "3", "--eval-every", "1", "--seed", "3")
    train("--model", "mlp:hidden=24", *common, "--name", "builtin")
    train("--model", f"{tmp_path}/twin.py:Twin:hidden=24", *common, "--name", "twin")
    curves = []
    for name in ("builtin", "twin"):
        with h5py.File(tmp_path / "results" / name / "metrics.h5") as metrics:
            curves.append({key: np.asarray(metrics[key]) for key in ("train_loss", "test_accuracy")})
    assert curves[0]["train_loss"].size > 0
    for key, values in curves[0].items():
        np.testing.assert_array_equal(values, curves[1][key], err_msg=key)  # same weights, same steps


def test_a_relative_model_path_is_recorded_absolute(train, tmp_path, monkeypatch):
    (tmp_path / "mine.py").write_text(NET)
    monkeypatch.chdir(tmp_path)
    train("--model", "mine.py:Net", "--rounds", "1", "--local-steps", "1", "--name", "relative")
    assert read_run_json(tmp_path / "results" / "relative")["config"]["model"] == f"{tmp_path}/mine.py:Net"


def test_resume_refuses_a_model_file_that_changed(train, tmp_path):
    model_file = tmp_path / "mine.py"
    model_file.write_text(NET)
    options = ("--model", f"{model_file}:Net", "--local-steps", "1", "--checkpoint-every", "1")
    train(*options, "--rounds", "2", "--name", "again")
    run = tmp_path / "results" / "again"
    update_run_status(run, "failed", error="killed", failed_round=2)
    model_file.write_text(NET + "\n# edited\n")
    result = train("--resume", str(run), code=1)
    assert "the model file " + str(model_file) + " has changed since the run started" in result.output
    assert read_run_json(run)["status"] == "failed"  # refused before the run was reopened
    model_file.write_text(NET)  # restored: the same code, so the run resumes
    assert "resuming" in train("--resume", str(run)).output


def test_user_model_gets_the_datas_shape_and_its_arguments_typed(tmp_path):
    (tmp_path / "mine.py").write_text(NET)
    factory = UserModel(UserModelSpec(str(tmp_path / "mine.py"), "Net", {"width": "5", "scale": "2"}))
    model = build_model(factory, (1, 8, 8), 10, seed=0)
    assert model.shape == (1, 8, 8) and model.scale == 2.0 and isinstance(model.scale, float)
    assert model.body[1].out_features == 5 and model.body[3].out_features == 10
    assert factory.parameter_count((1, 8, 8), 10) == 64 * 5 + 5 + 5 * 10 + 10


def test_same_seed_same_weights_like_a_built_in_model(tmp_path):
    (tmp_path / "mine.py").write_text(NET)
    factory = UserModel(UserModelSpec(str(tmp_path / "mine.py"), "Net"))
    first, second = (build_model(factory, (4,), 3, seed=7) for _ in range(2))
    other = build_model(factory, (4,), 3, seed=8)
    assert all((a == b).all() for a, b in zip(first.parameters(), second.parameters(), strict=True))
    assert not all((a == b).all() for a, b in zip(first.parameters(), other.parameters(), strict=True))


def test_an_importable_module_works_like_a_file(tmp_path, monkeypatch):
    package = tmp_path / "usernets"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "small.py").write_text(NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    factory = UserModel(UserModelSpec("usernets.small", "Net", {"width": "3"}))
    assert factory.spec == "usernets.small:Net:width=3"
    assert factory.sha256 == hashlib.sha256((package / "small.py").read_bytes()).hexdigest()
    assert build_model(factory, (2,), 2, seed=0)(__import__("torch").zeros(4, 2)).shape == (4, 2)


def test_an_import_error_inside_the_module_names_that_import(tmp_path, monkeypatch):
    package = tmp_path / "brokennets"
    package.mkdir()
    (package / "__init__.py").write_text("import nosuch_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="importing brokennets raised ModuleNotFoundError: No module named"):
        UserModel(UserModelSpec("brokennets", "Net"))


def test_every_badly_typed_argument_is_named_at_once(tmp_path):
    (tmp_path / "mine.py").write_text(NET)
    spec = UserModelSpec(str(tmp_path / "mine.py"), "Net", {"width": "wide", "scale": "big"})
    says = r"width=wide is not a valid int .*; scale=big is not a valid float"
    with pytest.raises(ConfigError, match=says):
        UserModel(spec)
