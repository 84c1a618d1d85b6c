"""One node's privacy: budgets checked before spending, updates privatized, noise seeded apart."""

from __future__ import annotations

import pytest
import torch

from fedgossip.errors import ConfigError
from fedgossip.privacy.accountant import RdpAccountant, default_delta
from fedgossip.privacy.dp_sgd import DpSgd
from fedgossip.privacy.dp_update import DpUpdate
from fedgossip.privacy.node import NodePrivacy


def _node(mechanism, samples=400, target=None, seed=0, rank=0, deterministic=True):
    return NodePrivacy(
        mechanism,
        samples=samples,
        batch_size=32,
        delta=None,
        target_epsilon=target,
        seed=seed,
        rank=rank,
        deterministic=deterministic,
    )


def test_epsilon_is_the_accountants_for_the_steps_taken():
    node = _node(DpSgd(clip=1.0, noise=1.1))
    for steps in (10, 0, 7):
        node.spend(steps)
    reference = RdpAccountant()
    reference.spend(1.1, 32 / 400, 17)
    assert node.delta == default_delta(400)
    assert node.epsilon == pytest.approx(reference.epsilon(default_delta(400)), rel=1e-12)


def test_budget_is_checked_before_the_round_is_spent():
    node = _node(DpSgd(clip=1.0, noise=2.0), target=2.0)
    rounds = 0
    while not node.would_exceed(10):
        node.spend(10)
        rounds += 1
    assert 0 < rounds < 1000
    assert node.epsilon <= 2.0
    node.spend(10)
    assert node.epsilon > 2.0  # the round it refused would indeed have passed the target


def test_no_target_never_stops():
    node = _node(DpSgd(clip=1.0, noise=0.5))
    node.spend(10_000)
    assert not node.would_exceed(10_000)


def test_dp_update_privatizes_what_local_training_changed():
    clip = 0.5
    node = _node(DpUpdate(clip=clip, noise=0.0))
    flat = torch.randn(1000)
    start = flat.clone()
    node.train(flat, lambda: flat.add_(torch.full_like(flat, 0.3)))  # ‖update‖ ≈ 9.5, far above C
    change = flat - start
    assert change.norm() <= clip * (1 + 1e-5)
    assert torch.allclose(change / change.norm(), torch.full_like(flat, 1 / 1000**0.5), atol=1e-5)


def test_dp_update_adds_noise_of_std_sigma_c_to_the_update():
    clip, noise = 0.5, 2.0
    node = _node(DpUpdate(clip=clip, noise=noise))
    flat = torch.zeros(200_000)
    node.train(flat, lambda: None)  # no local change: what moved the model is the noise alone
    # 2e5 draws: the sample std is within 1% of σC with probability > 1 − 1e-9
    assert flat.std().item() == pytest.approx(noise * clip, rel=0.01)


def test_dp_sgd_leaves_the_round_update_alone():
    node = _node(DpSgd(clip=0.01, noise=5.0))
    flat = torch.zeros(100)
    node.train(flat, lambda: flat.add_(3.0))
    assert torch.equal(flat, torch.full((100,), 3.0))  # its privacy is in each step's gradient


def test_noise_seeds_differ_across_ranks_and_runs_unless_deterministic():
    def draw(**kwargs):
        return torch.randn(4, generator=_node(DpUpdate(), **kwargs).generator)

    assert torch.equal(draw(rank=1), draw(rank=1))
    assert not torch.equal(draw(rank=1), draw(rank=2))
    assert not torch.equal(draw(seed=1), draw(seed=2))
    assert not torch.equal(draw(deterministic=False), draw(deterministic=False))
    state = torch.get_rng_state()
    draw(deterministic=False)
    assert torch.equal(state, torch.get_rng_state())  # the model's generators are left alone


def test_dp_update_charges_the_rounds_a_node_trains_at_rate_one():
    node = _node(DpUpdate(clip=1.0, noise=1.0))
    for steps in (5, 0, 0, 5, 5, 0):  # fedavg: chosen in three rounds of six
        node.spend(steps)
    reference = RdpAccountant()
    reference.spend(1.0, 1.0, 3)
    assert node.epsilon == pytest.approx(reference.epsilon(node.delta), rel=1e-12)


def test_a_mechanism_of_no_known_level_is_refused():
    class Careless(DpUpdate):
        level = ""

    with pytest.raises(ConfigError, match="must set level to one of sample, node"):
        Careless()


def test_batchnorm_is_refused_by_node_level_privacy_too():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    with pytest.raises(ConfigError, match="running statistics come from raw samples"):
        DpUpdate().check_model(model)
