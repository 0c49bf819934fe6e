"""Every Python snippet of the README runs, against the simulator, in a fresh interpreter,
and passes ``mypy --strict`` as a user's own code would."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sendkit_async.simulator import Simulator, SimulatorConfig, run_simulator
from tests.helpers import run_python

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)

WEBAPP_HARNESS = """
import asyncio, json
from aiohttp.test_utils import TestClient, TestServer

async def _drive():
    async with TestClient(TestServer(make_app(), host="127.0.0.1")) as http:
        ok = await http.get("/campaigns/" + CAMPAIGN_ID)
        missing = await http.get("/campaigns/ffffffffffffffffffffffff")
        print("STATUS", ok.status, missing.status)
        print("BODY", json.dumps(await ok.json()))

asyncio.run(_drive())
"""


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator(SimulatorConfig(campaigns=150, seed=5)) as s:
        yield s


async def run_snippet(code: str, sim: Simulator) -> tuple[int, str, str]:
    env = {
        "SENDKIT_API_KEY": "sk_readme_test",
        "SENDKIT_BASE_URL": sim.base_url,
        "PYTHONPATH": str(ROOT),  # this checkout's package, not an installed one
    }
    return await run_python("-c", code, env=env)


def runs_as_a_script(snippet: str) -> bool:
    """An async snippet (``asyncio.run(main())``) or one using the blocking client."""
    return "asyncio.run(main())" in snippet or re.search(r"\bwith SendKit\(", snippet) is not None


def test_the_readme_has_the_snippets_we_expect() -> None:
    assert len(SNIPPETS) == 17
    assert any("class Tally(Hooks)" in s for s in SNIPPETS)
    assert any("OpenTelemetryHooks" in s for s in SNIPPETS)
    assert any("cleanup_ctx" in s for s in SNIPPETS)
    assert any("gather_campaigns" in s and "progress=" in s for s in SNIPPETS)
    assert any("to_pandas(" in s and "to_polars(" in s for s in SNIPPETS)
    assert any(re.search(r"\bwith SendKit\(", s) for s in SNIPPETS)


@pytest.mark.parametrize("index", [i for i, s in enumerate(SNIPPETS) if runs_as_a_script(s)])
async def test_snippet_runs(index: int, sim: Simulator) -> None:
    code, out, err = await run_snippet(SNIPPETS[index], sim)
    assert code == 0, err
    assert out.strip(), "every snippet prints something"
    assert "Traceback" not in err


async def test_quickstart_prints_real_campaigns(sim: Simulator) -> None:
    snippet = next(s for s in SNIPPETS if "campaigns.list(limit=5)" in s)
    code, out, err = await run_snippet(snippet, sim)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 5
    first = sim.campaign_ids[0]
    name = await _campaign_name(sim, first)
    assert lines[0].startswith(f"{name}: ")


async def test_dataframes_snippet_prints_frames_of_real_campaigns(sim: Simulator) -> None:
    snippet = next(s for s in SNIPPETS if "to_pandas(" in s)
    code, out, err = await run_snippet(snippet, sim)
    assert code == 0, err
    header = out.splitlines()[0].split()
    assert header == ["id", "name", "status", "sent", "open_rate", "error"]
    assert "'sent': Int64Dtype()" in out and "'status': CategoricalDtype(" in out
    assert "shape: (3, 3)" in out  # the polars frame of the last three days


async def _campaign_name(sim: Simulator, campaign_id: str) -> str:
    from sendkit_async import AsyncSendKit

    async with AsyncSendKit(api_key="sk_readme_test", base_url=sim.base_url) as client:
        return (await client.analytics.campaign(campaign_id)).campaign.name


async def test_raw_response_snippet_shows_the_answer(sim: Simulator) -> None:
    snippet = next(s for s in SNIPPETS if "with_raw_response" in s)
    code, out, err = await run_snippet(snippet, sim)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "200 application/json None"  # the simulator sends no id
    assert lines[1] == "None 1"  # nor rate-limit headers, without a rate limit
    first = sim.campaign_ids[0]
    assert lines[2].endswith(" " + await _campaign_name(sim, first))
    assert "'campaign'" in lines[2] and "'stepStats'" in lines[2]  # wire names
    listing = f"{sim.base_url}/v1/campaigns?limit=100"
    assert len(lines) == 5 and lines[3] == f"{listing} 100"  # 150 campaigns: two pages
    assert lines[4].startswith(f"{listing}&cursor=") and lines[4].endswith(" 50")


async def test_sync_snippet_prints_what_the_api_has(sim: Simulator) -> None:
    snippet = next(s for s in SNIPPETS if re.search(r"\bwith SendKit\(", s))
    code, out, err = await run_snippet(
        "import warnings; warnings.simplefilter('error')\n" + snippet, sim
    )
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith(f"{await _campaign_name(sim, sim.campaign_ids[0])}: ")
    assert lines[3:] == [
        "150 campaigns, 156 requests so far",  # a page of 3, 3 campaigns, 2 pages, 150
        "16 fetched from 8 threads",
        "not found: 404",
    ]
    assert err == ""


async def test_webapp_snippet_serves_and_closes(sim: Simulator) -> None:
    snippet = next(s for s in SNIPPETS if "cleanup_ctx" in s)
    campaign_id = sim.campaign_ids[3]
    code = snippet.replace('__name__ == "__main__"', "False")
    code += f"\nCAMPAIGN_ID = {campaign_id!r}\n" + WEBAPP_HARNESS
    status, out, err = await run_snippet(
        "import warnings; warnings.simplefilter('error')\n" + code, sim
    )
    assert status == 0, err
    assert "STATUS 200 404" in out
    assert f'"name": "{await _campaign_name(sim, campaign_id)}"' in out
    assert "Unclosed" not in err


async def test_fastapi_snippet_serves_over_http(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aiohttp

    from tests.helpers import uvicorn_server

    snippet = next(s for s in SNIPPETS if "FastAPI(lifespan=lifespan)" in s)
    monkeypatch.setenv("SENDKIT_API_KEY", "sk_readme_test")
    monkeypatch.setenv("SENDKIT_BASE_URL", sim.base_url)
    namespace: dict[str, object] = {"__name__": "readme_fastapi"}
    exec(compile(snippet, "readme_fastapi", "exec"), namespace)  # noqa: S102 - our README
    campaign_id = sim.campaign_ids[2]
    async with uvicorn_server(namespace["app"]) as url, aiohttp.ClientSession() as http:
        async with http.get(f"{url}/campaigns/{campaign_id}") as ok:
            assert ok.status == 200
            body = await ok.json()
        async with http.get(f"{url}/campaigns/ffffffffffffffffffffffff") as missing:
            assert missing.status == 404
            assert await missing.json() == {"detail": "campaign not found"}
    assert body["name"] == await _campaign_name(sim, campaign_id)


async def test_caching_snippet_counts_what_it_says(sim: Simulator) -> None:
    snippet = next(s for s in SNIPPETS if "MemoryCache(maxsize=1024" in s)
    code, out, err = await run_snippet(snippet, sim)
    assert code == 0, err
    assert out.strip() == "requests=3 coalesced=49 hits=2"
    assert "requests=3 coalesced=49 hits=2" in README.read_text()


async def test_redis_snippet_runs(sim: Simulator, redis_url: str) -> None:
    snippet = next(s for s in SNIPPETS if "RedisRateLimiter" in s)
    assert "redis://127.0.0.1:6379/0" in snippet
    code, out, err = await run_snippet(snippet.replace("redis://127.0.0.1:6379/0", redis_url), sim)
    assert code == 0, err
    assert out.startswith("150 RateLimitSnapshot(")


def mypy_strict(snippets: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``mypy --strict`` over the snippets, one module each, in one run; its report."""
    import mypy.api

    files = []
    for index, code in enumerate(snippets):
        file = tmp_path / f"readme_snippet_{index}.py"
        file.write_text(code)
        files.append(str(file))
    monkeypatch.setenv("MYPYPATH", str(ROOT))  # this checkout's package, not an installed one
    # No config file: a user's code is checked with the options a user would pass.
    options = ["--strict", "--python-version", "3.10", "--config-file", ""]
    out, err, status = mypy.api.run([*options, "--cache-dir", str(tmp_path / "cache"), *files])
    assert status in (0, 1), err
    return out


