"""Which user model code a run ran (its file's SHA-256), and the check that a resume runs the same code."""

from __future__ import annotations

from typing import Any

from fedgossip.errors import ConfigError
from fedgossip.local.models.base import ModelFactory
from fedgossip.local.models.user import UserModel

__all__ = ["model_file_record", "check_same_model_file"]


def model_file_record(model: ModelFactory) -> dict[str, Any] | None:
    """Return run.json's ``model_file``: the user model's source and SHA-256 (None: a registered model)."""
    if not isinstance(model, UserModel):
        return None
    return {"target": model.target, "class": model.cls.__name__, "sha256": model.sha256}


def check_same_model_file(record: dict[str, Any], model: ModelFactory) -> None:
    """Refuse to resume a run whose model file has changed since it started.

    An error, not a warning: the checkpoint holds weights of the code that ran, and a
    changed class may build other layers (a load that fails half-way) or the same
    layers computing something else (a run whose record no longer says what ran).
    """
    saved = (record.get("model_file") or {}).get("sha256")
    now = model_file_record(model)
    if saved is None or now is None or now["sha256"] == saved:
        return
    raise ConfigError(
        f"cannot resume: the model file {now['target']} has changed since the run started "
        f"(SHA-256 {saved[:12]}... then, {str(now['sha256'])[:12]}... now); restore the file as it was, "
        "or start a new run"
    )
