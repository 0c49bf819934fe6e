"""Without arq (the ``jobs`` extra): importing sendkit_async.jobs and ``sendkit-async jobs``
say which extra to install, as a MissingDependencyError (exit 2, one line)."""

from __future__ import annotations

import importlib
import sys

import pytest

from sendkit_async import MissingDependencyError, SendKitError
from sendkit_async.cli import main

HINT = "pip install 'sendkit-async[jobs]'"


@pytest.fixture
def no_arq(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "arq", None)  # what `import arq` sees when it is absent
    for name in [m for m in sys.modules if m.startswith("sendkit_async.jobs")]:
        monkeypatch.delitem(sys.modules, name)  # import the package afresh, as without arq


@pytest.mark.usefixtures("no_arq")
def test_importing_jobs_without_arq_names_the_extra() -> None:
    with pytest.raises(MissingDependencyError) as caught:
        importlib.import_module("sendkit_async.jobs")
    error = caught.value
    assert isinstance(error, SendKitError) and isinstance(error, ImportError)
    assert str(error) == f"sendkit_async.jobs needs arq, which is not installed: {HINT}"
    assert (error.name, error.extra) == ("arq", "jobs")
    assert isinstance(error.__cause__, ImportError)


@pytest.mark.usefixtures("no_arq")
@pytest.mark.parametrize(
    "argv",
    [
        ["jobs", "status", "run1"],
        ["jobs", "worker", "--sink", "jsonl:out"],
        ["jobs", "enqueue", "--key-ref", "acme", "--all"],
    ],
)
def test_the_jobs_command_without_arq_exits_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert (
        err
        == f"sendkit-async: error: sendkit-async jobs needs arq, which is not installed: {HINT}\n"
    )
