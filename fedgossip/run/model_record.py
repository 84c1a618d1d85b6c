"""Which user model code a run ran (its file's SHA-256), and the check that a resume runs the same code."""

from __future__ import annotations

from typing import Any

from fedgossip.errors import ConfigError
from fedgossip.local.models.base import ModelFactory
from fedgossip.local.models.user import UserModel

__all__ = ["model_file_record", "check_same_model_file", "check_same_code_as_root"]


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


def check_same_code_as_root(model: ModelFactory, root_sha256: str | None) -> None:
    """Refuse a rank whose copy of the model file differs from rank 0's: the ranks would build other models.

    Each rank imports the file from its own host, so hosts may hold different versions of it.
    """
    if not isinstance(model, UserModel) or model.sha256 == root_sha256:
        return
    raise ConfigError(
        f"--model {model.spec}: this rank's file (SHA-256 {str(model.sha256)[:12]}...) differs from rank 0's "
        f"({str(root_sha256)[:12]}...); give every host the same file"
    )
