"""The embedded default: a digits partition for however many ranks were started."""

from __future__ import annotations

from pathlib import Path

from fedgossip.data.create import PartitionRequest, create_partition
from fedgossip.data.manifest import Manifest
from fedgossip.data.partition.base import PARTITIONERS
from fedgossip.errors import DataError

__all__ = ["DEFAULT_SOURCE", "DEFAULT_SCHEME", "default_partition"]

DEFAULT_SOURCE = "digits"
DEFAULT_SCHEME = "dirichlet:alpha=0.5"
_DEFAULT_SEED = 0


def default_partition(nodes: int, root: Path = Path("datasets")) -> Path:
    """Return a digits Dirichlet(0.5) partition for ``nodes`` nodes, making it if needed.

    An existing directory is reused only if its manifest says it is exactly this
    partition; anything else there is replaced (it is ours by name).
    """
    out = root / f"digits-{nodes}"
    request = PartitionRequest(source=DEFAULT_SOURCE, scheme=DEFAULT_SCHEME, nodes=nodes, seed=_DEFAULT_SEED)
    if _matches(out, request):
        return out
    create_partition(request, out, force=out.exists() and (out / "partition.json").exists())
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
