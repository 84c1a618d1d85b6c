"""Downloads against a local HTTP server: kept only with the right SHA-256, nothing left on failure."""

from __future__ import annotations

import gzip
import hashlib
import io
import socket
import struct
import tarfile
from typing import ClassVar

import numpy as np
import pytest

from fedgossip.data.sources import SOURCES
from fedgossip.data.sources.download import download, extract_tar, fetch
from fedgossip.errors import ConfigError, DataError


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_fetch_keeps_a_file_with_the_right_hash(server, tmp_path):
    site, url, _ = server
    payload = bytes(range(256)) * 5000
    (site / "blob.bin").write_bytes(payload)
    seen = []
    dest = tmp_path / "out" / "blob.bin"
    fetch(f"{url}/blob.bin", dest, sha256(payload), progress=lambda done, total: seen.append((done, total)))
    assert dest.read_bytes() == payload
    assert seen[0] == (0, len(payload)) and seen[-1] == (len(payload), len(payload))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["blob.bin"]


def test_fetch_with_a_wrong_hash_leaves_nothing(server, tmp_path):
    site, url, _ = server
    payload = b"not what was published"
    (site / "blob.bin").write_bytes(payload)
    out = tmp_path / "out"
    wrong = "0" * 64
    with pytest.raises(DataError) as info:
        fetch(f"{url}/blob.bin", out / "blob.bin", wrong)
    message = str(info.value)
    assert f"{url}/blob.bin" in message and wrong in message and sha256(payload) in message
    assert list(out.iterdir()) == []  # neither the file nor a temporary file


def test_fetch_does_not_replace_a_good_file_with_a_bad_download(server, tmp_path):
    site, url, _ = server
    (site / "blob.bin").write_bytes(b"tampered")
    dest = tmp_path / "blob.bin"
    dest.write_bytes(b"original")
    with pytest.raises(DataError):
        fetch(f"{url}/blob.bin", dest, sha256(b"published"))
    assert dest.read_bytes() == b"original"


def test_fetch_from_an_unreachable_server_is_a_data_error(tmp_path):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/blob.bin"
    with pytest.raises(DataError) as info:
        fetch(url, tmp_path / "blob.bin", "a" * 64, timeout=5)
    assert url in str(info.value) and "a" * 64 in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_fetch_of_a_missing_file_reports_the_http_status(server, tmp_path):
    _, url, _ = server
    out = tmp_path / "out"
    with pytest.raises(DataError, match="HTTP 404"):
        fetch(f"{url}/absent.bin", out / "absent.bin", "a" * 64)
    assert list(out.iterdir()) == []


def test_fetch_refuses_a_malformed_checksum(tmp_path):
    with pytest.raises(ConfigError, match="not a SHA-256"):
        fetch("http://127.0.0.1:9/x", tmp_path / "x", "abc123")


