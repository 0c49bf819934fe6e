"""Parsing of the documented bodies into models, with every value checked."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sendkit_async import (
    Campaign,
    CampaignAnalytics,
    CampaignStats,
    ResponseValidationError,
    SequenceSplit,
    SequenceStats,
    StepStats,
    Subsequence,
    SubsequenceTrigger,
)
from sendkit_async._converter import unstructure
from sendkit_async._protocol import parse_envelope, structure_field
from tests.helpers import fixture


def parse(body: Any, *, strict: bool = True) -> CampaignAnalytics:
    import json

    envelope = parse_envelope(200, json.dumps(body).encode())
    result: CampaignAnalytics = structure_field(envelope, "data", CampaignAnalytics, strict=strict)
    return result


def test_seed_fixture_parses_every_value() -> None:
    a = parse(fixture("analytics_campaign_seed.json"))
    assert a.campaign == Campaign(
        id="664a1b2c3d4e5f6a7b8c9d02", name="Q1 Outreach", status="active"
    )
    assert a.stats == CampaignStats(
        total_leads=500, sent=1200, opened=540, clicked=120, bounced=36, replied=60
    )
    assert a.stats.delivered is None and a.stats.unsubscribed is None
    assert a.step_stats == (
        StepStats(step=1, sent=500, opened=300, clicked=80, bounced=20),
        StepStats(step=2, sent=400, opened=180, clicked=30, bounced=12),
        StepStats(step=3, sent=300, opened=60, clicked=10, bounced=4),
    )
    assert dict(a.status_breakdown) == {
        "active": 180,
        "completed": 250,
        "paused": 30,
        "bounced": 36,
        "removed": 4,
    }
    assert a.total_replied == 60
    assert a.total_positive_replied is None
    assert a.by_sequence is None
    assert a.subsequences == ()
    assert a.id == "664a1b2c3d4e5f6a7b8c9d02"
    assert a.open_rate == pytest.approx(540 / 1200)
    assert a.click_rate == pytest.approx(120 / 1200)
    assert a.bounce_rate == pytest.approx(36 / 1200)
    assert a.reply_rate == pytest.approx(60 / 1200)
    assert a.step_stats[0].open_rate == pytest.approx(0.6)


def test_current_fixture_parses_every_value() -> None:
    a = parse(fixture("analytics_campaign_current.json"))
    assert a.campaign == Campaign(
        id="664a1b2c3d4e5f6a7b8c9d02", name="Webinar Attendee Nurture", status="paused"
    )
    assert a.stats == CampaignStats(
        sent=195, delivered=195, opened=51, clicked=16, replied=18, bounced=18, unsubscribed=8
    )
    assert a.stats.total_leads is None
    assert a.by_sequence == SequenceSplit(
        main=SequenceStats(sent=175, opened=45, clicked=13, bounced=17),
        subsequence=SequenceStats(sent=20, opened=6, clicked=3, bounced=1),
    )
    assert [s.step for s in a.step_stats] == [0, 1, 2]
    assert a.step_stats[0] == StepStats(step=0, sent=103, opened=31, clicked=9, bounced=9)
    assert a.step_stats[2] == StepStats(step=2, sent=20, opened=4, clicked=1, bounced=2)
    assert a.subsequences == (
        Subsequence(
            id="665c1b2c3d4e5f6a7b8c9d20",
            name="Interested follow-up",
            trigger=SubsequenceTrigger(type="ai_tag", value="interested"),
            enabled=True,
            archived=False,
            added_count=18,
            currently_enrolled=9,
            stats=SequenceStats(sent=20, opened=6, clicked=3, bounced=1, replied=2),
            step_stats=(
                StepStats(step=0, sent=12, opened=4, clicked=2, bounced=1),
                StepStats(step=1, sent=8, opened=2, clicked=1, bounced=0),
            ),
        ),
    )
    assert dict(a.status_breakdown) == {
        "failed": 6,
        "bounced": 18,
        "active": 30,
        "completed": 23,
        "unsubscribed": 8,
        "replied": 18,
        "pending": 22,
    }
    assert a.total_replied == 18
    assert a.total_positive_replied == 8
    assert a.reply_rate == pytest.approx(18 / 195)
    assert a.positive_reply_rate == pytest.approx(8 / 195)


@pytest.mark.parametrize(
    "name", ["analytics_campaign_seed.json", "analytics_campaign_current.json"]
)
def test_round_trip_to_wire_names(name: str) -> None:
    body = fixture(name)
    assert unstructure(parse(body)) == body["data"]


def test_models_are_frozen_and_breakdown_read_only() -> None:
    a = parse(fixture("analytics_campaign_seed.json"))
    with pytest.raises(AttributeError):
        a.total_replied = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        a.status_breakdown["active"] = 1  # type: ignore[index]
    assert hash(a) == hash(parse(fixture("analytics_campaign_seed.json")))


def test_rates_are_zero_when_nothing_sent() -> None:
    a = CampaignAnalytics(campaign=Campaign("x", "n", "draft"), stats=CampaignStats(sent=0))
    assert (a.open_rate, a.click_rate, a.bounce_rate, a.reply_rate) == (0.0, 0.0, 0.0, 0.0)
    assert CampaignAnalytics(campaign=Campaign("x", "n", "draft")).sent == 0


def test_unknown_keys_ignored_by_default_rejected_by_strict() -> None:
    body = copy.deepcopy(fixture("analytics_campaign_current.json"))
    body["data"]["stats"]["newMetric"] = 4
    body["data"]["brandNew"] = {"x": 1}
    lenient = parse(body, strict=False)
    assert lenient.stats.sent == 195
    with pytest.raises(ResponseValidationError) as info:
        parse(body, strict=True)
    assert any("newMetric" in e or "brandNew" in e for e in info.value.errors)


def test_unknown_status_values_are_kept() -> None:
    body = copy.deepcopy(fixture("analytics_campaign_seed.json"))
    body["data"]["campaign"]["status"] = "scheduled"
    body["data"]["statusBreakdown"]["snoozed"] = 7
    a = parse(body)
    assert a.campaign.status == "scheduled"
    assert a.status_breakdown["snoozed"] == 7


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d["stats"].__setitem__("sent", "1200"), "$.data.stats.sent"),
        (lambda d: d["stepStats"][1].__setitem__("opened", 1.5), "$.data.stepStats[1].opened"),
        (lambda d: d["campaign"].__setitem__("id", 42), "$.data.campaign.id"),
        (
            lambda d: d["statusBreakdown"].__setitem__("active", "many"),
            "$.data.statusBreakdown['active']",
        ),
        (lambda d: d.__delitem__("campaign"), "$.data.campaign"),
    ],
)
def test_wrong_types_name_the_field_path(mutate: Any, path: str) -> None:
    body = copy.deepcopy(fixture("analytics_campaign_seed.json"))
    mutate(body["data"])
    with pytest.raises(ResponseValidationError) as info:
        parse(body, strict=False)
    assert any(path in line for line in info.value.errors), info.value.errors
    assert path in str(info.value)


def test_fixture_copies_match_shared_originals() -> None:
    from tests.helpers import FIXTURES, SHARED_FIXTURES

    if not SHARED_FIXTURES.is_dir():
        pytest.skip("../shared/fixtures is not beside this checkout")
    originals = sorted(p.name for p in SHARED_FIXTURES.glob("*.json"))
    assert originals == sorted(p.name for p in FIXTURES.glob("*.json"))
    for name in originals:
        assert (FIXTURES / name).read_bytes() == (SHARED_FIXTURES / name).read_bytes(), name


def test_public_wire_round_trip() -> None:
    from sendkit_async import from_wire, to_wire

    body = fixture("analytics_campaign_current.json")["data"]
    parsed = from_wire(body, CampaignAnalytics, strict=True)
    assert parsed.subsequences[0].trigger == SubsequenceTrigger(type="ai_tag", value="interested")
    assert to_wire(parsed) == body
    assert to_wire([parsed, parsed]) == [body, body]
    with pytest.raises(ResponseValidationError, match=r"\$\.data\.stats\.sent"):
        from_wire({**body, "stats": {"sent": "many"}}, CampaignAnalytics)
