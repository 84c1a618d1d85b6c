"""A small digits partition shared by the API tests: 4 nodes, made once per module."""

from __future__ import annotations

from pathlib import Path

import pytest

import fedgossip as fg
import fedgossip.run.records


@pytest.fixture(autouse=True)
def no_guardian(monkeypatch):
    """Keep in-process runs from starting their guardian, which would wait for pytest to end."""
    monkeypatch.setattr(fedgossip.run.records, "start_guardian", lambda *args, **kwargs: None)


@pytest.fixture(scope="module")
def digits4(tmp_path_factory) -> Path:
    """Return the directory of a 4-node Dirichlet(0.5) digits partition."""
    out = tmp_path_factory.mktemp("partition") / "digits-4"
    fg.create_partition("digits", nodes=4, scheme="dirichlet:alpha=0.5", out=out, seed=1)
    return out
