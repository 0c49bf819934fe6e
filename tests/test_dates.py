"""Date parameters: the public alias, and only the ISO 8601 forms the API documents."""

from __future__ import annotations

import datetime as dt
import typing

import sendkit_async
from sendkit_async import DateLike


def test_date_like_is_exported() -> None:
    assert "DateLike" in sendkit_async.__all__
    assert sendkit_async.__all__ == sorted(sendkit_async.__all__)
    assert set(typing.get_args(DateLike)) == {dt.date, dt.datetime, str}
