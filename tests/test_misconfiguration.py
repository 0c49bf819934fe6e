"""Configuration and local mistakes are refused at once, never retried as network failures."""

from __future__ import annotations

import pytest

from sendkit_async import AsyncSendKit, errors
from tests.helpers import KEY, PLATFORM_KEY

SECRET = "hunter2-s3cret"


@pytest.mark.parametrize(
    "base_url",
    [
        f"https://user:{SECRET}@api.sendkit.ai",
        f"https://{SECRET}@api.sendkit.ai",
        f"https://:{SECRET}@api.sendkit.ai/v1",
        f"http://user:{SECRET}@127.0.0.1:9",
    ],
)
def test_credentials_in_base_url_refused_without_quoting_them(base_url: str) -> None:
    with pytest.raises(errors.ConfigurationError) as info:
        AsyncSendKit(api_key=KEY, base_url=base_url)
    assert "user name or password" in str(info.value)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (f"sk_{SECRET}\x00x", "NUL"),
        (f"sk_{SECRET}\x07x", "control character"),
        (f"sk_{SECRET}\u00e9x", "non-ASCII"),
    ],
)
def test_key_that_is_no_header_value_refused(key: str, problem: str) -> None:
    with pytest.raises(errors.ConfigurationError) as info:
        AsyncSendKit(api_key=key, base_url="http://127.0.0.1:9")
    assert problem in str(info.value) and "API key" in str(info.value)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("workspace", "problem"),
    [
        (f"ws{SECRET}\r\nX-Evil: 1", "line break"),
        (f"ws{SECRET}\n", "whitespace"),
        (f"ws{SECRET}\x00", "NUL"),
    ],
)
def test_workspace_id_that_is_no_header_value_refused(workspace: str, problem: str) -> None:
    with pytest.raises(errors.ConfigurationError) as info:
        AsyncSendKit(api_key=PLATFORM_KEY, base_url="http://127.0.0.1:9", workspace_id=workspace)
    assert problem in str(info.value) and "workspace id" in str(info.value)
    assert SECRET not in str(info.value)
