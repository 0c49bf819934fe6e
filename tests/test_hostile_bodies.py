"""Bodies built to break a parser: each ends as one of our errors, never a raw exception."""

from __future__ import annotations

import json
import math
import sys

import pytest

from sendkit_async import (
    AsyncSendKit,
    InternalServerError,
    NotFoundError,
    ResponseValidationError,
)
from sendkit_async._protocol import parse_envelope, structure_field
from sendkit_async.errors import BODY_LIMIT
from sendkit_async.models import CampaignAnalytics, Mailbox, Percent
from tests.helpers import KEY, Script, reply

CAMPAIGN = "664a1b2c3d4e5f6a7b8c9d02"
DEEP = b"[" * 100_000


def client_for(server: Script) -> AsyncSendKit:
    return AsyncSendKit(api_key=KEY, base_url=server.base_url, max_retries=0)


async def test_deeply_nested_success_body_is_a_validation_error(server: Script) -> None:
    server.add(reply(DEEP))
    async with client_for(server) as client:
        with pytest.raises(ResponseValidationError) as info:
            await client.analytics.campaign(CAMPAIGN)
    assert info.value.errors == ("$: nested too deeply",)
    assert len(info.value.body) == BODY_LIMIT


@pytest.mark.parametrize(("status", "cls"), [(404, NotFoundError), (500, InternalServerError)])
async def test_deeply_nested_error_body_keeps_the_status_error(
    server: Script, status: int, cls: type[Exception]
) -> None:
    server.add(reply(DEEP, status))
    async with client_for(server) as client:
        with pytest.raises(cls) as info:
            await client.analytics.campaign(CAMPAIGN)
    assert info.value.status == status  # type: ignore[attr-defined]
    assert info.value.body == DEEP[:BODY_LIMIT].decode()  # type: ignore[attr-defined]


def test_nested_just_under_the_limit_inside_data_is_a_validation_error() -> None:
    depth = sys.getrecursionlimit() - 60  # decodes; anything that walks it again may not
    inner = "[" * depth + "]" * depth
    body = (
        '{"success": true, "data": {"campaign": {"id": "a", "name": "n", "status": "s"},'
        f' "statusBreakdown": {{"active": {inner}}}}}}}'
    ).encode()
    envelope = parse_envelope(200, body)
    with pytest.raises(ResponseValidationError) as info:
        structure_field(envelope, "data", CampaignAnalytics)
    assert any("$.data.statusBreakdown" in line for line in info.value.errors)


HUGE = "9" * 4000  # decodes (Python's digit limit is 4300), but no float can hold it
RATES = ("open_rate", "click_rate", "bounce_rate", "reply_rate", "positive_reply_rate")


def _analytics(stats: str, extra: str = "") -> CampaignAnalytics:
    body = (
        '{"success": true, "data": {"campaign": {"id": "a", "name": "n", "status": "s"},'
        f' "stats": {stats}{extra}}}}}'
    ).encode()
    result: CampaignAnalytics = structure_field(
        parse_envelope(200, body), "data", CampaignAnalytics
    )
    return result


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize(
    ("stats", "extra"),
    [
        (
            f'{{"sent": 3, "opened": {HUGE}, "clicked": {HUGE}, "bounced": {HUGE}, '
            f'"replied": {HUGE}}}',
            f', "totalPositiveReplied": {HUGE}',
        ),
        (
            f'{{"sent": {HUGE}, "opened": 1, "clicked": 1, "bounced": 1, "replied": 1}}',
            ', "totalPositiveReplied": 1',
        ),
    ],
    ids=["huge-part", "huge-whole"],
)
def test_rates_of_huge_counts_are_finite(rate: str, stats: str, extra: str) -> None:
    value = getattr(_analytics(stats, extra), rate)
    assert isinstance(value, float)
    assert math.isfinite(value)


@pytest.mark.parametrize("raw", ["9" * 400, "1e400", "nan", "-inf"])
def test_percent_beyond_float_range_is_none(raw: str) -> None:
    assert Percent(raw).percent is None
    assert Percent(raw).fraction is None


async def test_int_beyond_the_digit_limit_is_a_validation_error(server: Script) -> None:
    body = {"success": True, "data": {"campaign": {"id": "a", "name": "n", "status": "s"}}}
    text = json.dumps(body).replace('"s"}', '"s", "x": ' + "9" * 5000 + "}")
    server.add(reply(text), reply(text.replace('"success": true', '"code": 1'), 404))
    async with client_for(server) as client:
        with pytest.raises(ResponseValidationError):
            await client.analytics.campaign(CAMPAIGN)
        with pytest.raises(NotFoundError):
            await client.analytics.campaign(CAMPAIGN)


@pytest.mark.parametrize("number", ["1e400", "-Infinity", "NaN", "9" * 400])
def test_non_finite_float_field_is_a_validation_error(number: str) -> None:
    body = f'{{"success": true, "data": [{{"_id": "m1", "bounceRate": {number}}}]}}'.encode()
    envelope = parse_envelope(200, body)
    for strict in (False, True):
        with pytest.raises(ResponseValidationError) as info:
            structure_field(envelope, "data", tuple[Mailbox, ...], strict=strict)
        assert any("$.data[0].bounceRate" in line for line in info.value.errors)
