"""Models to and from the API's own JSON (wire names such as ``stepStats`` and ``_id``).

Useful to cache results or hand them to code that expects the API's shape::

    data = to_wire(analytics)                 # a dict, exactly as the API would send it
    again = from_wire(data, CampaignAnalytics)
"""

from __future__ import annotations

from typing import Any, TypeVar

from ._protocol import structure_field

__all__ = ["from_wire", "to_wire"]

T = TypeVar("T")


def to_wire(obj: Any) -> Any:
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
