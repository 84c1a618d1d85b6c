"""MNIST and Fashion-MNIST, read from the IDX files in which they are distributed.

An IDX file (LeCun et al., http://yann.lecun.com/exdb/mnist/) is a 4-byte magic
number ``00 00 <type> <ndim>``, ``ndim`` big-endian uint32 dimensions, then the
values in row-major order. Both sets use unsigned bytes (type 0x08): labels with
one dimension (magic 0x00000801), images with three (0x00000803). The files are
often kept gzipped; gzip is recognized by its magic bytes, whatever the file is called.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import ClassVar

import numpy as np

from fedgossip.data.sources.base import Dataset, DatasetSource
from fedgossip.errors import DataError
from fedgossip.specs import Param

__all__ = ["IdxSource", "Mnist", "FashionMnist", "read_idx"]

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08
_LABELS_MAGIC = 0x00000801
_IMAGES_MAGIC = 0x00000803


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read the unsigned-byte IDX file at ``path``, gzipped or not, and check its header.

    Parameters
    ----------
    path
        The file to read.
    magic
        The magic number expected: ``0x00000801`` for labels, ``0x00000803`` for images.

    Returns
    -------
    numpy.ndarray
        uint8 array of the dimensions in the header.

    Raises
    ------
    DataError
        When the file is unreadable, not IDX, of another kind than ``magic``, or
        its payload is not exactly as long as its dimensions say.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path} is a damaged gzip file ({exc}); download it again") from exc
    kind = "labels" if magic == _LABELS_MAGIC else "images"
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != _UBYTE:
        raise DataError(
            f"{path} is not an unsigned-byte IDX file: it starts with {raw[:4].hex() or 'nothing'}, "
            f"expected {magic:08x} ({kind}); check that it is the right file"
        )
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataError(
            f"{path} has IDX magic {found:08x} ({raw[3]} dimensions), expected {magic:08x} ({kind}); "
            "are the images and labels files swapped?"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated: it ends inside its {header}-byte header; download it again")
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise DataError(
            f"{path} holds {len(raw) - header} bytes of data, but its header announces "
            f"{' x '.join(map(str, dims))} = {expected}; the file is truncated or damaged, download it again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(tuple(dims))


class IdxSource(DatasetSource):
    """Load a grayscale image set distributed as four IDX files, with its own test split.

    Subclasses name the classes and where the files can be downloaded.
    """

    params = (Param("path", str, help="directory holding the four IDX files, gzipped or not"),)

    classes: ClassVar[tuple[str, ...]] = ()
    # name of each file on the server -> its SHA-256 (None: unknown, pass --checksums)
    remote_files: ClassVar[dict[str, str | None]] = {}
    default_url: ClassVar[str] = ""

    _splits: ClassVar[dict[str, tuple[str, str]]] = {
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }

    def __init__(self, path: str):
        self.path = Path(path).expanduser()

    def load(self) -> Dataset:
        """Read the train and test splits; images become float32 ``[n, 1, rows, cols]`` in [0, 1]."""
        files = self._find_files()
        x_train, y_train = self._read_split(*files["train"])
        x_test, y_test = self._read_split(*files["test"])
        if x_test.shape[1:] != x_train.shape[1:]:
            raise DataError(
                f"{files['test'][0]} holds {x_test.shape[2]}x{x_test.shape[3]} images but "
                f"{files['train'][0]} holds {x_train.shape[2]}x{x_train.shape[3]}; "
                f"both must come from the same dataset"
            )
        return Dataset(x_train, y_train, self.classes, x_test, y_test)

    def _find_files(self) -> dict[str, tuple[Path, Path]]:
        wanted = [name for pair in self._splits.values() for name in pair]
        expected = ", ".join(f"{name}[.gz]" for name in wanted)
        hint = f"download them with `fedgossip data download {self.name} --dir {self.path}`"
        if not self.path.is_dir():
            raise DataError(
                f"{self.path} is not a directory; expected the IDX files {expected} there; {hint}"
            )
        found = {name: self._locate(name) for name in wanted}
        missing = [f"{name}[.gz]" for name, path in found.items() if path is None]
        if len(missing) == len(wanted):
            raise DataError(f"{self.path} holds none of the IDX files {expected}; {hint}")
        if missing:
            raise DataError(f"missing {', '.join(missing)} in {self.path} (expected {expected}); {hint}")
        return {split: (found[images], found[labels]) for split, (images, labels) in self._splits.items()}

    def _locate(self, name: str) -> Path | None:
        for candidate in (self.path / name, self.path / f"{name}.gz"):
            if candidate.is_file():
                return candidate
        return None

    def _read_split(self, images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
        images = read_idx(images_path, _IMAGES_MAGIC)
        labels = read_idx(labels_path, _LABELS_MAGIC)
        if len(images) != len(labels):
            raise DataError(
                f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} "
                "labels; the two files must belong together"
            )
        if labels.size and labels.max() >= len(self.classes):
            raise DataError(
                f"{labels_path} contains label {labels.max()}, but {self.name or 'this dataset'} has "
                f"{len(self.classes)} classes (0..{len(self.classes) - 1}); is it the right dataset?"
            )
        x = images.astype(np.float32)[:, np.newaxis]
        x /= np.float32(255.0)
        return x, labels.astype(np.int64)


class Mnist(IdxSource):
    """Load MNIST handwritten digits (60000 train, 10000 test, 1x28x28) from IDX files."""

    name = "mnist"
    classes: ClassVar[tuple[str, ...]] = tuple(str(digit) for digit in range(10))
    # SHA-256 of the gzipped files, as listed by torchvision (pytorch/vision,
    # torchvision/prototype/datasets/_builtin/mnist.py) and tensorflow-datasets.
    remote_files: ClassVar[dict[str, str | None]] = {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    }
    # The mirror TensorFlow and torchvision fall back on; yann.lecun.com now often refuses downloads.
    default_url = "https://storage.googleapis.com/cvdf-datasets/mnist/"


class FashionMnist(IdxSource):
    """Load Zalando's Fashion-MNIST (60000 train, 10000 test, 1x28x28) from IDX files."""

    name = "fashion-mnist"
    classes = (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )
    # SHA-256 of the gzipped files, as listed by torchvision (same file as MNIST's) and by
    # projects that pair them with the MD5 sums zalandoresearch/fashion-mnist publishes.
    remote_files: ClassVar[dict[str, str | None]] = {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    }
    default_url = "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"
