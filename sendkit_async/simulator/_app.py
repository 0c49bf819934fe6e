"""The aiohttp application: route handlers and the one request pipeline middleware.

Pipeline order for every non-admin request: stats in -> latency -> auth -> rate limit ->
fault draw -> handler -> rate-limit headers -> (slow body) -> stats out. Admin routes under
``/_simulator/`` skip all of it.
"""

from __future__ import annotations

import asyncio
import bisect
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import date, datetime, timezone
from http import HTTPStatus
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Middleware
from multidict import CIMultiDictProxy

from . import _render
from ._config import KEY_RE
from ._data import STATUSES, TIMELINE_DAYS, day_number
from ._faults import RESET, fault_response, reset_connection, write_slowly
from ._limits import rate_limit_headers

if TYPE_CHECKING:
    from ._server import Simulator

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ADMIN_PREFIX = "/_simulator/"
DEFAULT_LIMIT = 25
MAX_LIMIT = 100
DEFAULT_DAYS = 30
_SUB_ID_RE = re.compile(r"[0-9a-fA-F]{24}\Z")
_JSON = "application/json"


class BadRequest(Exception):
    """A query parameter is invalid; becomes a 400 envelope."""


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = _render.error_body(status, HTTPStatus(status).phrase, message)
    return web.Response(status=status, body=body, content_type=_JSON, headers=headers)


def not_found() -> web.Response:
    return error_response(404, "The requested resource was not found")


def _json(body: bytes) -> web.Response:
    return web.Response(body=body, content_type=_JSON)


def _http_error(exc: web.HTTPException) -> web.Response:
    if exc.status == 404:
        return not_found()
    extra = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return error_response(exc.status, exc.reason, extra)


# --- auth -------------------------------------------------------------------------------


def extract_key(headers: CIMultiDictProxy[str]) -> str | None:
    """The API key from ``X-Api-Key`` or ``Authorization: Bearer``; "" when unusable."""
    key = headers.get("X-Api-Key")
    if key is not None:
        return key.strip()
    auth = headers.get("Authorization")
    if auth is None:
        return None
    scheme, _, rest = auth.strip().partition(" ")
    return rest.strip() if scheme.lower() == "bearer" else ""


def check_auth(
    key: str | None, headers: CIMultiDictProxy[str], allowed: frozenset[str]
) -> web.Response | None:
    """None when the request may proceed, else the 401/403 answer (never echoes the key)."""
    if key is None:
        return error_response(401, "Missing API key: send X-Api-Key or Authorization: Bearer")
    if not KEY_RE.match(key) or key == "sk_user_" or (allowed and key not in allowed):
        return error_response(401, "Invalid API key")
    if key.startswith("sk_user_") and not headers.get("X-Workspace-Id", "").strip():
        return error_response(403, "You don't have permission to access this resource")
    return None


# --- query parsing ----------------------------------------------------------------------


def parse_day(value: str, name: str) -> int:
    """Timeline day of an ISO 8601 date or date-time (date-times count in UTC)."""
    text = value.strip()
    try:
        if len(text) <= 10:
            return day_number(date.fromisoformat(text))
        if text[-1] in "zZ":
            text = text[:-1] + "+00:00"
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is not None:
            moment = moment.astimezone(timezone.utc)
        return day_number(moment.date())
    except (ValueError, OverflowError):
        raise BadRequest(f"Invalid '{name}': expected an ISO 8601 date or date-time") from None


def parse_range(query: Mapping[str, str], *, default_days: int | None) -> tuple[int, int]:
    """Inclusive timeline days ``(lo, hi)`` from ``from``/``to``.

    ``default_days`` None means all time when both are omitted; otherwise a missing
    ``from`` is ``to - default_days + 1`` and a missing ``to`` is the simulated today.
    """
    raw_from = query.get("from") or None
    raw_to = query.get("to") or None
    today = TIMELINE_DAYS - 1
    hi = parse_day(raw_to, "to") if raw_to else (today if default_days else 10**9)
    if raw_from:
        lo = parse_day(raw_from, "from")
    elif default_days:
        lo = hi - default_days + 1
    else:
        lo = -(10**9)
    if lo > hi:
        raise BadRequest("'from' must not be after 'to'")
    return lo, hi


