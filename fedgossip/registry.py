"""Plugin registries, one per family, filled from entry points.

Every family (``datasets``, ``partitioners``, ...) has an abstract base deriving
from :class:`Plugin` and a :class:`Registry`. Built-ins are registered through
the entry-point group ``fedgossip.<family>`` exactly like third-party packages,
so an installed plugin is a first-class citizen. Entry points are read lazily:
a lookup by name imports only the modules that name points to, since a plugin
module may import heavy dependencies (scikit-learn for ``dispatch``) that every
MPI rank would otherwise pay for; listing a family imports all of them.
"""

from __future__ import annotations

import re
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar, Generic, TypeVar

from fedgossip.errors import ConfigError
from fedgossip.specs import Param, Spec, bind, format_spec, parse_spec

__all__ = ["Plugin", "Registry", "check_params"]


class Plugin:
    """Base of every plugin: a name and the parameters its spec accepts.

    Subclasses set ``params`` and take exactly those names as keyword arguments
    in their constructor, which validates anything that depends on several of them.
    """

    name: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    spec: str = ""  # canonical spec this instance was built from, set by Registry.create

    @classmethod
    def summary(cls) -> str:
        """Return the first line of the class docstring, as plain text for a terminal or JSON."""
        return _plain_text((cls.__doc__ or "").strip().splitlines()[0]) if cls.__doc__ else ""


# Docstrings are RST: ``literal``, :role:`target` (shown as Sphinx would: ~a.b.c as c) and `text`.
_RST_ROLE = re.compile(r":[a-z]+:`(~?)([^`]*)`")
_RST_LITERAL = re.compile(r"``([^`]*)``|`([^`]*)`")


def _role_text(match: re.Match[str]) -> str:
    short, target = match.groups()
    return target.rsplit(".", 1)[-1] if short else target


def _plain_text(rst: str) -> str:
    """Return one line of RST without its inline markup: ``x`` and `x` become x, :class:`a.B` a.B."""
    text = _RST_ROLE.sub(_role_text, rst)
    return _RST_LITERAL.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2), text)


P = TypeVar("P", bound=Plugin)


