"""FlatParameters: parameters and gradients as views into two contiguous float32 vectors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fedgossip.errors import ConfigError
from fedgossip.local.flat import FlatParameters

torch.set_num_threads(1)


def _line() -> tuple[nn.Linear, FlatParameters]:
    """Return y = w·x + b with w = [2, 3], b = 1, wrapped; flat order is weight then bias."""
    model = nn.Linear(2, 1)
    flat = FlatParameters(model)
    flat.flat.copy_(torch.tensor([2.0, 3.0, 1.0]))
    return model, flat


def _backward_sum(model: nn.Module) -> None:
    # d(w·x + b)/dw = x = [1, 2] and d/db = 1, whatever the parameters are
    model(torch.tensor([[1.0, 2.0]])).sum().backward()


def test_flat_holds_the_initial_values_in_parameter_order():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    before = [p.detach().clone() for p in model.parameters()]
    flat = FlatParameters(model)
    assert flat.numel == 3 * 4 + 4 + 4 * 2 + 2
    assert flat.flat.dtype == torch.float32 and flat.flat.is_contiguous()
    assert torch.equal(flat.flat, torch.cat([t.reshape(-1) for t in before]))
    assert flat.names == ("0.weight", "0.bias", "2.weight", "2.bias")
    assert flat.is_bound()


def test_writing_into_flat_changes_the_model_output():
    model, _ = _line()
    assert model(torch.tensor([[1.0, 1.0]])).item() == 6.0  # 2 + 3 + 1
    assert torch.equal(model.weight.detach(), torch.tensor([[2.0, 3.0]]))


def test_flat_grad_accumulates_backward_passes_and_zero_grad_clears_it():
    model, flat = _line()
    _backward_sum(model)
    assert torch.equal(flat.flat_grad, torch.tensor([1.0, 2.0, 1.0]))
    _backward_sum(model)
    assert torch.equal(flat.flat_grad, torch.tensor([2.0, 4.0, 2.0]))
    flat.zero_grad()
    assert torch.equal(flat.flat_grad, torch.zeros(3))
    assert torch.equal(model.weight.grad, torch.zeros(1, 2))


@pytest.mark.parametrize("foreach", [False, True])
def test_sgd_with_momentum_updates_flat_through_the_parameters(foreach):
    model, flat = _line()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, foreach=foreach)
    g = torch.tensor([1.0, 2.0, 1.0])
    flat.zero_grad()
    _backward_sum(model)
    optimizer.step()  # buffer = g, x ← x − 0.5·g
    assert torch.allclose(flat.flat, torch.tensor([2.0, 3.0, 1.0]) - 0.5 * g)
    flat.zero_grad()
    _backward_sum(model)
    optimizer.step()  # buffer = 0.9·g + g, x ← x − 0.5·1.9·g
    assert torch.allclose(flat.flat, torch.tensor([0.55, 0.1, -0.45]), atol=1e-6)
    assert flat.is_bound()


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_first_step_moves_every_value_by_lr_against_the_gradient_sign(amsgrad):
    model, flat = _line()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1, amsgrad=amsgrad, foreach=False)
    flat.zero_grad()
    _backward_sum(model)
    optimizer.step()  # bias-corrected m/√v = g/|g| on the first step
    assert torch.allclose(flat.flat, torch.tensor([1.9, 2.9, 0.9]), atol=1e-6)


def test_optimizer_zero_grad_to_none_detaches_and_flat_zero_grad_repairs():
    model, flat = _line()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    _backward_sum(model)
    optimizer.zero_grad()  # set_to_none=True by default: .grad leaves flat_grad
    assert not flat.is_bound()
    flat.zero_grad()
    assert flat.is_bound()
    _backward_sum(model)
    assert torch.equal(flat.flat_grad, torch.tensor([1.0, 2.0, 1.0]))


def test_load_state_dict_writes_into_flat():
    model, flat = _line()
    model.load_state_dict({"weight": torch.tensor([[5.0, 6.0]]), "bias": torch.tensor([7.0])})
    assert torch.equal(flat.flat, torch.tensor([5.0, 6.0, 7.0]))
    assert flat.is_bound()


def test_check_names_a_parameter_the_model_conversion_moved_out():
    model, flat = _line()
    flat.check()
    model.half()
    with pytest.raises(RuntimeError, match=r"'weight'.*move it to its device and dtype first"):
        flat.check()


def test_frozen_parameters_are_left_out():
    model = nn.Linear(2, 1)
    model.bias.requires_grad_(False)
    flat = FlatParameters(model)
    assert flat.numel == 2
    assert flat.names == ("weight",)


def test_tied_parameters_are_stored_once():
    shared = nn.Linear(3, 3)
    flat = FlatParameters(nn.Sequential(shared, nn.ReLU(), shared))
    assert flat.numel == 3 * 3 + 3


def test_refuses_float64_parameters_and_names_each_one():
    with pytest.raises(ConfigError, match=r"weight is torch\.float64; bias is torch\.float64.*float32"):
        FlatParameters(nn.Linear(2, 1).double())


def test_refuses_a_model_without_trainable_parameters():
    with pytest.raises(ConfigError, match="no trainable parameters"):
        FlatParameters(nn.ReLU())