def parse_subsequence(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    if raw == "main":
        return raw
    if not _SUB_ID_RE.match(raw):
        raise BadRequest("Invalid 'subsequenceId': expected 'main' or a 24-hex id")
    return raw.lower()


# --- handlers ---------------------------------------------------------------------------


class Handlers:
    """Route handlers bound to one Simulator (no per-request app lookups)."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.ws = sim.workspace
        self.shape = sim.config.shape
        self._analytics: dict[str, bytes] = {}
        self._overview: bytes | None = None
        self._mailboxes = _render.ok(_render.mailboxes(self.ws.seed, self.ws.size))
        self._filtered: dict[tuple[str | None, str | None], list[int]] = {}
        self._busy: asyncio.Lock | None = None

    async def _drive(self, steps: Iterator[None]) -> None:
        """Run a workspace-wide computation in steps, letting other requests through."""
        if self._busy is None:
            self._busy = asyncio.Lock()
        async with self._busy:  # concurrent first requests wait for one computation
            for _ in steps:
                await asyncio.sleep(0)

    async def campaign_analytics(self, request: web.Request) -> web.StreamResponse:
        cid = request.match_info["id"]
        query = request.query
        if query.get("from") or query.get("to"):
            c = self.ws.find(cid)
            if c is None:
                return not_found()
            a, b = c.local_window(*parse_range(query, default_days=None))
            return _json(_render.ok(_render.campaign_analytics(c, self.shape, a, b)))
        body = self._analytics.get(cid)
        if body is None:
            c = self.ws.find(cid)
            if c is None:
                return not_found()
            body = _render.ok(_render.campaign_analytics(c, self.shape))
            self._analytics[cid] = body
        return _json(body)

    async def overview(self, request: web.Request) -> web.StreamResponse:
        if self._overview is None:
            await self._drive(self.ws.generate_all())
            self._overview = _render.ok(_render.overview(self.ws))
        return _json(self._overview)

    async def daily(self, request: web.Request) -> web.StreamResponse:
        lo, hi = parse_range(request.query, default_days=DEFAULT_DAYS)
        sub = parse_subsequence(request.query.get("subsequenceId"))
        await self._drive(self.ws.aggregate())
        columns: list[list[int]] = []
        offset = 0
        if sub is None or sub == "main":
            columns = self.ws.timeline_columns("all" if sub is None else "main")
        else:
            owner = self.ws.subsequence_owner(sub)
            if owner is not None:
                columns = _render.campaign_columns(owner[0], sub) or []
                offset = owner[0].start_day
        return _json(_render.ok(_render.daily_rows(columns, offset, lo, hi)))

    async def campaign_daily(self, request: web.Request) -> web.StreamResponse:
        c = self.ws.find(request.match_info["campaignId"])
        if c is None:
            return not_found()
        lo, hi = parse_range(request.query, default_days=DEFAULT_DAYS)
        sub = parse_subsequence(request.query.get("subsequenceId"))
        columns = _render.campaign_columns(c, sub) or []
        return _json(_render.ok(_render.daily_rows(columns, c.start_day, lo, hi)))

    async def mailboxes(self, request: web.Request) -> web.StreamResponse:
        return _json(self._mailboxes)

    def _matching(self, status: str | None, search: str | None) -> list[int]:
        found = self._filtered.get((status, search))
        if found is None:
            if len(self._filtered) > 64:
                self._filtered.clear()
            found = [
                i
                for i, (name, st) in enumerate(self.ws.cores)
                if (status is None or st == status) and (search is None or search in name.lower())
            ]
            self._filtered[(status, search)] = found
        return found

    async def campaigns(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        raw_limit = query.get("limit") or str(DEFAULT_LIMIT)
        try:
            limit = int(raw_limit)
        except ValueError:
            raise BadRequest("Invalid 'limit': expected an integer") from None
        if limit < 1:
            raise BadRequest("Invalid 'limit': must be at least 1")
        limit = min(limit, MAX_LIMIT)
        status = query.get("status") or None
        if status is not None and status not in STATUSES:
            raise BadRequest(f"Invalid 'status': expected one of {', '.join(STATUSES)}")
        search = (query.get("search") or "").strip().lower() or None
        cursor = query.get("cursor") or None
        after = -1
        if cursor is not None:
            found = self.ws.index_of.get(cursor)
            if found is None:
                raise BadRequest("Invalid 'cursor'")
            after = found
        if status is None and search is None:
            start, total = after + 1, self.ws.size
            page = list(range(start, min(start + limit, total)))
        else:
            matching = self._matching(status, search)
            start, total = bisect.bisect_right(matching, after), len(matching)
            page = matching[start : start + limit]
        data = [_render.campaign_list_item(self.ws.campaign(i)) for i in page]
        pagination = {
            "limit": limit,
            "total": total,
            "hasMore": start + len(page) < total,
            # Like the API, the last page still names its last id: stop on hasMore.
            "nextCursor": self.ws.ids[page[-1]] if page else None,
        }
        return _json(_render.ok(data, pagination=pagination))

    async def admin_stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.sim.stats.to_dict())

    async def admin_reset(self, request: web.Request) -> web.StreamResponse:
        self.sim.stats.reset()
        return web.json_response({"ok": True})


# --- pipeline ---------------------------------------------------------------------------


def make_pipeline(sim: Simulator) -> Middleware:
    stats = sim.stats
    faults = sim.faults

    @web.middleware
    async def pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            try:
                return await handler(request)
            except web.HTTPException as exc:
                return _http_error(exc)
        loop = asyncio.get_running_loop()
        resource = request.match_info.route.resource
        path = resource.canonical if resource is not None else "<unmatched>"
        stats.begin()
        status: int | None = 500
        label = "anonymous"
        try:
            cfg = sim.config
            if cfg.latency_ms or cfg.jitter_ms:
                await asyncio.sleep(faults.delay(cfg.latency_ms, cfg.jitter_ms))
            headers = request.headers
            key = extract_key(headers)
            label = stats.key_hash(key)
            denied = check_auth(key, headers, sim.allowed_keys)
            if denied is not None:
                status = denied.status
                return denied
            limit_headers = None
            limiter = sim.limiter
            if limiter is not None:
                now = sim.clock() if sim.clock is not None else loop.time()
                decision = limiter.acquire(label, now)
                limit_headers = rate_limit_headers(decision, cfg.rate_limit_headers)
                if not decision.allowed:
                    status = 429
                    return error_response(429, "Rate limit exceeded", limit_headers)
            fault = (
                faults.draw(cfg.fault_rate, cfg.reset_rate)
                if (cfg.fault_rate or cfg.reset_rate)
                else None
            )
            if fault == RESET:
                status = None
                return reset_connection(request)
            resp: web.StreamResponse
            if isinstance(fault, tuple):
                resp = fault_response(fault[0], fault[1], cfg.fault_retry_after)
            else:
                try:
                    resp = await handler(request)
                except web.HTTPException as exc:
                    resp = _http_error(exc)
                except BadRequest as exc:
                    resp = error_response(400, str(exc))
                if limit_headers:
                    resp.headers.update(limit_headers)
            status = resp.status
            if cfg.slow_body_ms > 0 and isinstance(resp, web.Response):
                return await write_slowly(request, resp, cfg.slow_body_ms)
            return resp
        finally:
            stats.end(loop.time(), status, label, path)

    return pipeline


def build_routes(app: web.Application, handlers: Handlers) -> None:
    h = handlers
    app.router.add_get("/v1/analytics/campaigns/{id}", h.campaign_analytics)
    app.router.add_get("/v1/analytics/overview", h.overview)
    app.router.add_get("/v1/analytics/daily", h.daily)
    app.router.add_get("/v1/analytics/daily/campaigns/{campaignId}", h.campaign_daily)
    app.router.add_get("/v1/analytics/mailboxes", h.mailboxes)
    app.router.add_get("/v1/campaigns", h.campaigns)
    app.router.add_get(ADMIN_PREFIX + "stats", h.admin_stats)
    app.router.add_post(ADMIN_PREFIX + "reset", h.admin_reset)
