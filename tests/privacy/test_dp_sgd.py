"""dp-sgd: per-sample clipping, a naive reference, the noise's law, Poisson batches, own RNG, no BatchNorm."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn
from torch.nn.functional import cross_entropy

from fedgossip.errors import ConfigError
from fedgossip.local.flat import FlatParameters
from fedgossip.local.models import build_model
from fedgossip.privacy.base import Charge, RoundWork
from fedgossip.privacy.clipping import clip_rows_
from fedgossip.privacy.dp_sgd import DpSgd, PoissonClippedGradient

# Tiny models: a second thread only adds contention (on a loaded 2-core machine, 70 s instead of 6 s).
torch.set_num_threads(1)

# model spec and input shape: an MLP on flat features and a small CNN on 8x8 images
MODELS = {"mlp": ("mlp", (64,)), "cnn": ("cnn:channels=4,hidden=16", (1, 8, 8))}
TAIL = 1e-6  # false-failure probability of each side of every statistical check below


def _shard(n: int, shape: tuple[int, ...], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=g), torch.randint(0, 10, (n,), generator=g)


def _source(
    kind: str, n: int, batch_size: int, clip: float, noise: float, seed: int = 0
) -> tuple[PoissonClippedGradient, nn.Module, FlatParameters]:
    spec, shape = MODELS[kind]
    model = build_model(spec, shape, 10, seed=0)
    flat = FlatParameters(model)
    model.train()
    x, y = _shard(n, shape)
    generator = torch.Generator().manual_seed(seed)
    return DpSgd(clip=clip, noise=noise).make_gradient(model, flat, x, y, batch_size, generator), model, flat


def _naive_gradients(model: nn.Module, flat: FlatParameters, x: torch.Tensor, y: torch.Tensor):
    """Return each sample's unclipped gradient [n, d] and loss [n]: one backward per sample on a copy."""
    rows, losses = [], []
    for i in range(len(y)):
        twin = copy.deepcopy(model)
        twin.zero_grad()
        loss = cross_entropy(twin(x[i : i + 1]), y[i : i + 1])
        loss.backward()
        params = dict(twin.named_parameters())
        rows.append(torch.cat([params[name].grad.reshape(-1) for name in flat.names]))
        losses.append(float(loss.detach()))
    return torch.stack(rows), torch.tensor(losses, dtype=torch.float64)


def _naive_clip(rows: torch.Tensor, clip: float) -> torch.Tensor:
    norms = rows.norm(dim=1, keepdim=True)
    return rows * torch.clamp(clip / (norms + 1e-6), max=1.0)


