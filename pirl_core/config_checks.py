"""Config errors and the range checks that sections run in `__post_init__`."""

from __future__ import annotations


class ConfigError(ValueError):
    """A bad config: unknown key, wrong type or out-of-range value; the message names the key."""


class FieldError(ConfigError):
    """A value rejected by a section's `__post_init__`; the loader adds the dotted path and source.

    `related` names the other fields of the same section that took part in a combination check,
    so the loader can report where each of them was set.
    """

    def __init__(self, name: str, expected: str, value: object, related: tuple[str, ...] = ()):
        self.name, self.expected, self.value, self.related = name, expected, value, related
        super().__init__(f"{name}: expected {expected}, got {value!r}")


def _require(ok: bool, name: str, expected: str, value: object, *related: str) -> None:
    if not ok:
        raise FieldError(name, expected, value, related)


def _at_least(obj: object, minimum: int, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _require(value >= minimum, name, f"an int >= {minimum}", value)


def _positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _require(value > 0, name, "a float > 0", value)


def _non_negative(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _require(value >= 0, name, "a float >= 0", value)


def _unit_interval(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _require(0.0 <= value <= 1.0, name, "a float in [0, 1]", value)
