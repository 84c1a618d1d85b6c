"""``--model``: a registered model's spec, or a user's own class named by file or module.

Two forms, told apart by their first ``:``-separated part:

- ``NAME[:key=value,...]``: a registered model (``mlp:hidden=128``), parsed by
  :func:`~fedgossip.specs.parse_spec`. Registered names hold no ``.`` or ``/``.
- ``FILE.py:Class[:key=value,...]`` or ``package.module:Class[:key=value,...]``: a user's
  ``nn.Module`` subclass, loaded on every rank by :mod:`fedgossip.local.models.user`. The
  target ends in ``.py`` (a file, any path without a ``:`` in it) or is a dotted module name.

The values after the class stay text here; the loader converts them by the constructor's
annotations. Everything here is free of torch, so the config can parse it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from fedgossip.errors import ConfigError
from fedgossip.specs import Spec, parse_spec

__all__ = ["UserModelSpec", "parse_model_spec", "is_user_model"]

_IDENTIFIER = r"[A-Za-z_]\w*"
_MODULE = rf"{_IDENTIFIER}(?:\.{_IDENTIFIER})+"
# A target is a path ending in .py (no ':' in it) or a dotted module; then the class; then optional args.
_USER = re.compile(rf"^(?P<target>[^:]+\.py|{_MODULE}):(?P<cls>[^:]*)(?::(?P<args>.*))?$", re.DOTALL)


@dataclass(frozen=True)
class UserModelSpec:
    """A user's model class: where it lives, its name, and its ``key=value`` arguments as text."""

    target: str  # a path ending in .py, or a dotted module name
    class_name: str
    args: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_file(self) -> bool:
        return self.target.endswith(".py")

    def __str__(self) -> str:
        text = f"{self.target}:{self.class_name}"
        if self.args:
            text += ":" + ",".join(f"{key}={value}" for key, value in self.args.items())
        return text


def is_user_model(text: str) -> bool:
    """Return whether ``text`` names a user's class (``FILE.py:Class`` or ``pkg.module:Class``)."""
    head = text.strip().split(":", 1)[0]
    return head.endswith(".py") or "/" in head or bool(re.fullmatch(_MODULE, head))


def parse_model_spec(text: str) -> Spec | UserModelSpec:
    """Parse ``--model``: a registered model's :class:`Spec`, or a :class:`UserModelSpec`."""
    text = text.strip()
    if not is_user_model(text):
        try:
            return parse_spec(text)
        except ConfigError as exc:
            name, _, rest = text.partition(":")
            # mine:Net, a class name (capitalised, as PEP 8 has them) where parameters belong
            if re.match(r"[A-Z]\w*(:|$)", rest):
                cls = rest.split(":", 1)[0]
                raise ConfigError(
                    f"{exc}; for your own class write {name}.py:{cls} (a file) or package.{name}:{cls}"
                ) from None
            raise
    match = _USER.match(text)
    if match is None or not match.group("cls"):
        raise ConfigError(
            f"--model {text}: expected FILE.py:ClassName or package.module:ClassName, optionally "
            "followed by :key=value,key=value (e.g. nets/mine.py:Net:width=64)"
        )
    name = match.group("cls").strip()
    if not re.fullmatch(_IDENTIFIER, name):
        raise ConfigError(
            f"--model {text}: {name!r} is not a Python class name; write FILE.py:ClassName:key=value,..."
        )
    args = match.group("args")
    try:
        values = parse_spec(f"{name}:{args}").args if args and args.strip() else {}
    except ConfigError as exc:
        raise ConfigError(f"--model {text}: {exc}") from None
    return UserModelSpec(match.group("target").strip(), name, dict(values))