def test_clip_rows_leaves_short_rows_bit_for_bit_and_caps_long_ones():
    rows = torch.randn(200, 30, generator=torch.Generator().manual_seed(0))
    rows[::2] *= 0.01  # short rows: norm about 0.05
    before = rows.clone()
    norms = clip_rows_(rows, 1.0)
    assert torch.equal(norms, before.norm(dim=1))
    assert torch.equal(rows[::2], before[::2])
    assert torch.all(rows.norm(dim=1) <= 1.0 + 1e-5)
    torch.testing.assert_close(rows[1::2], before[1::2] / (norms[1::2, None] + 1e-6))


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_per_sample_rows_are_clipped_and_short_rows_unchanged(kind):
    source, model, flat = _source(kind, n=24, batch_size=24, clip=1.0, noise=0.0)
    naive, _ = _naive_gradients(model, flat, source.x, source.y)
    norms = naive.norm(dim=1)
    source.clip = clip = float(norms.median())  # half the rows are clipped, half are not
    rows = source.clipped_per_sample(source.x, source.y)
    short, long = norms < clip - 1e-4, norms > clip + 1e-4
    assert short.any() and long.any()
    assert torch.all(rows.norm(dim=1) <= clip + 1e-5)
    torch.testing.assert_close(rows[short], naive[short], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        rows[long], naive[long] * clip / (norms[long, None] + 1e-6), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_noiseless_full_batch_matches_naive_reference(kind):
    # batch_size = n: rate 1, every sample in, and the expected batch is n
    source, model, flat = _source(kind, n=24, batch_size=24, clip=1.0, noise=0.0)
    naive, losses = _naive_gradients(model, flat, source.x, source.y)
    source.clip = clip = float(naive.norm(dim=1).median())
    flat.flat_grad.fill_(7.0)  # stale values must be overwritten, not added to
    loss_sum, samples = source()
    assert samples == 24 and source.rate == 1.0
    expected = _naive_clip(naive, clip).sum(0) / 24
    torch.testing.assert_close(flat.flat_grad, expected, rtol=0, atol=1e-5)
    assert loss_sum.dtype == torch.float64 and loss_sum.shape == () and not loss_sum.requires_grad
    assert float(loss_sum) == pytest.approx(float(losses.sum()), rel=1e-5)
    assert flat.is_bound()  # the optimizer sees the private gradient through every .grad


def test_chunks_give_the_same_gradient_as_one_pass():
    one, _, flat_one = _source("mlp", n=50, batch_size=50, clip=0.3, noise=0.0)
    chunked, _, flat_chunked = _source("mlp", n=50, batch_size=50, clip=0.3, noise=0.0)
    chunked.chunk = 7
    one(), chunked()
    torch.testing.assert_close(flat_chunked.flat_grad, flat_one.flat_grad, rtol=1e-5, atol=1e-7)


def test_noise_is_gaussian_with_std_noise_times_clip():
    clip, noise, batch_size = 0.5, 1.2, 20
    source, _, flat = _source("mlp", n=60, batch_size=batch_size, clip=clip, noise=noise)
    draws = []
    for _ in range(5):  # 5 x 4810 parameters: about 24,000 draws
        source()
        idx = source.last_batch_indices
        clipped_sum = source.clipped_per_sample(source.x[idx], source.y[idx]).sum(0)
        draws.append((flat.flat_grad * batch_size - clipped_sum).double().numpy())
    z = np.concatenate(draws)
    count, sigma = len(z), noise * clip
    # The mean of N(0, σ²) draws is N(0, σ²/N); ΣZ²/σ² is χ²(N). Each check fails wrongly with
    # probability 2·TAIL = 2e-6; float32 rounding (~1e-7) is far below either tolerance.
    assert abs(z.mean()) <= stats.norm.isf(TAIL) * sigma / np.sqrt(count)
    chi2 = (z**2).sum() / sigma**2
    assert stats.chi2.ppf(TAIL, count) <= chi2 <= stats.chi2.isf(TAIL, count)
    assert stats.kstest(z, "norm", args=(0, sigma)).pvalue > 2 * TAIL


def test_poisson_batch_sizes_are_binomial():
    source, _, _ = _source("mlp", n=200, batch_size=50, clip=1.0, noise=1.0)
    n, q, draws = 200, 0.25, 4000
    assert source.rate == q
    sizes = np.array([len(source.sample()) for _ in range(draws)], dtype=np.float64)
    variance = n * q * (1 - q)
    # Batch sizes are Binomial(n, q). Mean: normal within z standard errors. Variance: (m−1)s²/σ² is
    # about χ²(m−1); the binomial's excess kurtosis (1 − 6q(1−q))/(nq(1−q)) ≈ −0.003 makes that
    # normal-theory interval exact to well under its width. Each check fails wrongly with p ≈ 2e-6.
    assert abs(sizes.mean() - n * q) <= stats.norm.isf(TAIL) * np.sqrt(variance / draws)
    scaled = (draws - 1) * sizes.var(ddof=1) / variance
    assert stats.chi2.ppf(TAIL, draws - 1) <= scaled <= stats.chi2.isf(TAIL, draws - 1)


def test_call_reports_the_realized_batch():
    source, _, _ = _source("mlp", n=90, batch_size=32, clip=1.0, noise=1.0)
    for _ in range(5):
        _, samples = source()
        idx = source.last_batch_indices
        assert samples == len(idx) == len(torch.unique(idx))
        assert bool(torch.all((idx >= 0) & (idx < 90)))


def test_empty_sample_gives_noise_over_the_expected_batch():
    model = build_model("mlp", (64,), 10, seed=0)
    flat = FlatParameters(model)
    x, y = _shard(30, (64,))
    g = torch.Generator().manual_seed(0)
    source = PoissonClippedGradient(model, flat, x, y, 0.0, 1.0, 0.0, 10, g)
    flat.flat_grad.fill_(3.0)
    loss_sum, samples = source()
    assert samples == 0 and float(loss_sum) == 0.0 and loss_sum.dtype == torch.float64
    assert torch.equal(flat.flat_grad, torch.zeros_like(flat.flat_grad))
    source.noise = 2.0
    source()
    std = float(flat.flat_grad.std())
    # σC/batch = 0.2; the std of 4810 draws has a relative standard error of 1/√(2·4810) ≈ 1%, so
    # ±10% is ten standard errors: a false failure is far below 1e-6 likely
    assert 0.18 < std < 0.22


def test_same_seed_same_batches_and_noise_other_seed_different():
    def run(seed):
        source, _, flat = _source("mlp", n=90, batch_size=32, clip=1.0, noise=1.0, seed=seed)
        out = []
        for _ in range(3):
            source()
            out.append((source.last_batch_indices.clone(), flat.flat_grad.clone()))
        return out

    first, again, other = run(1), run(1), run(2)
    for (i1, g1), (i2, g2), (i3, g3) in zip(first, again, other, strict=True):
        assert torch.equal(i1, i2) and torch.equal(g1, g2)
        assert not torch.equal(i1, i3) and not torch.equal(g1, g3)


def test_never_touches_torch_global_generator():
    source, _, _ = _source("mlp", n=90, batch_size=32, clip=1.0, noise=1.0)
    global_state, own_state = torch.get_rng_state(), source.generator.get_state()
    source()
    assert torch.equal(torch.get_rng_state(), global_state)
    assert not torch.equal(source.generator.get_state(), own_state)  # its randomness came from its own


@pytest.mark.parametrize("norm", [nn.BatchNorm1d(8), nn.SyncBatchNorm(8)], ids=["batchnorm", "syncbatchnorm"])
def test_batchnorm_is_refused_with_the_reason(norm):
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), norm, nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(ConfigError, match="BatchNorm normalizes each sample with statistics of the others"):
        DpSgd().check_model(model)
    with pytest.raises(ConfigError, match=r"\(2\)"):  # names the offending submodule
        DpSgd().make_gradient(model, FlatParameters(model), torch.zeros(4, 4), torch.zeros(4).long(), 2, None)


