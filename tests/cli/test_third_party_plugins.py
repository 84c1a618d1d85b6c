"""Third-party plugins as users ship them: real distributions, installed by pip, used by the CLI.

``fedgossip-stripes`` adds a partitioner (``stripes``) and a compressor (``int8``);
``fedgossip-rival`` claims the built-in compressor name ``topk``. Each is built
and installed offline once per module (about a second each) into its own
folder, which the commands under test find through ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from fedgossip.bench.gossip import find_mpiexec
from fedgossip.compress.base import Compressor, Packet
from fedgossip.compress.wire import HEADER_SIZE
from fedgossip.errors import WireError
from fedgossip.registry import Registry

STRIPES = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "fedgossip-stripes"
        version = "0.1.0"
        dependencies = ["fedgossip"]

        [project.entry-points."fedgossip.partitioners"]
        stripes = "fedgossip_stripes.stripes:Stripes"

        [project.entry-points."fedgossip.compressors"]
        int8 = "fedgossip_stripes.int8:Int8"

        [tool.setuptools]
        packages = ["fedgossip_stripes"]
    """,
    "fedgossip_stripes/__init__.py": '''
        """fedgossip plugins: the ``stripes`` partitioner and the ``int8`` compressor."""
    ''',
    "fedgossip_stripes/stripes.py": '''
        """``stripes``: sort the samples by label and cut them into contiguous stripes, one per node."""

        from __future__ import annotations

        import numpy as np

        from fedgossip.data.partition.base import Partitioner, Samples
        from fedgossip.errors import ConfigError
        from fedgossip.registry import check_params
        from fedgossip.specs import Param

        __all__ = ["Stripes"]


        class Stripes(Partitioner):
            """Sort the samples by label and give each node one contiguous stripe (extreme label skew).

            ``mix`` is the share of samples swapped among themselves at random before
            the cut: 0 gives pure stripes, 1 an IID split.
            """

            params = (Param("mix", float, 0.0, "share of samples shuffled across the stripes", ge=0, le=1),)

            def __init__(self, mix: float = 0.0):
                check_params(type(self), mix=mix)
                self.mix = float(mix)

            def split(self, samples: Samples, num_nodes: int, rng: np.random.Generator) -> list[np.ndarray]:
                """Return one sorted int64 index array per node, sizes differing by at most 1."""
                if not 1 <= num_nodes <= len(samples):
                    raise ConfigError(
                        f"stripes needs 1 to {len(samples)} nodes for {len(samples)} samples, got {num_nodes}"
                    )
                # A random order within each label: a stripe ending inside a class takes a random part of it.
                order = rng.permutation(len(samples))
                order = order[np.argsort(samples.y[order], kind="stable")]
                mixed = rng.choice(len(order), size=round(self.mix * len(order)), replace=False)
                order[mixed] = order[rng.permutation(mixed)]
                return [np.sort(part).astype(np.int64) for part in np.array_split(order, num_nodes)]
    ''',
    "fedgossip_stripes/int8.py": '''
        """``int8``: every value rounded to a signed byte, scaled by the largest magnitude of its block.

        Payload, little-endian, with ``nblocks = ceil(n / block)``::

            scale  float32 × nblocks   max |x| / 127 of each block
            codes  int8 × n            round(x / scale), in -127..127

        Rounding to nearest bounds each value's error by ``scale / 2``, so the code
        is contractive and CHOCO-gossip's full step γ = 1 suits it. A block holding a
        NaN or an infinity gets a non-finite scale and decodes to NaN, so a diverged
        model stays visible to its neighbours.
        """

        from __future__ import annotations

        import numpy as np
        import torch

        from fedgossip.compress.base import Compressor, Packet, as_float32_array, output_tensor
        from fedgossip.errors import WireError
        from fedgossip.registry import check_params
        from fedgossip.specs import Param

        __all__ = ["Int8"]

        LEVELS = 127  # -128 is never sent: the code stays symmetric around zero


        class Int8(Compressor):
            """Round each value to a signed byte times its block's scale (1 byte per value)."""

            params = (Param("block", int, 256, "values sharing one float32 scale", ge=1, le=2**31 - 1),)

            def __init__(self, block: int = 256):
                check_params(type(self), block=block)
                self.block = block

            def nbytes(self, count: int) -> int:
                return 4 * self._blocks(count) + count

            def encode(self, x: torch.Tensor, key: int = 0) -> Packet:
                values = as_float32_array(x)
                count, blocks = values.size, self._blocks(values.size)
                grid = np.zeros(blocks * self.block, dtype=np.float32)
                grid[:count] = values
                grid = grid.reshape(blocks, self.block)
                with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                    scale = np.abs(grid).max(axis=1) / np.float32(LEVELS)
                    codes = np.rint(grid / scale[:, None])
                # 0/0 in an all-zero block and inf/inf: code 0 (which decodes to NaN times an infinite scale)
                codes = np.clip(np.nan_to_num(codes, nan=0.0), -LEVELS, LEVELS).astype(np.int8).ravel()
                payload = np.empty(self.nbytes(count), dtype=np.uint8)
                payload[: 4 * blocks] = scale.astype("<f4").view(np.uint8)
                payload[4 * blocks :] = codes[:count].view(np.uint8)
                return Packet(count=count, payload=payload, block=self.block)

            def decode(self, packet: Packet, out: torch.Tensor | None = None) -> torch.Tensor:
                self.check_packet(packet)
                result = output_tensor(packet.count, out)
                scale, codes = self._fields(packet)
                scales = np.repeat(scale.astype(np.float32), self.block)[: packet.count]
                with np.errstate(invalid="ignore"):
                    result.numpy()[:] = codes.astype(np.float32) * scales
                return result

            def check_packet(self, packet: Packet) -> None:
                """Check the size and block, then that every scale is >= 0 and no code is -128."""
                super().check_packet(packet)
                scale, codes = self._fields(packet)
                problems = []
                if np.any(scale < 0):
                    problems.append("a negative scale")
                if np.any(codes == -LEVELS - 1):
                    problems.append("the code -128")
                if problems:
                    raise WireError(f"int8 packet of {packet.count} values has " + " and ".join(problems))

            def _blocks(self, count: int) -> int:
                return -(-count // self.block)

            def _fields(self, packet: Packet) -> tuple[np.ndarray, np.ndarray]:
                payload = np.ascontiguousarray(packet.payload, dtype=np.uint8)
                blocks = self._blocks(packet.count)
                return payload[: 4 * blocks].view("<f4"), payload[4 * blocks :].view(np.int8)
    ''',
}

