"""Pure tests of the generated data, the config and the limiter (no server, no sleeping)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from sendkit_async.simulator import SimulatorConfig
from sendkit_async.simulator import _render as render
from sendkit_async.simulator._data import TIMELINE_DAYS, Workspace
from sendkit_async.simulator._limits import (
    TokenBucketLimiter,
    format_delta,
    rate_limit_headers,
)
from tests.simulator.sim_helpers import check_analytics

CAMPAIGNS = 200


@pytest.fixture(scope="module")
def workspace() -> Workspace:
    return Workspace(seed=7, campaigns=CAMPAIGNS)


@pytest.mark.parametrize("shape", ["current", "original"])
def test_every_campaign_is_consistent(shape: str) -> None:
    ws = Workspace(seed=3, campaigns=CAMPAIGNS, subsequences=shape == "current")
    statuses = set()
    for c in ws:
        data = json.loads(render.dumps(render.campaign_analytics(c, shape)))
        check_analytics(data, shape, c.total_leads)
        statuses.add(c.status)
        if shape == "current":
            assert data["stats"]["sent"] == c.total_sent
    assert statuses == {"draft", "active", "paused", "completed", "archived"}


def test_main_sequence_does_not_depend_on_shape() -> None:
    cur = Workspace(seed=5, campaigns=50, subsequences=True)
    orig = Workspace(seed=5, campaigns=50, subsequences=False)
    assert cur.ids == orig.ids
    assert [c.main for c in cur] == [c.main for c in orig]
    assert any(c.subsequences for c in cur)
    assert not any(c.subsequences for c in orig)


def test_ranges_are_consistent_and_additive(workspace: Workspace) -> None:
    for c in workspace:
        d = c.active_days
        cuts = sorted({0, d // 3, d // 2, d - 1 if d else 0, d})
        parts = []
        for a, b in itertools.pairwise(cuts):
            data = render.campaign_analytics(c, "current", a, b)
            check_analytics(data, "current", c.total_leads)
            parts.append(data)
        whole = render.campaign_analytics(c, "current")
        for key in ("sent", "opened", "clicked", "bounced", "replied", "unsubscribed"):
            assert sum(p["stats"][key] for p in parts) == whole["stats"][key]
        assert sum(p["totalPositiveReplied"] for p in parts) == whole["totalPositiveReplied"]


def test_daily_rows_match_ranged_analytics(workspace: Workspace) -> None:
    for c in list(workspace)[:60]:
        cols = render.campaign_columns(c, None)
        assert cols is not None
        d = c.active_days
        a, b = d // 4, d - d // 4
        ranged = render.campaign_analytics(c, "current", a, b)
        assert sum(cols[0][a:b]) == ranged["stats"]["sent"]
        assert sum(cols[1][a:b]) == ranged["stats"]["opened"]
        assert sum(cols[4][a:b]) == ranged["totalReplied"]
        assert sum(cols[5][a:b]) == ranged["totalPositiveReplied"]
        for day in zip(*cols, strict=True):
            sent, opened, clicked, bounced, replied, positive = day
            assert opened <= sent
            assert clicked <= opened
            assert bounced <= sent
            assert replied <= sent
            assert positive <= replied


def test_timeline_matches_overview(workspace: Workspace) -> None:
    over = render.overview(workspace)
    all_cols = workspace.timeline_columns("all")
    main_cols = workspace.timeline_columns("main")
    assert len(all_cols[0]) == TIMELINE_DAYS
    assert sum(all_cols[0]) == over["totalSent"]
    assert sum(all_cols[4]) == over["totalReplied"]
    assert sum(all_cols[5]) == over["totalPositiveReplied"]
    assert sum(main_cols[0]) == over["bySequence"]["main"]["sent"]
    assert over["totalCampaigns"] == CAMPAIGNS
    assert over["activeCampaigns"] == sum(c.status == "active" for c in workspace)
    sent = over["totalSent"]
    assert over["rates"]["open"] == f"{100 * over['totalOpened'] / sent:.1f}"


def test_same_seed_same_bytes_other_seed_other_data() -> None:
    def bodies(seed: int) -> list[bytes]:
        ws = Workspace(seed=seed, campaigns=30)
        return [render.ok(render.campaign_analytics(c, "current")) for c in ws]

    assert bodies(1) == bodies(1)
    assert Workspace(seed=1, campaigns=30).ids == Workspace(seed=1, campaigns=30).ids
    assert set(Workspace(seed=1, campaigns=30).ids).isdisjoint(Workspace(seed=2, campaigns=30).ids)
    assert bodies(1) != bodies(2)


def test_ids_are_unique_object_ids() -> None:
    ws = Workspace(seed=0, campaigns=20_000)
    assert len(set(ws.ids)) == 20_000
    assert all(len(i) == 24 and int(i, 16) >= 0 for i in ws.ids[:100])


# --- config ---------------------------------------------------------------------------

BAD_CONFIGS: list[tuple[dict[str, Any], str]] = [
    ({"fault_rate": 1.5}, "fault_rate"),
    ({"fault_rate": -0.1}, "fault_rate"),
    ({"reset_rate": 2}, "reset_rate"),
    ({"rate_limit": 0}, "rate_limit"),
    ({"rate_limit": -1.0}, "rate_limit"),
    ({"burst": 0}, "burst"),
    ({"rate_limit_headers": "x-rate"}, "rate_limit_headers"),
    ({"shape": "future"}, "shape"),
    ({"campaigns": -1}, "campaigns"),
    ({"latency_ms": -5}, "latency_ms"),
    ({"jitter_ms": float("nan")}, "jitter_ms"),
    ({"slow_body_ms": "slow"}, "slow_body_ms"),
    ({"seed": "x"}, "seed"),
    ({"api_keys": ("not-a-key",)}, "api_keys"),
]


@pytest.mark.parametrize(("changes", "field"), BAD_CONFIGS)
def test_config_rejects_bad_values(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SimulatorConfig(**changes)


def test_config_defaults_and_repr_hide_keys() -> None:
    cfg = SimulatorConfig(rate_limit=2.5, api_keys=["sk_secret_one"])
    assert cfg.campaigns == 2000
    assert cfg.shape == "current"
    assert cfg.api_keys == ("sk_secret_one",)
    assert cfg.effective_burst == 3
    assert SimulatorConfig(rate_limit=0.2).effective_burst == 1
    assert SimulatorConfig(rate_limit=5, burst=2).effective_burst == 2
    assert "sk_secret_one" not in repr(cfg)


# --- limiter (fake clock: times are plain numbers) -------------------------------------


def test_token_bucket_burst_refill_and_denials_are_free() -> None:
    lim = TokenBucketLimiter(rate=2.0, burst=3)
    got = [lim.acquire("k", 100.0) for _ in range(4)]
    assert [d.allowed for d in got] == [True, True, True, False]
    assert [d.remaining for d in got] == [2, 1, 0, 0]
    assert got[3].retry_after == pytest.approx(0.5)
    assert got[2].reset_after == pytest.approx(1.5)
    # A denial takes no token: another denial at the same time sees the same state.
    assert lim.acquire("k", 100.0).retry_after == pytest.approx(0.5)
    assert lim.acquire("k", 100.25).allowed is False
    back = lim.acquire("k", 100.5)
    assert back.allowed
    assert back.remaining == 0
    assert lim.acquire("other", 100.5).remaining == 2  # buckets are per key
    full = lim.acquire("k", 200.0)
    assert full.allowed
    assert full.remaining == 2


def test_header_modes() -> None:
    lim = TokenBucketLimiter(rate=4.0, burst=2)
    ok = lim.acquire("k", 0.0)
    lim.acquire("k", 0.0)
    denied = lim.acquire("k", 0.1)  # 0.4 tokens: 0.15 s to the next one
    assert rate_limit_headers(ok, "x-ratelimit") == {
        "X-RateLimit-Limit": "2",
        "X-RateLimit-Remaining": "1",
        "X-RateLimit-Reset": "0.25",
    }
    assert rate_limit_headers(denied, "x-ratelimit") == {
        "X-RateLimit-Limit": "2",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "0.4",
        "Retry-After": "1",
        "retry-after-ms": "150",
    }
    assert rate_limit_headers(ok, "ietf") == {
        "RateLimit-Limit": "2",
        "RateLimit-Remaining": "1",
        "RateLimit-Reset": "1",
        "RateLimit-Policy": "2;w=0.5",  # quota 2 per 2/4 s
    }
    assert rate_limit_headers(denied, "ietf")["Retry-After"] == "1"
    assert rate_limit_headers(ok, "retry-after-only") == {}
    assert rate_limit_headers(denied, "retry-after-only") == {"Retry-After": "1"}
    assert rate_limit_headers(denied, "none") == {}


def test_format_delta_rounds_up_to_milliseconds() -> None:
    assert format_delta(0.0) == "0"
    assert format_delta(2.0) == "2"
    assert format_delta(0.1234) == "0.124"
    assert format_delta(1.5) == "1.5"
