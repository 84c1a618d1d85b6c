"""A topology read from a text file: one edge ``i j`` per line.

Format::

    # ring of four nodes; '#' starts a comment, blank lines are ignored
    0 1
    1 2
    2 3
    3 0

Node ids are integers in ``0..n-1`` for a run on n ranks. ``1 0`` and ``0 1`` are the
same edge, and an edge listed twice counts once. Every problem is reported at once,
each as ``FILE:LINE: what is wrong``.
"""

from __future__ import annotations

import reprlib
from pathlib import Path

import numpy as np

from fedgossip.bounded_read import FileProblem, read_bounded
from fedgossip.errors import TopologyError
from fedgossip.specs import REQUIRED, Param
from fedgossip.topology.base import Topology, TopologyBuilder, check_params

__all__ = ["EdgeList", "read_edge_list"]

_SHOWN = 10  # problems listed in one error; the rest are counted
_LIMIT = 256 << 20  # ten million edges take about 150 MB; a bigger file is not an edge list
_FIX = "give a readable text file as file:path=FILE"


def read_edge_list(path: Path) -> list[tuple[int, int, int]]:
    """Parse ``path`` into ``(i, j, line number)`` triples; ids are checked only for syntax and sign.

    The error quotes one line of the file at most: the path may name any file the
    user can read (``/etc/passwd``), and its content does not belong in a log.
    """
    try:
        text = read_bounded(path, _LIMIT).decode("utf-8")
    except FileNotFoundError as exc:
        raise TopologyError(f"cannot read edge list {path}: {exc.strerror}; {_FIX}") from exc
    except FileProblem as exc:  # a FIFO would block the read, /dev/zero would fill memory
        raise TopologyError(f"cannot read edge list {path}: it {exc}; {_FIX}") from exc
    except UnicodeDecodeError as exc:
        raise TopologyError(f"cannot read edge list {path}: {exc.reason}, not UTF-8 text; {_FIX}") from exc
    edges, problems = [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{path}:{number}"
        fields = line.split()
        if len(fields) != 2:
            problems.append((f"{where}: expected two node ids 'i j'", line))
            continue
        try:
            i, j = int(fields[0]), int(fields[1])
        except ValueError:
            problems.append((f"{where}: node ids must be integers", line))
            continue
        if i < 0 or j < 0:
            problems.append((f"{where}: node ids start at 0", line))
        elif i == j:
            problems.append(
                (f"{where}: self loop {i} {j}; remove the line (a node always keeps its own model)", None)
            )
        else:
            edges.append((i, j, number))
    _refuse(problems)
    return edges


def _refuse(problems: list[tuple[str, str | None]]) -> None:
    """Raise one error listing the first problems; only the first line quoted is shown, and shortened."""
    if not problems:
        return
    shown, quoted = [], False
    for problem, line in problems[:_SHOWN]:
        if line is not None and not quoted:
            problem, quoted = f"{problem}, got {reprlib.repr(line)}", True
        shown.append(problem)
    more = len(problems) - _SHOWN
    raise TopologyError("invalid edge list: " + "; ".join(shown + ([f"and {more} more"] if more > 0 else [])))


class EdgeList(TopologyBuilder):
    """Read the graph from a text file with one edge 'i j' per line ('#' comments)."""

    params = (Param("path", str, REQUIRED, "text file with one edge 'i j' per line"),)

    def __init__(self, path: str):
        check_params(type(self), path=path)
        self.path = Path(path).expanduser()
        # read now, so a malformed file is reported when the spec is given, not at build time
        self._edges = read_edge_list(self.path)

    def build(self, num_nodes: int, rng: np.random.Generator) -> Topology:
        """Return the file's graph on ``num_nodes`` nodes; every id must lie in ``range(num_nodes)``."""
        problems = [
            (
                f"{self.path}:{number}: node {max(i, j)} does not exist on {num_nodes} nodes (ids are "
                f"0..{num_nodes - 1}); fix the file or run more nodes",
                None,
            )
            for i, j, number in self._edges
            if max(i, j) >= num_nodes
        ]
        _refuse(problems)
        return self._topology(num_nodes, ((i, j) for i, j, _ in self._edges))
