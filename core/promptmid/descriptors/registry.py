"""Engine name -> descriptor factory, with an error that lists the valid names."""

from __future__ import annotations

from typing import Callable

from ..errors import InputError
from .base import Describer
from .classical import ClassicalDescriber

_FACTORIES: dict[str, Callable[..., Describer]] = {
    "classical": lambda **_: ClassicalDescriber(),
}


def available_engines() -> list[str]:
    return sorted(_FACTORIES)


def get_describer(name: str, **options: object) -> Describer:
    """Build the descriptor of engine ``name``; options are engine-specific (model dir, device...)."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise InputError(f"Unknown engine '{name}'. Available engines: {', '.join(available_engines())}.") from None
    return factory(**options)
