"""What each attack forges from what the attacker has seen, and the attackers a spec picks."""

import pytest
import torch

from fedgossip.byzantine.attacks import ATTACKS
from fedgossip.errors import ConfigError
from fedgossip.settings.attackers_spec import parse_attackers

OWN = torch.tensor([1.0, -2.0, 3.0])
SEEN = [torch.tensor([0.0, 1.0, 2.0]), torch.tensor([2.0, 3.0, 2.0])]  # mean [1, 2, 2], std [1, 1, 0]
RECEIVER = torch.tensor([4.0, 0.0, 0.0])


def _forge(spec, seen=SEEN, receiver=RECEIVER, seed=0):
    return ATTACKS.create(spec).forge(OWN, seen, receiver, torch.Generator().manual_seed(seed))


def test_model_attacks_follow_their_formulas():
    torch.testing.assert_close(_forge("sign-flip:scale=2"), torch.tensor([-2.0, 4.0, -6.0]))
    torch.testing.assert_close(_forge("alie:z=1.5"), torch.tensor([1 - 1.5, 2 - 1.5, 2.0]))
    torch.testing.assert_close(_forge("ipm:eps=0.5"), torch.tensor([-0.5, -1.0, -1.0]))
    # dissensus: past the receiver, away from the honest mean: r − ε(μ − r)
    torch.testing.assert_close(
        _forge("dissensus:eps=2"), torch.tensor([4 - 2 * (1 - 4), 0 - 2 * 2, 0 - 2 * 2.0])
    )
    torch.testing.assert_close(_forge("label-flip"), OWN)  # it lies in its training, not on the wire
    assert ATTACKS.create("label-flip").flips_labels and not ATTACKS.create("alie").flips_labels


def test_attacks_without_views_fall_back_to_the_attackers_own_model():
    torch.testing.assert_close(_forge("alie", seen=[], receiver=None), OWN)
    torch.testing.assert_close(_forge("dissensus", seen=[], receiver=None), OWN)


def test_gaussian_noise_has_the_asked_spread_and_repeats_from_its_seed():
    noise = ATTACKS.create("gaussian:std=3").forge(
        torch.zeros(40_000), [], None, torch.Generator().manual_seed(5)
    )
    # the sample std of 40,000 normal draws is within 2% of σ with overwhelming probability (sd ≈ 0.35%)
    assert float(noise.std()) == pytest.approx(3.0, rel=0.02)
    assert abs(float(noise.mean())) < 5 * 3.0 / 200  # 5 standard errors
    again = ATTACKS.create("gaussian:std=3").forge(
        torch.zeros(40_000), [], None, torch.Generator().manual_seed(5)
    )
    assert torch.equal(noise, again)


def test_attackers_by_id_and_by_seeded_fraction():
    assert parse_attackers("none") is None
    assert parse_attackers("7,3").resolve(16, 0) == (3, 7)
    drawn = parse_attackers("fraction=0.125").resolve(16, seed=4)
    assert len(drawn) == 2 and drawn == parse_attackers("fraction=0.125").resolve(16, seed=4)
    assert (
        len({parse_attackers("fraction=0.125").resolve(16, seed=s) for s in range(20)}) > 5
    )  # the seed draws
    # fedavg's server (node 0) is never drawn
    assert all(0 not in parse_attackers("fraction=0.5").resolve(9, seed=s, server=0) for s in range(20))


@pytest.mark.parametrize(
    ("text", "nodes", "says"),
    [
        ("3,x", 8, "give --attackers 3,7"),
        ("fraction=1", 8, "must lie in (0, 1)"),
        ("9", 8, "the run has nodes 0-7"),
        ("0", 8, "node 0 is the server"),
        ("fraction=0.5", 2, "makes all 1 nodes attackers"),  # the one client
    ],
)
def test_bad_attackers_are_refused_naming_the_fix(text, nodes, says):
    with pytest.raises(ConfigError) as caught:
        parse_attackers(text).resolve(nodes, seed=0, server=0)
    assert says in str(caught.value)
