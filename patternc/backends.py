"""Backend discovery through the ``patternc.backends`` entry-point group.

The core never imports a backend eagerly: backends pull in torch or transformers, and
``patternc check`` must start fast.  A backend is any object with ``name``, ``description``
and ``emit(pattern, **options)``; third-party packages register their own under the same group.
"""

from __future__ import annotations

import difflib
from typing import Any, Protocol, runtime_checkable

from patternc.ir import Pattern

GROUP = "patternc.backends"


@runtime_checkable
class Backend(Protocol):
    name: str
    description: str

    def emit(self, pattern: Pattern, /, **options: Any) -> Any: ...


class UnknownBackendError(LookupError):
    pass


def available() -> dict[str, str]:
    """Backend name -> ``module:attr`` of every installed backend, sorted by name."""
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in sorted(entry_points(group=GROUP), key=lambda ep: ep.name)}


def load(name: str) -> Backend:
    """Import and return one backend (only now is its heavy dependency imported)."""
    from importlib.metadata import entry_points

    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        names = list(available())
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownBackendError(
            f"no backend named {name!r} (installed: {', '.join(names) or 'none'}){hint}"
        )
    backend = matches[0].load()
    if not isinstance(backend, Backend):
        raise TypeError(f"entry point {matches[0].value} is not a patternc backend")
    return backend
