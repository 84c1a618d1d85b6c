"""The embedded default: a digits partition for however many ranks were started, kept in the cache.

The cache (fedgossip/run/cache.py) is not the working directory. On a cluster the cache must
be a folder every rank can read: rank 0 makes the partition and every rank then reads it by
the path rank 0 found.
"""

from __future__ import annotations

from pathlib import Path

from fedgossip.data.create import PartitionRequest, create_partition
from fedgossip.data.manifest import Manifest
from fedgossip.data.partition.base import PARTITIONERS
from fedgossip.errors import DataError
from fedgossip.run.cache import cache_dir, cache_setting

__all__ = ["DEFAULT_SOURCE", "DEFAULT_SCHEME", "default_partition"]

DEFAULT_SOURCE = "digits"
DEFAULT_SCHEME = "dirichlet:alpha=0.5"
_DEFAULT_SEED = 0


def default_partition(nodes: int, root: Path | None = None) -> Path:
    """Return a digits Dirichlet(0.5) partition for ``nodes`` nodes in ``root`` [the cache], made if needed.

    An existing directory is reused only if its manifest says it is exactly this
    partition; anything else there is replaced (it is ours by name).
    """
    if root is None:
        root = cache_dir()
        # The nearest existing folder on the way: a file there would make the error name --out.
        existing = next(path for path in (root, *root.parents) if path.exists())
        if not existing.is_dir():
            raise DataError(
                f"the default partition's cache {root} ({cache_setting()}) cannot be made: {existing} "
                "is not a directory; set FEDGOSSIP_CACHE to another folder, or pass --data"
            )
    out = root / f"digits-{nodes}"
    request = PartitionRequest(source=DEFAULT_SOURCE, scheme=DEFAULT_SCHEME, nodes=nodes, seed=_DEFAULT_SEED)
    if _matches(out, request):
        return out
    ours = (out / "partition.json").is_file()  # another partition made here: replace it
    if out.exists() and not ours:
        # create_partition's own message would name --out and --force, which train does not have.
        raise DataError(
            f"{out} is in the way of the default partition: it exists but holds no partition; "
            "move it away, set FEDGOSSIP_CACHE to another folder, or pass --data"
        )
    create_partition(request, out, force=ours)
    return out


def _matches(out: Path, request: PartitionRequest) -> bool:
    try:
        manifest = Manifest.read(out)
    except DataError:
        return False
    return (
        manifest.source == request.source
        and manifest.scheme == PARTITIONERS.create(request.scheme).spec
        and manifest.nodes == request.nodes
        and manifest.seed == request.seed
    )
