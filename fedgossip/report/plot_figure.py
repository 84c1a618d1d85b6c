"""Draw runs' curves into an image file (png, svg, pdf) with matplotlib: one line per run.

matplotlib is an extra (``pip install 'fedgossip[plot]'``) and is imported here only, when a
figure is drawn, so that no other command pays for it at startup.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from fedgossip.errors import ConfigError, FedGossipError
from fedgossip.report.plot_curves import X_AXES, Y_AXES, Curve

__all__ = ["FORMATS", "figure_format", "draw_figure"]

FORMATS = ("png", "svg", "pdf")
_SIZE_IN, _DPI = (6.4, 4.0), 150


def figure_format(out: Path) -> str:
    """Return the image format ``out``'s suffix names; any other suffix is a ``ConfigError``."""
    suffix = out.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise ConfigError(
            f"cannot tell the image format of {out}: its name must end in "
            + ", ".join(f".{f}" for f in FORMATS)
        )
    return suffix


def draw_figure(curves: Sequence[Curve], x: str, y: str, out: Path) -> None:
    """Write ``curves`` to ``out`` (format from its suffix), atomically: all of it or nothing."""
    fmt = figure_format(out)
    if not out.parent.is_dir():
        raise ConfigError(f"cannot write {out}: the folder {out.parent} does not exist; create it first")
    pyplot = _pyplot()
    figure, axes = pyplot.subplots(figsize=_SIZE_IN)
    try:
        for curve in curves:
            axes.plot(curve.x, curve.y, marker="o", markersize=3, label=curve.name)
        if x == "bytes":
            axes.set_xscale("log")
        axes.set_xlabel(X_AXES[x])
        axes.set_ylabel(Y_AXES[y])
        axes.grid(True, alpha=0.3)
        axes.legend()
        figure.tight_layout()
        # Beside the target, so the rename is atomic; a reader never sees half an image.
        staging = out.with_name(f".{out.name}.{os.getpid()}.partial")
        try:
            figure.savefig(staging, format=fmt, dpi=_DPI)
            os.replace(staging, out)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
    finally:
        pyplot.close(figure)


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise FedGossipError(
            "fedgossip plot needs matplotlib: pip install 'fedgossip[plot]' "
            "(bash launch/quickstart.sh installs it)"
        ) from None
    matplotlib.use("Agg")  # files only: no display is needed or wanted
    import matplotlib.pyplot as pyplot

    return pyplot