RIVAL = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "fedgossip-rival"
        version = "2.0.0"

        [project.entry-points."fedgossip.compressors"]
        topk = "fedgossip_rival:TopK"

        [tool.setuptools]
        packages = ["fedgossip_rival"]
    """,
    "fedgossip_rival/__init__.py": '''
        """A package that registers a compressor under a name fedgossip already uses."""

        from fedgossip.compress import sparse


        class TopK(sparse.TopK):
            """Send the k largest values (a rival implementation)."""
    ''',
}


def _install(root: Path, files: dict[str, str]) -> Path:
    """Write a source tree under ``root/src``, pip-install it into ``root/site`` offline, return the site."""
    for name, text in files.items():
        path = root / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    site = root / "site"
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    command += ["--no-build-isolation", "--target", str(site), str(root / "src")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return site


@pytest.fixture(scope="module")
def stripes_site(tmp_path_factory) -> Path:
    return _install(tmp_path_factory.mktemp("stripes"), STRIPES)


@pytest.fixture(scope="module")
def rival_site(tmp_path_factory) -> Path:
    return _install(tmp_path_factory.mktemp("rival"), RIVAL)


def _env(*sites: Path) -> dict[str, str]:
    path = os.pathsep.join([*(str(s) for s in sites), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    settings = {"PYTHONPATH": path, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "100"}
    return {**os.environ, **settings}


def _fedgossip(sites: list[Path], *args, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "fedgossip", *[str(a) for a in args]]
    return subprocess.run(command, cwd=cwd, env=_env(*sites), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def striped(stripes_site, tmp_path_factory) -> Path:
    """A digits partition over 2 nodes made by the third-party ``stripes`` scheme."""
    out = tmp_path_factory.mktemp("striped") / "part"
    args = ["partition", "create", "digits", "--nodes", 2, "--scheme", "stripes:mix=0", "--out", out]
    done = _fedgossip([stripes_site], *args, cwd=out.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_plugins_lists_third_party_plugins_with_their_distribution(stripes_site, tmp_path):
    shown = _fedgossip([stripes_site], "plugins", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    listing = json.loads(shown.stdout)
    stripes = {row["name"]: row for row in listing["partitioners"]["plugins"]}["stripes"]
    int8 = {row["name"]: row for row in listing["compressors"]["plugins"]}["int8"]
    assert stripes["provider"] == int8["provider"] == "fedgossip-stripes"
    (mix,) = stripes["params"]
    assert (mix["name"], mix["default"], mix["allowed"]) == ("mix", 0.0, ">= 0 and <= 1")
    assert [(p["name"], p["default"]) for p in int8["params"]] == [("block", 256)]
    assert listing["compressors"]["problems"] == {}

    table = _fedgossip([stripes_site], "plugins", cwd=tmp_path).stdout
    assert "stripes" in table and "int8" in table
    assert table.count("from fedgossip-stripes") == 2


def test_int8_meets_the_compressor_contract(stripes_site, monkeypatch):
    monkeypatch.syspath_prepend(str(stripes_site))
    int8 = Registry("compressors", Compressor).create("int8:block=8")  # a fresh registry finds it on sys.path
    x = torch.randn(1001, generator=torch.Generator().manual_seed(0))
    packet = int8.encode(x)
    assert packet.payload.size == int8.nbytes(1001) == 4 * 126 + 1001 and packet.block == 8
    padded = np.zeros(126 * 8, dtype=np.float32)
    padded[:1001] = x.numpy()
    half_step = np.repeat(np.abs(padded.reshape(126, 8)).max(axis=1) / 127 / 2, 8)[:1001]
    assert np.all(np.abs(int8.decode(packet).numpy() - x.numpy()) <= half_step * (1 + 1e-5))

    negative = packet.payload.copy()
    negative[:4] = np.array([-1.0], dtype="<f4").view(np.uint8)
    with pytest.raises(WireError, match="negative scale"):
        int8.decode(Packet(1001, negative, block=8))
    impossible = packet.payload.copy()
    impossible[4 * 126] = 0x80  # int8 -128, outside the symmetric code
    with pytest.raises(WireError, match="the code -128"):
        int8.decode(Packet(1001, impossible, block=8))
    with pytest.raises(WireError, match="expected 8"):
        int8.decode(Packet(1001, packet.payload, block=16))
    with pytest.raises(WireError, match="payload bytes"):
        int8.decode(Packet(1001, packet.payload[:-1], block=8))


def test_partition_create_cuts_stripes_of_labels(striped):
    manifest = json.loads((striped / "partition.json").read_text())
    assert manifest["scheme"] == "stripes:mix=0.0"
    first, second = (shard["label_histogram"] for shard in manifest["shards"])
    last_of_first = max(label for label, count in enumerate(first) if count)
    first_of_second = min(label for label, count in enumerate(second) if count)
    assert last_of_first <= first_of_second  # at most the class at the cut is on both nodes
    assert abs(sum(first) - sum(second)) <= 1


def test_mpi_training_sends_int8_packets(striped, stripes_site, tmp_path):
    ranks, rounds = 2, 3
    command = [find_mpiexec(), "-n", str(ranks), sys.executable, "-m", "fedgossip", "train",
               "--data", str(striped), "--compressor", "int8", "--rounds", str(rounds), "--local-steps", "2",
               "--eval-every", "3", "--out", str(tmp_path / "results"), "--name", "r"]  # fmt: skip
    try:
        done = subprocess.run(command, cwd=tmp_path, env=_env(stripes_site), capture_output=True, text=True,
                              timeout=300)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"mpiexec hung for 300 s; output so far:\n{exc.stdout}\n{exc.stderr}")
    assert done.returncode == 0, done.stdout + done.stderr
    run = tmp_path / "results" / "r"
    assert json.loads((run / "run.json").read_text())["config"]["compressor"] == "int8:block=256"
    sent = json.loads((run / "summary.json").read_text())["communication"]
    # dpsgd on a ring of 2: each rank sends its one neighbour one packet of n values per round
    messages = ranks * rounds
    count, rest = divmod(sent["fp32_equivalent_bytes"] // messages - HEADER_SIZE, 4)
    assert rest == 0 and sent["fp32_equivalent_bytes"] % messages == 0
    int8_bytes = 4 * -(-count // 256) + count  # the plugin's nbytes
    assert sent["bytes_sent_total"] == messages * (HEADER_SIZE + int8_bytes)


def test_a_name_claimed_twice_is_shown_and_refused_naming_both(rival_site, tmp_path):
    listing = json.loads(_fedgossip([rival_site], "plugins", "compressors", "--json", cwd=tmp_path).stdout)
    problem = listing["compressors"]["problems"]["topk"]
    assert "one from fedgossip, one from fedgossip-rival" in problem
    assert "topk" not in {row["name"] for row in listing["compressors"]["plugins"]}
    assert "randk" in {row["name"] for row in listing["compressors"]["plugins"]}  # the family still works

    table = _fedgossip([rival_site], "plugins", "compressors", cwd=tmp_path)
    assert table.returncode == 0
    assert "unusable" in table.stdout and "fedgossip-rival" in table.stdout

    refused = _fedgossip([rival_site], "train", "--compressor", "topk", "--rounds", "1", cwd=tmp_path)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert refused.stderr.count("error:") == 1
    assert "two compressors are called 'topk': one from fedgossip, one from fedgossip-rival" in refused.stderr
    assert not (tmp_path / "results").exists()
