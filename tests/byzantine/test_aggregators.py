"""Each aggregator's defining property, on random vectors with arbitrary outliers among them."""

import pytest
import torch

from fedgossip.byzantine.aggregators import AGGREGATORS, clip_to

SIZE = 50


def _honest(generator, count):
    return [torch.randn(SIZE, generator=generator) for _ in range(count)]


def _outliers(generator, count):
    # arbitrary values: huge, of either sign, different in every coordinate
    return [torch.randn(SIZE, generator=generator) * 1e6 for _ in range(count)]


def test_mean_is_the_weighted_sum():
    generator = torch.Generator().manual_seed(0)
    own, received = torch.randn(SIZE, generator=generator), _honest(generator, 3)
    weights = [0.2, 0.3, 0.1]
    expected = 0.4 * own + sum(w * x for w, x in zip(weights, received, strict=True))
    got = AGGREGATORS.create("mean").combine(own, received, weights, 0.4)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize(
    ("spec", "honest", "bad"), [("trimmed-mean:b=2", 4, 2), ("median", 4, 3), ("median", 3, 1)]
)
def test_coordinate_wise_rules_are_unmoved_by_b_arbitrary_values(spec, honest, bad):
    # with own + honest received > 2·bad values, every coordinate stays within the honest values' range
    aggregator = AGGREGATORS.create(spec)
    generator = torch.Generator().manual_seed(1)
    for _ in range(50):
        own, good, evil = (
            torch.randn(SIZE, generator=generator),
            _honest(generator, honest),
            _outliers(generator, bad),
        )
        received = good + evil
        order = torch.randperm(len(received), generator=generator).tolist()  # outliers anywhere in the list
        shuffled = [received[i] for i in order]
        got = aggregator.combine(own, shuffled, [1 / 8] * len(shuffled), 0.5)
        honest_values = torch.stack([own, *good])
        assert torch.all(got >= honest_values.min(dim=0).values - 1e-6)
        assert torch.all(got <= honest_values.max(dim=0).values + 1e-6)


def test_trimmed_mean_with_b_0_is_the_plain_mean_and_median_the_middle_value():
    own, received = torch.tensor([1.0, 5.0]), [torch.tensor([2.0, 4.0]), torch.tensor([9.0, -3.0])]
    torch.testing.assert_close(AGGREGATORS.create("trimmed-mean:b=0").combine(own, received, [0.3, 0.3], 0.4),
                               torch.tensor([4.0, 2.0]))  # fmt: skip
    torch.testing.assert_close(AGGREGATORS.create("median").combine(own, received, [0.3, 0.3], 0.4),
                               torch.tensor([2.0, 4.0]))  # fmt: skip
    # the server has no vector of its own (self weight 0): the median of the received alone
    torch.testing.assert_close(AGGREGATORS.create("median").combine(own, received, [0.5, 0.5], 0.0),
                               torch.tensor([5.5, 0.5]))  # fmt: skip


def test_clipping_bounds_each_neighbours_pull_by_tau():
    clip = AGGREGATORS.create("clip:tau=0.5")
    generator = torch.Generator().manual_seed(2)
    own, good = torch.randn(SIZE, generator=generator), _honest(generator, 3)
    weights = [0.25, 0.25, 0.25]
    base = clip.combine(own, good, weights, 0.25)
    for _ in range(20):
        evil = _outliers(generator, 1)[0]
        attacked = clip.combine(own, [good[0], good[1], evil], weights, 0.25)
        honest_third = clip.combine(own, [good[0], good[1], good[2]], weights, 0.25)
        assert torch.equal(base, honest_third)
        # replacing one neighbour by anything moves the result by at most its weight × 2τ
        assert float(torch.linalg.vector_norm(attacked - base)) <= 0.25 * 2 * 0.5 + 1e-5
    # the whole step is at most Σ_j W_ij τ from the node's own vector
    assert float(torch.linalg.vector_norm(base - own)) <= 0.75 * 0.5 + 1e-5


def test_clipping_with_a_radius_beyond_every_distance_is_the_mean():
    generator = torch.Generator().manual_seed(3)
    own, received = torch.randn(SIZE, generator=generator), _honest(generator, 3)
    weights = [0.2, 0.3, 0.1]
    torch.testing.assert_close(AGGREGATORS.create("clip:tau=1e9").combine(own, received, weights, 0.4),
                               AGGREGATORS.create("mean").combine(own, received, weights, 0.4))  # fmt: skip


def test_adaptive_clipping_cuts_the_b_farthest_to_the_next_ones_distance():
    own = torch.zeros(2)
    received = [torch.tensor([1.0, 0.0]), torch.tensor([0.0, 3.0]), torch.tensor([-10.0, 0.0])]
    clip = AGGREGATORS.create("clip:b=1")
    assert clip.adaptive_tau([x - own for x in received]) == 3.0
    got = clip.combine(own, received, [0.25, 0.25, 0.25], 0.25)
    torch.testing.assert_close(got, 0.25 * (received[0] + received[1] + torch.tensor([-3.0, 0.0])))
    assert float(torch.linalg.vector_norm(clip_to(torch.tensor([3.0, 4.0]), 1.0))) == pytest.approx(1.0)


def test_krum_picks_an_honest_update_and_multi_krum_averages_the_m_best():
    generator = torch.Generator().manual_seed(4)
    good = [torch.ones(SIZE) + 0.01 * torch.randn(SIZE, generator=generator) for _ in range(5)]
    evil = _outliers(generator, 2)
    received = [evil[0], *good[:3], evil[1], *good[3:]]
    krum = AGGREGATORS.create("krum:f=2")
    chosen = krum.chosen(received, 1)[0]
    assert chosen not in (0, 4)
    torch.testing.assert_close(krum.combine(torch.zeros(SIZE), received, [1 / 7] * 7, 0.0), received[chosen])
    multi = AGGREGATORS.create("multi-krum:f=2,m=3")
    best = multi.chosen(received, 3)
    assert not {0, 4} & set(best)
    expected = torch.stack([received[i] for i in best]).mean(dim=0)
    torch.testing.assert_close(multi.combine(torch.zeros(SIZE), received, [1 / 7] * 7, 0.0), expected)


@pytest.mark.parametrize(
    ("spec", "vectors", "says"),
    [
        ("trimmed-mean:b=2", 4, "drops 4 of 4 values"),
        ("krum:f=1", 4, "needs more than 4 client updates"),
        ("multi-krum:f=1,m=9", 6, "averages more updates than the 6"),
        ("clip:b=2", 3, "cuts the b=2 farthest of a node's 2 neighbour(s)"),
    ],
)
def test_an_aggregator_says_which_neighbourhoods_it_cannot_combine(spec, vectors, says):
    assert says in AGGREGATORS.create(spec).tolerance_problem(vectors)
    assert AGGREGATORS.create(spec).tolerance_problem(vectors + 4) is None
