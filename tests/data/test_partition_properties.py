"""Properties every partitioner must have, checked on random data, node counts and parameters.

For each scheme an independent statement of when a split is possible decides the
expected outcome: a feasible request must give a valid partition, an infeasible
one must raise ``ConfigError`` before any work.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from fedgossip.data.partition import PARTITIONERS, Samples
from fedgossip.data.partition.base import check_cover
from fedgossip.errors import ConfigError


@st.composite
def samples(draw) -> Samples:
    """Labels with uneven class frequencies (some classes possibly absent), and natural groups."""
    n = draw(st.integers(0, 600))
    num_classes = draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    frequencies = rng.dirichlet(np.full(num_classes, draw(st.sampled_from([0.3, 1.0, 10.0]))))
    y = rng.choice(num_classes, size=n, p=frequencies).astype(np.int64)
    groups = rng.integers(0, draw(st.integers(1, 60)), size=n)
    return Samples(y=y, num_classes=num_classes, groups=groups)


alphas = st.sampled_from([1e-4, 0.01, 0.1, 0.5, 2.0, 1e3])


@st.composite
def dirichlet_specs(draw) -> str:
    alpha, min_size, balance = draw(alphas), draw(st.integers(0, 20)), draw(st.booleans())
    return f"dirichlet:alpha={alpha},min_size={min_size},balance={str(balance).lower()}"


def _class_sizes(s: Samples) -> np.ndarray:
    return np.bincount(s.y, minlength=s.num_classes)


def _shards_feasible(s: Samples, nodes: int, k: int) -> bool:
    present = _class_sizes(s)[_class_sizes(s) > 0]
    if k > len(present) or nodes * k < len(present):
        return False
    most_holders = -(-nodes * k // len(present))
    return bool(present.min() >= most_holders)


# scheme -> (spec strategy, feasibility stated independently of the implementation)
SCHEMES = {
    "iid": (st.just("iid"), lambda s, nodes, spec: nodes <= len(s)),
    "dirichlet": (
        dirichlet_specs(),
        lambda s, nodes, spec: max(spec.min_size, 1) * nodes <= len(s),
    ),
    "shards": (
        st.integers(1, 6).map(lambda k: f"shards:classes_per_node={k}"),
        lambda s, nodes, spec: _shards_feasible(s, nodes, spec.classes_per_node),
    ),
    "quantity": (
        st.builds(
            lambda sigma, m: f"quantity:sigma={sigma},min_size={m}",
            st.sampled_from([0, 0.5, 3]),
            st.integers(1, 8),
        ),
        lambda s, nodes, spec: spec.min_size * nodes <= len(s),
    ),
    "natural": (st.just("natural"), lambda s, nodes, spec: nodes <= len(np.unique(s.groups))),
}


def _check_partition(parts: list[np.ndarray], s: Samples, nodes: int) -> None:
    assert len(parts) == nodes
    assert all(p.dtype == np.int64 for p in parts)
    assert all(len(p) > 0 for p in parts), "a node is empty"
    check_cover(parts, len(s))


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_every_sample_lands_on_exactly_one_node_or_the_request_is_refused(scheme, data):
    spec_strategy, feasible = SCHEMES[scheme]
    s = data.draw(samples(), label="samples")
    nodes = data.draw(st.integers(1, 80), label="nodes")
    partitioner = PARTITIONERS.create(data.draw(spec_strategy, label="spec"))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    possible = feasible(s, nodes, partitioner)
    event("feasible" if possible else "refused")
    if not possible:
        with pytest.raises(ConfigError):
            partitioner.split(s, nodes, rng)
        return
    _check_partition(partitioner.split(s, nodes, rng), s, nodes)


@settings(max_examples=60, deadline=None)
@given(s=samples().filter(lambda s: len(s) > 0), spec=dirichlet_specs(), data=st.data())
def test_dirichlet_min_size_holds_for_any_alpha(s, spec, data):
    partitioner = PARTITIONERS.create(spec)
    floor = max(partitioner.min_size, 1)
    nodes = data.draw(st.integers(1, max(1, len(s) // floor)), label="nodes")
    if floor * nodes > len(s):  # only when even one node cannot reach min_size
        return
    parts = partitioner.split(s, nodes, np.random.default_rng(0))
    assert min(len(p) for p in parts) >= floor
    check_cover(parts, len(s))


@pytest.mark.parametrize("nodes", [0, -3])
@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_fewer_than_one_node_is_refused(scheme, nodes):
    s = Samples(y=np.arange(20) % 2, num_classes=2, groups=np.arange(20) % 4)
    with pytest.raises(ConfigError, match="at least 1"):
        PARTITIONERS.create(scheme).split(s, nodes, np.random.default_rng(0))


RANDOM_SPECS = ["iid", "dirichlet:alpha=0.1", "dirichlet:alpha=0.5,balance=true", "shards", "quantity"]


@pytest.mark.parametrize("spec", [*RANDOM_SPECS, "natural"])
def test_same_seed_gives_the_same_partition(spec):
    s = _digits_like()
    first = PARTITIONERS.create(spec).split(s, 12, np.random.default_rng(7))
    again = PARTITIONERS.create(spec).split(s, 12, np.random.default_rng(7))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


@pytest.mark.parametrize("spec", RANDOM_SPECS)
def test_different_seed_gives_a_different_partition(spec):
    s = _digits_like()
    first = PARTITIONERS.create(spec).split(s, 12, np.random.default_rng(7))
    other = PARTITIONERS.create(spec).split(s, 12, np.random.default_rng(8))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_every_declared_scheme_is_registered():
    assert {"iid", "dirichlet", "shards", "quantity", "natural"} <= set(PARTITIONERS.available())


def _digits_like() -> Samples:
    rng = np.random.default_rng(0)
    return Samples(y=rng.integers(0, 10, 1200), num_classes=10, groups=rng.integers(0, 30, 1200))