@pytest.mark.parametrize(
    ("spec", "shape"),
    [
        ("logreg", (64,)),
        ("mlp", (64,)),
        ("cnn:channels=4,hidden=16", (1, 8, 8)),
        ("resnet8:width=4", (3, 8, 8)),
    ],
)
def test_builtin_models_are_accepted(spec, shape):
    model = build_model(spec, shape, 10, seed=0)
    flat = FlatParameters(model)
    x, y = _shard(20, shape)
    source = DpSgd(clip=1.0, noise=1.0).make_gradient(model, flat, x, y, 8, torch.Generator().manual_seed(0))
    loss_sum, _ = source()
    assert bool(torch.isfinite(flat.flat_grad).all()) and bool(torch.isfinite(loss_sum))


def test_charge_is_one_subsampled_gaussian_per_step():
    mechanism = DpSgd(clip=0.5, noise=1.2)
    assert mechanism.level == "sample"
    assert mechanism.charge(RoundWork(steps=5, samples=200, batch_size=50)) == Charge(rate=0.25, count=5)
    assert mechanism.charge(RoundWork(steps=3, samples=20, batch_size=50)) == Charge(rate=1.0, count=3)
    assert mechanism.charge(RoundWork(steps=0, samples=200, batch_size=50)).count == 0


def test_invalid_settings_are_all_reported():
    with pytest.raises(ConfigError, match=r"clip=.*noise="):
        DpSgd(clip=0.0, noise=-1.0)
