"""``fedgossip partition create python:path=F.py,function=load``: a user's function as the data."""

import textwrap

import numpy as np
import pytest

from fedgossip.data.shards import Partition

_LOADER = """
import numpy as np

def load():
    rng = np.random.default_rng(7)
    x_train = rng.normal(size=(60, 3)).astype(np.float32)
    y_train = np.arange(60) % 3
    x_test = rng.normal(size=(9, 3)).astype(np.float32)
    y_test = np.arange(9) % 3
    return x_train, y_train, x_test, y_test
"""


def _write(tmp_path, source, name="data.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def test_partition_round_trips_the_functions_arrays(run_cli, tmp_path):
    path = _write(tmp_path, _LOADER)
    out = tmp_path / "p"
    result = run_cli("partition", "create", f"python:path={path},function=load", "-n", 4, "--out", out)
    assert result.exit_code == 0, result.stderr
    namespace = {}
    exec(compile(_LOADER, "loader", "exec"), namespace)  # the arrays, recomputed apart from fedgossip
    x_train, y_train, x_test, y_test = namespace["load"]()
    partition = Partition(out)
    shards = [partition.read_shard(node) for node in range(4)]
    index = np.concatenate([shard.index for shard in shards])
    assert sorted(index.tolist()) == list(range(len(y_train)))  # every sample once
    for shard in shards:
        np.testing.assert_array_equal(shard.x, x_train[shard.index])
        np.testing.assert_array_equal(shard.y, y_train[shard.index])
    test = partition.read_test()
    np.testing.assert_array_equal(test.x, x_test)
    np.testing.assert_array_equal(test.y, y_test)


def test_a_dict_of_tensors_is_accepted(run_cli, tmp_path):
    path = _write(
        tmp_path,
        """
        import torch

        def make():
            return {"x_train": torch.arange(80.0).reshape(40, 2), "y_train": torch.arange(40) % 2}
        """,
    )
    out = tmp_path / "p"
    spec = f"python:path={path},function=make"
    result = run_cli("partition", "create", spec, "-n", 2, "--scheme", "iid", "--out", out)
    assert result.exit_code == 0, result.stderr
    partition = Partition(out)
    for x, y in [(s.x, s.y) for s in map(partition.read_shard, range(2))] + [(partition.read_test().x, None)]:
        row = x[:, 0] / 2  # the tensor's sample i is [2i, 2i + 1] with label i % 2
        np.testing.assert_array_equal(x[:, 1], x[:, 0] + 1)
        if y is not None:
            np.testing.assert_array_equal(y, row % 2)


def test_an_importable_module_is_a_source_too(run_cli, tmp_path, monkeypatch):
    package = tmp_path / "mydata"
    package.mkdir()
    (package / "__init__.py").write_text("")
    _write(package, _LOADER, name="loaders.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "p"
    result = run_cli("partition", "create", "python:path=mydata.loaders", "-n", 3, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert Partition(out).manifest.test.size == 9  # the function's own test split, not one carved off


_FILE = "path={tmp}/data.py"


def _returns(expression):
    return f"import numpy as np\n\ndef load():\n    return {expression}\n"


@pytest.mark.parametrize(
    ("source", "spec", "message"),
    [
        (None, "path={tmp}/absent.py", "no such file"),
        ("def load(:\n", _FILE, "line 1: SyntaxError"),
        ("raise RuntimeError('no disk')\n", _FILE, "raised RuntimeError: no disk"),
        ("import numpy as np\n", _FILE, "defines no function 'load'"),
        ("load = 3\n", _FILE, "not a function"),
        ("def load():\n    raise KeyError('x')\n", _FILE, "raised KeyError"),
        (_returns("[1, 2]"), _FILE, "returned a list"),
        (_returns("(1, 2, 3)"), _FILE, "returned a tuple of 3"),
        (_returns("{'x': 1}"), _FILE, "the dict has keys ['x']"),
        (_returns("[1], np.zeros(1)"), _FILE, "x_train is a list"),
        (_returns("np.zeros((10, 2)), np.zeros(10)"), _FILE, "must hold integer labels"),
        (_returns("np.zeros((10, 2)), np.zeros((10, 1), int)"), _FILE, "expected [n]"),
        (_returns("np.zeros((10, 2)), -np.ones(10, int)"), _FILE, "labels must be integers >= 0"),
        (_returns("np.zeros((10, 2)), np.zeros(9, int)"), _FILE, "9 labels"),
        (_returns("np.full((10, 2), np.nan), np.zeros(10, int)"), _FILE, "NaN"),
        (_returns("np.zeros((10, 2)), np.arange(10) % 2, np.zeros((3, 5)), np.zeros(3, int)"), _FILE, "(5,)"),
        (None, "path=no_such_pkg.mod", "no module named 'no_such_pkg'"),
    ],
)
def test_bad_function_is_one_line_exit_1_and_writes_nothing(run_cli, tmp_path, source, spec, message):
    code = tmp_path / "code"
    code.mkdir()
    if source is not None:
        _write(code, source)
    out = tmp_path / "out"
    out.mkdir()
    result = run_cli("partition", "create", "python:" + spec.format(tmp=code), "-n", 2, "--out", out / "p")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(out.iterdir()) == []