@pytest.mark.timeout(300)  # one mypy run with a cold cache: seconds, not minutes
def test_snippets_pass_mypy_strict_as_user_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = "x: int = 'a user type error'\n"  # proves the check can fail
    report = mypy_strict([*SNIPPETS, broken], tmp_path, monkeypatch)
    errors = [line for line in report.splitlines() if ": error:" in line]
    assert len(errors) == 1, report
    assert f"readme_snippet_{len(SNIPPETS)}.py:1: error: Incompatible types" in errors[0]


async def test_hooks_snippet_counts_every_answer(sim: Simulator) -> None:
    import ast

    snippet = next(s for s in SNIPPETS if "class Tally(Hooks)" in s)
    code, out, err = await run_snippet(snippet, sim)
    assert code == 0, err
    last = out.strip().splitlines()[-1]
    assert last.startswith("answers by status: ")
    statuses = ast.literal_eval(last.split(": ", 1)[1].split(", failed")[0])
    assert statuses[200] == 11  # the list and ten campaigns
    assert last.endswith("failed calls: 0")


async def test_otel_snippet_prints_the_span_tree_and_metrics(sim: Simulator) -> None:
    snippet = next(s for s in SNIPPETS if "OpenTelemetryHooks" in s)
    code, out, err = await run_snippet(snippet, sim)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert sorted(lines[:4]) == [
        "CLIENT GET /v1/analytics/campaigns/{id} 200",
        "CLIENT GET /v1/campaigns 200",
        "INTERNAL GET /v1/analytics/campaigns/{id} 200",
        "INTERNAL GET /v1/campaigns 200",
    ]
    assert "'http.client.request.duration'" in lines[4]
    assert "'sendkit.client.requests'" in lines[4]