def idx(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def mnist_site(server):
    """The four MNIST files, tiny, gzipped as published; returns their checksums too."""
    site, url, requested = server
    rng = np.random.default_rng(0)
    contents = {
        "train-images-idx3-ubyte.gz": idx(rng.integers(0, 256, (3, 28, 28))),
        "train-labels-idx1-ubyte.gz": idx(np.array([1, 2, 3])),
        "t10k-images-idx3-ubyte.gz": idx(rng.integers(0, 256, (2, 28, 28))),
        "t10k-labels-idx1-ubyte.gz": idx(np.array([4, 5])),
    }
    sums = {}
    for name, raw in contents.items():
        packed = gzip.compress(raw)
        (site / name).write_bytes(packed)
        sums[name] = sha256(packed)
    return url, sums, requested


def test_download_mnist_from_a_mirror_then_load_it(mnist_site, tmp_path):
    url, sums, _ = mnist_site
    target = tmp_path / "mnist"
    paths = download("mnist", target, base_url=url, checksums=sums)
    assert sorted(p.name for p in paths) == sorted(sums)
    data = SOURCES.create(f"mnist:path={target}").load()
    np.testing.assert_array_equal(data.y_train, [1, 2, 3])
    np.testing.assert_array_equal(data.y_test, [4, 5])


def test_download_skips_files_already_present(mnist_site, tmp_path):
    url, sums, requested = mnist_site
    download("mnist", tmp_path, base_url=url + "/", checksums=sums)
    assert len(requested) == 4
    download("mnist", tmp_path, base_url=url, checksums=sums)
    assert len(requested) == 4


def test_download_with_the_builtin_sums_refuses_other_files(mnist_site, tmp_path):
    url, _, _ = mnist_site
    out = tmp_path / "out"
    with pytest.raises(DataError, match="expected 440fcabf"):
        download("mnist", out, base_url=url)
    assert list(out.iterdir()) == []


def test_download_refuses_checksums_for_unknown_files(tmp_path):
    with pytest.raises(ConfigError, match=r"train-images-idx3-ubyte\.gz"):
        download("mnist", tmp_path, checksums={"mnist.npz": "a" * 64})


def test_download_of_a_source_without_files_names_those_with_files(tmp_path):
    with pytest.raises(ConfigError) as info:
        download("digits", tmp_path)
    assert "cifar10" in str(info.value) and "mnist" in str(info.value)


class Unpinned:
    """A source whose publisher lists no checksum."""

    name = "unpinned"
    remote_files: ClassVar[dict[str, str | None]] = {"data.bin": None}
    default_url = "http://127.0.0.1:9"


def test_download_without_a_known_hash_asks_for_checksums(server, tmp_path):
    site, url, requested = server
    (site / "data.bin").write_bytes(b"payload")
    with pytest.raises(ConfigError, match="--checksums"):
        download(Unpinned, tmp_path, base_url=url)
    assert requested == []
    download(Unpinned, tmp_path, base_url=url, checksums={"data.bin": sha256(b"payload")})
    assert (tmp_path / "data.bin").read_bytes() == b"payload"


def make_tar(path, members) -> bytes:
    """Write a gzipped tar of ``members``: (TarInfo, bytes or None) pairs."""
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path.read_bytes()


def regular(name: str, data: bytes):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_cifar10_archive_is_downloaded_extracted_and_loadable(server, tmp_path):
    site, url, _ = server
    records = {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        records[name] = bytes([7]) + bytes(3072)
    members = [regular(f"cifar-10-batches-bin/{name}", data) for name, data in records.items()]
    archive = make_tar(site / "cifar-10-binary.tar.gz", members)
    target = tmp_path / "cifar"
    download("cifar10", target, base_url=url, checksums={"cifar-10-binary.tar.gz": sha256(archive)})
    data = SOURCES.create(f"cifar10:path={target}").load()
    np.testing.assert_array_equal(data.y_train, [7] * 5)
    assert data.classes[7] == "horse"


@pytest.mark.parametrize(
    "member",
    ["../escaped.txt", "/tmp/absolute.txt", "inner/../../escaped.txt"],
    ids=["parent", "absolute", "nested-parent"],
)
def test_archive_members_outside_the_folder_are_refused(tmp_path, member):
    archive = tmp_path / "a.tar.gz"
    make_tar(archive, [regular("fine.txt", b"ok"), regular(member, b"evil")])
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(DataError, match="outside the folder"):
        extract_tar(archive, target)
    assert list(target.iterdir()) == []  # refused as a whole, before anything was written
    assert not (tmp_path / "escaped.txt").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE], ids=["symlink", "hardlink"])
def test_archive_links_are_refused(tmp_path, kind):
    link = tarfile.TarInfo("cifar-10-batches-bin/data_batch_1.bin")
    link.type = kind
    link.linkname = "/etc/passwd"
    archive = tmp_path / "a.tar.gz"
    make_tar(archive, [(link, None)])
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(DataError, match="a link"):
        extract_tar(archive, target)
    assert list(target.iterdir()) == []


def test_damaged_archive_is_a_data_error(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(gzip.compress(b"not a tar archive at all" * 40))
    with pytest.raises(DataError, match="cannot extract"):
        extract_tar(archive, tmp_path)
