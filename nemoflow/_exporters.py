"""The exporter registry: subscriber classes registered under the ``nemoflow.exporters`` entry points.

``get_exporter("openinference")`` returns the class (not an instance): exporters take options such as an
endpoint or a tracer provider, so the caller builds them.
"""

from __future__ import annotations

import logging
import threading
from importlib import metadata

from nemoflow._errors import ConfigurationError
from nemoflow._records import Subscriber

__all__ = ["EXPORTER_ENTRY_POINT_GROUP", "exporters", "get_exporter"]

_log = logging.getLogger("nemoflow")

EXPORTER_ENTRY_POINT_GROUP = "nemoflow.exporters"
"""Entry-point group under which exporter classes are registered."""

_lock = threading.Lock()
_found: dict[str, metadata.EntryPoint] | None = None
_loaded: dict[str, type[Subscriber]] = {}


def _entry_points() -> dict[str, metadata.EntryPoint]:
    global _found
    if _found is None:
        with _lock:
            if _found is None:
                _found = {ep.name: ep for ep in metadata.entry_points(group=EXPORTER_ENTRY_POINT_GROUP)}
    return _found


def exporters() -> list[str]:
    """Names of the installed exporters."""
    return sorted(_entry_points())


def get_exporter(name: str) -> type[Subscriber]:
    """The exporter class registered as ``name`` (loaded on first use).

    Raises:
        ConfigurationError: No exporter has that name, or its plugin fails to load.
    """
    cached = _loaded.get(name)
    if cached is not None:
        return cached
    entry_point = _entry_points().get(name)
    if entry_point is None:
        known = ", ".join(exporters()) or "none installed"
        raise ConfigurationError(f"unknown exporter {name!r} (known: {known})")
    try:
        loaded = entry_point.load()
    except Exception as exc:
        raise ConfigurationError(f"exporter plugin {name!r} failed to load: {exc}") from exc
    if not (isinstance(loaded, type) and issubclass(loaded, Subscriber)):
        raise ConfigurationError(f"exporter plugin {name!r} is not a nemoflow.Subscriber class")
    _loaded[name] = loaded
    return loaded
