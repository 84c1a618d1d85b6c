"""What the engine tells the progress display after each round (or interaction) on rank 0."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RoundInfo"]


@dataclass
class RoundInfo:
    """One step of the run as the progress display shows it."""

    round: int
    rounds: int
    mean_accuracy: float | None = None
    avg_model_accuracy: float | None = None
    mb_sent: float = 0.0
    run_dir: Path | None = None
    unit: str = "round"  # what ``round`` counts: "interaction" in an --async run
    extra: dict[str, Any] = field(default_factory=dict)
