"""``import fedgossip`` is cheap, and every name of ``__all__`` is there on first use."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import fedgossip as fg


def test_importing_the_package_loads_neither_torch_nor_mpi():
    probe = "import json, sys, fedgossip; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = {name.partition(".")[0] for name in json.loads(done.stdout)}
    assert "fedgossip" in loaded and loaded.isdisjoint({"torch", "mpi4py", "h5py", "numpy"})


def test_every_public_name_resolves_and_an_unknown_one_is_an_attribute_error():
    for name in fg.__all__:
        assert getattr(fg, name) is not None, name
    assert sorted(fg.__all__) == [name for name in dir(fg) if name in fg.__all__]
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        fg.__getattr__("no_such_name")
