"""Import a user's own Python file or module (a model class, a dataset function), with one-line errors.

Every rank imports the code itself, from its own file system: nothing of it travels
between ranks, so nothing is pickled. The file's SHA-256 is returned so a run can
record exactly which code it ran and ``--resume`` can notice when the file changed.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
import types
from pathlib import Path
from typing import Any

from fedgossip.bounded_read import FileProblem, read_bounded
from fedgossip.errors import ConfigError

__all__ = ["UserCode", "load_user_code", "first_line"]

_MAX_SOURCE = 16 << 20  # a Python source file beyond 16 MiB is not code a person wrote


class UserCode:
    """A user's imported module, where it came from and its source's SHA-256 (None: no source file)."""

    def __init__(self, module: types.ModuleType, target: str, sha256: str | None):
        self.module = module
        self.target = target  # the absolute path of a file, or the module's dotted name
        self.sha256 = sha256

    def attribute(self, name: str, what: str) -> Any:
        """Return ``name`` from the module, or raise naming what is there instead."""
        if not hasattr(self.module, name):
            public = sorted(key for key in vars(self.module) if not key.startswith("_"))
            shown = ", ".join(public[:12]) + (", ..." if len(public) > 12 else "") if public else "nothing"
            raise ConfigError(f"{self.target} defines no {what} {name!r}; it defines {shown}")
        return getattr(self.module, name)


def first_line(exc: BaseException) -> str:
    """Return ``Type: first line of the message``, the way one error line can quote an exception."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_user_code(target: str, option: str) -> UserCode:
    """Import ``target``: a path ending in ``.py``, else a dotted module name that Python can import.

    ``option`` names where the target was given (``--model``), for the error messages.
    A file runs as a module of its own, named after its hash, so two files of the same
    name do not clash and importing one twice in a process reuses it.
    """
    if target.endswith(".py"):
        return _load_file(Path(target).expanduser(), option)
    return _load_module(target, option)


def _load_file(path: Path, option: str) -> UserCode:
    path = path.absolute()
    try:
        source = read_bounded(path, _MAX_SOURCE)
    except FileNotFoundError:
        raise ConfigError(
            f"{option}: no such file {path}; check the path (relative to the directory you run in)"
        ) from None
    except FileProblem as problem:
        raise ConfigError(f"{option}: {path} {problem}") from None
    sha256 = hashlib.sha256(source).hexdigest()
    name = f"_fedgossip_user_{sha256[:16]}"
    if name in sys.modules:
        return UserCode(sys.modules[name], str(path), sha256)
    try:
        code = compile(source, str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f"{path} line {exc.lineno}"
        raise ConfigError(f"{option}: {where}: SyntaxError: {exc.msg}; fix the file") from None
    except ValueError as exc:  # null bytes in the source
        raise ConfigError(f"{option}: {path} is not Python source ({exc})") from None
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module  # as importlib does: dataclasses and pickling-free typing look it up
    try:
        exec(code, module.__dict__)
    except Exception as exc:
        del sys.modules[name]
        raise ConfigError(f"{option}: importing {path} raised {first_line(exc)}; fix the file") from exc
    return UserCode(module, str(path), sha256)


def _load_module(name: str, option: str) -> UserCode:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (name == missing or name.startswith(missing + ".")):  # it, or its package, is missing
            raise ConfigError(
                f"{option}: no module named {exc.name!r}; install it, add its folder to PYTHONPATH, "
                "or give the file as path/to/file.py"
            ) from None
        raise ConfigError(f"{option}: importing {name} raised {first_line(exc)}") from None
    except Exception as exc:
        raise ConfigError(f"{option}: importing {name} raised {first_line(exc)}; fix the module") from exc
    sha256 = None
    file = getattr(module, "__file__", None)
    if file and Path(file).is_file():
        try:
            sha256 = hashlib.sha256(read_bounded(Path(file), _MAX_SOURCE)).hexdigest()
        except (OSError, FileProblem):
            sha256 = None
    return UserCode(module, name, sha256)
