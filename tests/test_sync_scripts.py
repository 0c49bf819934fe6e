"""``SendKit`` in plain scripts: a fresh interpreter each, against a simulator in this process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sendkit_async.simulator import Simulator, SimulatorConfig, run_simulator
from tests.sync_helpers import run_script, served

SCRIPT = """
import threading
from sendkit_async import SendKit, NotFoundError

with SendKit() as client:
    ids = list(client.campaigns.iter_ids())
    results = client.gather_campaigns(ids)
    print("fetched", len(results), results[0].campaign.id == ids[0])
    try:
        client.analytics.campaign("ffffffffffffffffffffffff")
    except NotFoundError as exc:
        print("not found", exc.status)
print("threads", threading.active_count())
"""

FORGOTTEN = """
import gc, threading
from sendkit_async import SendKit

def use():
    client = SendKit()
    print("campaign", client.analytics.campaign(client.campaigns.list(limit=1).items[0].id).sent)
    {ending}

use()
gc.collect()
print("threads", threading.active_count())
"""


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with served(lambda: run_simulator(SimulatorConfig(campaigns=20, seed=9))) as (simulator, _):
        yield simulator


def env(sim: Simulator) -> dict[str, str]:
    return {"SENDKIT_API_KEY": "sk_script_test", "SENDKIT_BASE_URL": sim.base_url}


def test_a_plain_script(sim: Simulator) -> None:
    done = run_script(SCRIPT, env(sim), "-W", "error")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["fetched 20 True", "not found 404", "threads 1"]
    assert done.stderr == ""


def test_a_forgotten_client_warns_when_collected_and_stops_its_thread(sim: Simulator) -> None:
    # The last reference goes when use() returns: the finalizer warns and closes.
    done = run_script(FORGOTTEN.format(ending="pass"), env(sim), "-W", "always::ResourceWarning")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "threads 1"
    assert "ResourceWarning: unclosed SendKit client" in done.stderr
    assert "Unclosed" not in done.stderr  # aiohttp's session was closed properly
    assert "Traceback" not in done.stderr


def test_a_client_alive_at_exit_warns_and_never_holds_the_exit_up(sim: Simulator) -> None:
    code = FORGOTTEN.format(ending="global KEPT; KEPT = client")
    done = run_script(code, env(sim), "-W", "always::ResourceWarning")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "threads 2"  # still running when the script ends
    assert "ResourceWarning: unclosed SendKit client" in done.stderr
    assert "Unclosed" not in done.stderr
    assert "Traceback" not in done.stderr
