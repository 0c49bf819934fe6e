"""Date parameters: the public alias, and only the ISO 8601 forms the API documents."""

from __future__ import annotations

import datetime as dt
import typing

import pytest

import sendkit_async
from sendkit_async import AsyncSendKit, DateLike, InvalidRequestError
from sendkit_async._protocol import DATE_FORMS, iso_date
from tests.helpers import KEY, Script


def test_date_like_is_exported() -> None:
    assert "DateLike" in sendkit_async.__all__
    assert sendkit_async.__all__ == sorted(sendkit_async.__all__)
    assert set(typing.get_args(DateLike)) == {dt.date, dt.datetime, str}


@pytest.mark.parametrize(
    "text",
    [
        "2025-06-01",
        "2025-06-01T12:00",
        "2025-06-01T12:00:59",
        "2025-06-01T12:00:59.5Z",
        "2025-06-01T23:59:59.123456+02:00",
        "2025-06-01T00:00-05:30",
    ],
)
def test_documented_forms_are_sent_as_given(text: str) -> None:
    assert iso_date(text) == text


@pytest.mark.parametrize(
    "value",
    [dt.date(2025, 6, 1), dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.timezone.utc)],
)
def test_date_objects_are_iso_text(value: dt.date) -> None:
    assert iso_date(value) == value.isoformat()


BAD_DATES = [
    "2025-W01-1",
    "20250601",
    "2025-06-01 12:00",
    "2025-152",
    "2025-06",
    "2025-06-01T12",
    "2025-06-01Z",
    "2025-13-01",
    "2025-02-30",
    "2025-06-01T24:00",
    "2025-06-01T12:00:60",
    "2025-06-01T12:00+24:00",
    "2025-06-01T12:00:00.1234567",
    "\u0968\u0966\u0968\u096b-06-01",  # Devanagari digits: \\d would take them
]


@pytest.mark.parametrize("text", BAD_DATES)
def test_other_forms_are_refused_naming_the_accepted_ones(text: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        iso_date(text, "from_")
    assert DATE_FORMS in str(info.value)
    assert str(info.value).startswith("from_ must be an ISO 8601 date or date-time (a date, ")


@pytest.mark.parametrize("text", ["2025-W01-1", "20250601", "2025-06-01 12:00"])
async def test_a_refused_date_sends_nothing(server: Script, text: str) -> None:
    async with AsyncSendKit(api_key=KEY, base_url=server.base_url, max_retries=0) as client:
        with pytest.raises(InvalidRequestError):
            await client.analytics.campaign("664a1b2c3d4e5f6a7b8c9d02", from_=text)
        with pytest.raises(InvalidRequestError):
            await client.analytics.daily(to=text)
    assert server.requests == []