class Registry(Generic[P]):
    """Named plugins of one family.

    ``register`` refuses a name taken by another provider; ``get`` and
    ``create`` name the known entries when asked for an unknown one. A name
    whose entry points clash or fail to load is kept aside (see :meth:`problems`)
    and is an error only when asked for.
    """

    def __init__(self, family: str, base: type[P]):
        self.family = family
        self.group = f"fedgossip.{family}"
        self._base = base
        self._plugins: dict[str, type[P]] = {}
        self._providers: dict[str, str] = {}
        # Entry points that failed to load or clash: an error only when that name is asked for,
        # so one broken third-party package does not take the whole family down.
        self._broken: dict[str, str] = {}
        self._points: dict[str, list[EntryPoint]] | None = None  # by name, read but not loaded
        self._settled: set[str] = set()  # names whose entry points have been loaded

    def register(self, name: str, plugin: type[P], provider: str = "runtime") -> None:
        """Add ``plugin`` under ``name``; a name held by a different class is an error."""
        self._load_name(name)
        self._add(name, plugin, provider)

    def available(self) -> dict[str, type[P]]:
        """Return every registered plugin by name, sorted."""
        self._load_entry_points()
        return dict(sorted(self._plugins.items()))

    def problems(self) -> dict[str, str]:
        """Return the names whose entry points clash or failed to load, each with what to do about it.

        Those names are left out of :meth:`available`; asking for one raises its message.
        """
        self._load_entry_points()
        return dict(sorted(self._broken.items()))

    def describe(self) -> list[dict[str, Any]]:
        """Return every plugin as plain data: name, summary, provider and parameters."""
        return [
            {
                "name": name,
                "summary": plugin.summary(),
                "provider": self._providers[name],
                "params": [_describe_param(p) for p in plugin.params],
            }
            for name, plugin in self.available().items()
        ]

    def provider(self, name: str) -> str:
        """Return the distribution that provides ``name``."""
        self.get(name)
        return self._providers[name]

    def get(self, name: str) -> type[P]:
        """Return the plugin class called ``name``, importing only the entry points of that name."""
        self._load_name(name)
        if name in self._broken:
            raise ConfigError(self._broken[name])
        if name not in self._plugins:
            self._load_entry_points()  # to name the known ones, which must then load
            known = ", ".join(sorted(self._plugins)) or "none installed"
            raise ConfigError(f"unknown {self._singular()} {name!r}; known: {known}")
        return self._plugins[name]

    def create(self, spec: str | Spec, **context: Any) -> P:
        """Build a plugin from a spec string such as ``dirichlet:alpha=0.1``.

        ``context`` passes run-time arguments that are not user parameters.
        """
        parsed = parse_spec(spec) if isinstance(spec, str) else spec
        plugin = self.get(parsed.name)
        values = bind(parsed, plugin.params)
        instance = plugin(**values, **context)
        instance.spec = format_spec(parsed.name, values)
        return instance

    def _singular(self) -> str:
        return {"datasets": "dataset", "privacy": "privacy mechanism", "topologies": "topology"}.get(
            self.family, self.family[:-1]
        )

    def _add(self, name: str, plugin: type[P], provider: str) -> None:
        if not (isinstance(plugin, type) and issubclass(plugin, self._base)):
            raise ConfigError(
                f"{provider} registers {name!r} in {self.group}, but {plugin!r} is not a "
                f"subclass of {self._base.__name__}; fix the entry point"
            )
        existing = self._plugins.get(name)
        if existing is not None and existing is not plugin:
            first, second = sorted((self._providers[name], provider))  # not in sys.path order
            raise ConfigError(
                f"two {self.family} are called {name!r}: one from {first}, one from {second}; "
                f"uninstall one of them or give one another name (its entry point in group {self.group})"
            )
        plugin.name = name
        self._plugins[name] = plugin
        self._providers[name] = provider

    def _load_entry_points(self) -> None:
        """Load every entry point of the family (listings and the known names of an error)."""
        for name in self._entry_points():
            self._load_name(name)

    def _entry_points(self) -> dict[str, list[EntryPoint]]:
        """Return the family's entry points by name, read from the installed metadata once."""
        if self._points is None:
            self._points = {}
            for point in entry_points(group=self.group):
                self._points.setdefault(point.name, []).append(point)
        return self._points

    def _load_name(self, name: str) -> None:
        """Import the entry points called ``name``, once; a clash or a failure marks the name broken."""
        if name in self._settled:
            return
        self._settled.add(name)
        for point in self._entry_points().get(name, []):
            provider = point.dist.name if point.dist is not None else point.value
            try:
                self._add(name, point.load(), provider)
            except ConfigError as exc:  # a clash or a class of the wrong family
                self._broken[name] = str(exc)
            except Exception as exc:
                self._broken[name] = (
                    f"cannot load {self._singular()} {name!r} from {provider} ({point.value}): "
                    f"{exc}; reinstall or uninstall {provider}"
                )
        if name in self._broken:
            self._plugins.pop(name, None)


def check_params(plugin: type[Plugin], **values: Any) -> None:
    """Validate constructor arguments through the plugin's declared ``params``, as a spec would be.

    The registry has already checked values that came from a spec; this repeats the
    check for code that builds a plugin directly (``Qsgd(bits=0)``), through the same
    declared ``params``, so the two paths give the same messages and cannot drift apart.
    """
    name = plugin.name or plugin.__name__.lower()
    text = {key: _as_text(value) for key, value in values.items()}
    bind(Spec(name, text), plugin.params)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _describe_param(param: Param) -> dict[str, Any]:
    kind = param.type.__name__ if isinstance(param.type, type) else getattr(param.type, "__name__", "value")
    return {
        "name": param.name,
        "type": kind,
        "default": None if param.required else param.default,
        "required": param.required,
        "allowed": param.describe_range(),
        "help": param.help,
    }
