"""Models to and from the API's own JSON (wire names such as ``stepStats`` and ``_id``).

Useful to cache results or hand them to code that expects the API's shape::

    data = to_wire(analytics)                 # a dict, exactly as the API would send it
    again = from_wire(data, CampaignAnalytics)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, overload

from ._protocol import structure_field

if TYPE_CHECKING:
    from attrs import AttrsInstance

__all__ = ["JSON", "from_wire", "to_wire"]

T = TypeVar("T")

JSON: TypeAlias = dict[str, "JSON"] | list["JSON"] | str | int | float | bool | None
"""JSON-ready data, as ``json.dumps`` takes it and ``json.loads`` gives it."""


@overload
def to_wire(obj: AttrsInstance) -> dict[str, JSON]: ...
@overload
def to_wire(obj: Sequence[AttrsInstance]) -> list[dict[str, JSON]]: ...
@overload
def to_wire(obj: object) -> JSON: ...


def to_wire(obj: object) -> Any:
    """A model (or a list/tuple of models) as JSON-ready data with the API's field names.

    Fields the API did not send (None) are left out, so a parsed body round-trips.
    """
    from ._converter import unstructure

    return unstructure(obj)


def from_wire(data: Any, cls: type[T], *, strict: bool = False) -> T:
    """Parse API-shaped ``data`` into ``cls``; ``strict=True`` also rejects unknown fields.

    Raises:
        ResponseValidationError: the data does not fit ``cls`` (field paths in ``.errors``).
    """
    result: T = structure_field({"data": data}, "data", cls, strict=strict)
    return result
