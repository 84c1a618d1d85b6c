"""charlstm: its LSTM layer equals torch's, it trains co-hosted nodes as one vmapped batch, and end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import fedgossip.run.records
from fedgossip.cli.main import cli
from fedgossip.errors import ConfigError
from fedgossip.local.batched import BatchedTraining, batchable
from fedgossip.local.batches import BatchStream
from fedgossip.local.flat import FlatParameters
from fedgossip.local.models import build_model
from fedgossip.local.models.charlstm import _LstmLayer
from fedgossip.local.optim import make_lr_schedule, make_optimizer
from fedgossip.local.trainer import LocalTrainer
from fedgossip.records import read_run_json

VOCAB, LENGTH = 80, 12


def test_the_written_out_layer_computes_what_nn_lstm_does():
    torch.manual_seed(0)
    reference = torch.nn.LSTM(5, 7, batch_first=True)
    ours = _LstmLayer(5, 7)
    with torch.no_grad():
        ours.input_gates.weight.copy_(reference.weight_ih_l0)
        ours.input_gates.bias.copy_(reference.bias_ih_l0 + reference.bias_hh_l0)
        ours.state_gates.weight.copy_(reference.weight_hh_l0)
    sequence = torch.randn(3, 9, 5)
    torch.testing.assert_close(ours(sequence), reference(sequence)[0], atol=1e-5, rtol=0)


def test_flat_inputs_are_refused_with_a_hint():
    with pytest.raises(ConfigError, match="charlstm reads sequences"):
        build_model("charlstm", (1, 28, 28), 62, seed=0)


def _trainer(node: int) -> LocalTrainer:
    rng = np.random.default_rng([3, node])
    x = rng.integers(0, VOCAB, size=(20, LENGTH)).astype(np.float32)
    y = x[:, -1].astype(np.int64)  # learnable: predict the last character seen
    module = build_model("charlstm:hidden=16", (LENGTH,), VOCAB, seed=node)
    optimizer = make_optimizer("sgd", module.parameters(), 0.5)
    schedule = make_lr_schedule("constant", optimizer, 10)
    return LocalTrainer(
        module, FlatParameters(module), optimizer, schedule, BatchStream(x, y, 8, seed=[0, node])
    )


def test_co_hosted_charlstm_nodes_train_as_one_batch_exactly_as_alone():
    alone, together = [_trainer(n) for n in range(3)], [_trainer(n) for n in range(3)]
    assert batchable(together) is None
    batched = BatchedTraining(together)
    for _ in range(2):
        expected = [trainer.run(3) for trainer in alone]
        got = batched.run(3)
        assert [s.loss_sum for s in got] == pytest.approx([s.loss_sum for s in expected], rel=1e-5)
    for a, b in zip(alone, together, strict=True):
        torch.testing.assert_close(b.flat.flat, a.flat.flat, atol=1e-5, rtol=0)
    assert not torch.equal(together[0].flat.flat, _trainer(0).flat.flat)  # the steps moved the weights


def test_charlstm_on_a_tiny_shakespeare_partition_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setattr(fedgossip.run.records, "start_guardian", lambda *args, **kwargs: None)
    text = "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer " * 2
    for split, start in (("train", 0), ("test", 40)):
        users = {
            f"HAMLET_ROLE_{i}": [text[start + 3 * i + k : start + 3 * i + k + 80] for k in range(4)]
            for i in range(4)
        }
        data = {
            u: {"x": x, "y": [text[start + 3 * int(u[-1]) + k + 80] for k in range(4)]}
            for u, x in users.items()
        }
        (tmp_path / "leaf" / split).mkdir(parents=True)
        content = {"users": list(users), "num_samples": [4] * 4, "user_data": data}
        (tmp_path / "leaf" / split / "all_data.json").write_text(json.dumps(content))
    runner = CliRunner()
    partition = [
        "partition",
        "create",
        f"leaf:path={tmp_path / 'leaf'}",
        "--scheme",
        "natural",
        "--nodes",
        "4",
    ]
    made = runner.invoke(cli, [*partition, "--out", str(tmp_path / "p")])
    assert made.exit_code == 0, made.output
    options = [
        "--data",
        str(tmp_path / "p"),
        "--nodes",
        "4",
        "--model",
        "charlstm:hidden=16",
        "--rounds",
        "2",
    ]
    options += ["--local-steps", "2", "--out", str(tmp_path / "r"), "--name", "lstm"]
    result = runner.invoke(cli, ["train", *options], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run = read_run_json(tmp_path / "r" / "lstm")
    assert run["status"] == "completed"


def test_parameter_count_is_embedding_lstm_layers_and_output():
    from fedgossip.local.models import MODELS

    factory = MODELS.create("charlstm:embedding=8,hidden=256,layers=2")  # LEAF's Shakespeare model
    embedding, first, second, out = (
        80 * 8,
        8 * 1024 + 1024 + 256 * 1024,
        256 * 1024 + 1024 + 256 * 1024,
        256 * 80 + 80,
    )
    assert factory.parameter_count((80,), 80) == embedding + first + second + out
    built = build_model(factory, (80,), 80, seed=0)
    assert sum(p.numel() for p in built.parameters()) == embedding + first + second + out
    assert built(torch.zeros(2, 80)).shape == (2, 80)


def test_charlstm_learns_to_repeat_the_last_character():
    """Guard the comparisons above against a model that cannot learn: the loss falls well below chance."""
    group = [_trainer(n) for n in range(2)]
    batched = BatchedTraining(group)
    first = sum(stats.mean_loss for stats in batched.run(3)) / 2
    for _ in range(12):
        batched.run(5)
    last = sum(stats.mean_loss for stats in batched.run(3)) / 2
    assert first > 4.0  # about ln(80) = 4.38 at the start
    assert last < 0.6 * first, (first, last)
