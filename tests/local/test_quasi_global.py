"""Quasi-global momentum follows Lin et al. 2021's Algorithm 1, written out here with numpy."""

from __future__ import annotations

import numpy as np
import torch

from fedgossip.local.optim import make_optimizer


def test_steps_and_round_ends_follow_the_papers_rule_computed_independently():
    rng = np.random.default_rng(0)
    lr, beta, decay, steps = 0.1, 0.9, 0.01, 3
    param = torch.nn.Parameter(torch.from_numpy(rng.normal(size=5).astype(np.float64)))
    optimizer = make_optimizer("qgm", [param], lr, momentum=beta, weight_decay=decay)
    x, buffer = param.detach().numpy().copy(), np.zeros(5)
    for _ in range(4):  # rounds
        start = x.copy()
        for _ in range(steps):
            grad = rng.normal(size=5)
            param.grad = torch.from_numpy(grad.copy())
            optimizer.step()
            x = x - lr * (grad + decay * x + beta * buffer)
        gossip = rng.normal(size=5) * 0.1  # what the exchange moved the model by
        with torch.no_grad():
            param.add_(torch.from_numpy(gossip))
        x = x + gossip
        optimizer.end_round()
        kept = beta**steps  # μ = β per local step, μ^K over a round of K steps
        buffer = kept * buffer + (1 - kept) * (start - x) / (steps * lr)
        np.testing.assert_allclose(param.detach().numpy(), x, rtol=1e-12, atol=1e-12)
        state = optimizer.state[param]
        np.testing.assert_allclose(state["quasi_global"].numpy(), buffer, rtol=1e-12, atol=1e-12)


def test_a_round_without_steps_keeps_the_buffer_and_restarts_from_the_moved_model():
    param = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    optimizer = make_optimizer("qgm:mu=0.5", [param], 0.1, momentum=0.9)
    param.grad = torch.ones(3, dtype=torch.float64)
    optimizer.step()
    optimizer.end_round()
    before = optimizer.state[param]["quasi_global"].clone()
    with torch.no_grad():
        param.add_(5.0)  # gossip only
    optimizer.end_round()
    assert torch.equal(optimizer.state[param]["quasi_global"], before)
    assert torch.equal(optimizer.state[param]["round_start"], param.detach())
    again = make_optimizer("qgm:mu=0.5", [torch.nn.Parameter(param.detach().clone())], 0.1, momentum=0.9)
    again.load_state_dict(optimizer.state_dict())
    assert torch.equal(next(iter(again.state.values()))["quasi_global"], before)
