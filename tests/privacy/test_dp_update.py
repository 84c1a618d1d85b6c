"""dp-update: the update is clipped, then noised with std σ·C from its own generator; one charge a round."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from fedgossip.errors import ConfigError
from fedgossip.local.models import build_model
from fedgossip.privacy.base import Charge, RoundWork
from fedgossip.privacy.dp_update import DpUpdate, clip_norm_

TAIL = 1e-6  # false-failure probability of each side of every statistical check below


def _vector(n: int, norm: float, seed: int = 0) -> torch.Tensor:
    v = torch.randn(n, generator=torch.Generator().manual_seed(seed))
    return v * (norm / v.norm())


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_clip_norm_scales_a_long_vector_to_clip_and_returns_its_norm():
    v = _vector(100, 5.0)
    before = v.clone()
    assert clip_norm_(v, 2.0) == pytest.approx(5.0, rel=1e-6)
    assert float(v.norm()) <= 2.0
    torch.testing.assert_close(v, before * 2.0 / 5.0)


@pytest.mark.parametrize("norm", [0.0, 0.5, 2.0 - 1e-5])
def test_clip_norm_leaves_a_short_vector_bit_for_bit(norm):
    v = _vector(100, norm)
    before = v.clone()
    assert clip_norm_(v, 2.0) == pytest.approx(norm, abs=1e-6)
    assert torch.equal(v, before)


def test_noiseless_update_is_clipped_along_its_direction():
    update = _vector(1000, 10.0)
    before = update.clone()
    DpUpdate(clip=0.7, noise=0.0).privatize_update(update, _generator())
    assert float(update.norm()) <= 0.7 + 1e-6
    assert float(update.norm()) == pytest.approx(0.7, rel=1e-5)
    torch.testing.assert_close(update / update.norm(), before / before.norm())


def test_noiseless_update_under_clip_is_untouched():
    update = _vector(1000, 0.3)
    before = update.clone()
    DpUpdate(clip=0.7, noise=0.0).privatize_update(update, _generator())
    assert torch.equal(update, before)


def test_noise_is_gaussian_with_std_noise_times_clip_added_after_clipping():
    clip, noise, n = 0.4, 1.5, 20_000
    update = _vector(n, 50.0)
    clipped = update * clip / (50.0 + 1e-6)  # clip first: the noise must not be clipped away
    DpUpdate(clip=clip, noise=noise).privatize_update(update, _generator())
    z = (update - clipped).double().numpy()
    sigma = noise * clip
    # The mean of N(0, σ²) draws is N(0, σ²/N); ΣZ²/σ² is χ²(N). Each check fails wrongly with
    # probability 2·TAIL = 2e-6; float32 rounding (~1e-7) is far below either tolerance.
    assert abs(z.mean()) <= stats.norm.isf(TAIL) * sigma / np.sqrt(n)
    assert stats.chi2.ppf(TAIL, n) <= (z**2).sum() / sigma**2 <= stats.chi2.isf(TAIL, n)
    assert stats.kstest(z, "norm", args=(0, sigma)).pvalue > 2 * TAIL


def test_noise_comes_from_the_given_generator_only():
    mechanism = DpUpdate(clip=1.0, noise=1.0)
    first, again, other = _vector(500, 3.0), _vector(500, 3.0), _vector(500, 3.0)
    global_state = torch.get_rng_state()
    mechanism.privatize_update(first, _generator(1))
    mechanism.privatize_update(again, _generator(1))
    mechanism.privatize_update(other, _generator(2))
    assert torch.equal(torch.get_rng_state(), global_state)
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_full_participation_charges_one_composition_per_round_with_steps():
    mechanism = DpUpdate(clip=1.0, noise=1.0)
    assert mechanism.level == "node"
    assert mechanism.charge(RoundWork(steps=3, samples=100, batch_size=10)) == Charge(rate=1.0, count=1)
    assert mechanism.charge(RoundWork(steps=0, samples=100, batch_size=10)).count == 0


def test_keeps_plain_batches_and_any_model():
    mechanism = DpUpdate()
    model = build_model("mlp", (4,), 2, seed=0)
    mechanism.check_model(model)
    assert (
        mechanism.make_gradient(model, None, torch.zeros(2, 4), torch.zeros(2).long(), 2, _generator())
        is None
    )


def test_invalid_settings_are_all_reported():
    with pytest.raises(ConfigError, match=r"clip=.*noise="):
        DpUpdate(clip=-1.0, noise=-0.5)
