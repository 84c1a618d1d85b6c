"""evaluate: accuracy and per-sample mean loss, batched, without changing the model's mode."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from fedgossip.errors import DataError
from fedgossip.local.evaluate import evaluate, evaluate_parameters
from fedgossip.local.flat import FlatParameters

torch.set_num_threads(1)


def _identity_model() -> nn.Linear:
    """Return logits = x for 2-D inputs: the predicted class is the larger coordinate."""
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
        model.bias.zero_()
    return model


X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
Y = np.array([0, 1, 1])


@pytest.mark.parametrize("batch_size", [1, 2, 1024])
def test_accuracy_and_mean_loss_over_all_samples(batch_size):
    result = evaluate(_identity_model(), X, Y, batch_size=batch_size)
    assert result.accuracy == pytest.approx(2 / 3)
    # right with margin 1: log(1 + e^-1); wrong with margin 1: log(1 + e)
    expected = (2 * math.log1p(math.exp(-1)) + math.log1p(math.e)) / 3
    assert result.loss == pytest.approx(expected, rel=1e-6)


def test_tensors_are_accepted_as_well_as_arrays():
    result = evaluate(_identity_model(), torch.from_numpy(X), torch.from_numpy(Y))
    assert result.accuracy == pytest.approx(2 / 3)


@pytest.mark.parametrize("training", [True, False])
def test_the_previous_mode_is_restored(training):
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    model.train(training)
    evaluate(model, X, Y)
    assert model.training is training


def test_evaluation_runs_in_eval_mode_without_gradients():
    seen = {}

    class Spy(nn.Linear):
        def forward(self, x):
            seen["training"], seen["grad"] = self.training, torch.is_grad_enabled()
            return super().forward(x)

    evaluate(Spy(2, 2), X, Y)
    assert seen == {"training": False, "grad": False}


def test_an_empty_set_is_refused():
    with pytest.raises(DataError, match="cannot evaluate on 0 samples"):
        evaluate(_identity_model(), X[:0], Y[:0])


def test_other_parameters_are_evaluated_and_the_model_put_back():
    model = _identity_model()
    flat = FlatParameters(model)
    before = flat.flat.clone()
    swapped = np.array([0.0, 1.0, 1.0, 0.0, 0.0, 0.0])  # weight rows swapped: predicts the smaller one
    result = evaluate_parameters(model, flat.flat, swapped, X, Y)
    assert result.accuracy == pytest.approx(1 / 3)  # identity gets 2/3 right, its swap the other 1/3
    assert torch.equal(flat.flat, before)
    assert evaluate(model, X, Y).accuracy == pytest.approx(2 / 3)


def test_the_model_is_put_back_when_evaluation_fails():
    model = _identity_model()
    flat = FlatParameters(model)
    before = flat.flat.clone()
    with pytest.raises(DataError):
        evaluate_parameters(model, flat.flat, np.zeros(6), X[:0], Y[:0])
    assert torch.equal(flat.flat, before)
