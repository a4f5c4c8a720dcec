"""Which detectors exist: the built-ins, then add-ons from the entry-point group.

Add-ons are found through the ``onplatform.detectors`` entry points (never by
walking directories or subclasses); a name that clashes with another is an
error, never a silent override.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

from onplatform.detectors import contact_data, phrases
from onplatform.detectors.base import Detector
from onplatform.detectors.lexicon import Lexicon

ENTRY_POINT_GROUP = "onplatform.detectors"

Factory = Callable[[Mapping[str, Any]], Detector]


class RegistryError(ValueError):
    """Two detectors claim one name, or an add-on cannot be loaded."""


def builtin_factories(lexicon: Lexicon) -> dict[str, Factory]:
    return {
        "phrases": lambda options: phrases.create(options, lexicon),
        "contact_data": contact_data.create,
    }


def discover(lexicon: Lexicon, entry_points: Any = None) -> dict[str, Factory]:
    """All detector factories by name, built-ins first."""
    factories = builtin_factories(lexicon)
    found = (
        entry_points if entry_points is not None else metadata.entry_points(group=ENTRY_POINT_GROUP)
    )
    for entry in found:
        if entry.name in factories:
            raise RegistryError(
                f"detector {entry.name!r} from {entry.value} clashes with another detector"
            )
        try:
            factories[entry.name] = entry.load()
        except Exception as err:
            raise RegistryError(
                f"detector {entry.name!r} ({entry.value}) failed to load: {err}"
            ) from err
    return factories


def build(
    factories: Mapping[str, Factory], tables: Mapping[str, Mapping[str, Any]]
) -> list[Detector]:
    """Instantiate every enabled detector; unknown names in the config are errors."""
    for name in tables:
        if name not in factories:
            raise RegistryError(
                f"detectors.{name}: unknown detector (known: {', '.join(sorted(factories))})"
            )
    detectors = []
    for name, factory in factories.items():
        options = tables.get(name, {})
        if not options.get("enabled", True):
            continue
        detector = factory({k: v for k, v in options.items() if k != "enabled"})
        detectors.append(detector)
    return detectors
