"""Key references: what a job carries instead of an API key, and how a worker resolves it."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from ..errors import ConfigurationError

__all__ = ["NAME_RE", "KeyResolver", "check_name", "env_name"]

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
"""Key references and run ids: they name Redis keys and directories, so no ``/`` or spaces."""

KEY_PREFIX = "SENDKIT_KEY_"
WORKSPACE_PREFIX = "SENDKIT_WORKSPACE_ID_"


def check_name(value: object, what: str) -> str:
    """``value`` if it is a usable key reference or run id.

    Raises:
        ConfigurationError: not 1-64 letters, digits, ``_``, ``.`` or ``-`` (first a
            letter or digit).
    """
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ConfigurationError(
            f"{what} must be 1-64 letters, digits, '_', '.' or '-' (starting with a letter "
            f"or digit), got {value!r}"
        )
    return value


def env_name(ref: str, prefix: str = KEY_PREFIX) -> str:
    """The environment variable of a key reference: ``acme-eu`` -> ``SENDKIT_KEY_ACME_EU``."""
    return prefix + re.sub(r"[^A-Za-z0-9]", "_", ref).upper()


class KeyResolver:
    """Turns a key reference (a name such as ``"acme"``) into this machine's API key.

    A job in Redis carries only the reference; every worker resolves it from its
    own configuration: ``keys`` first, then the environment variable
    ``SENDKIT_KEY_<NAME>`` (upper case, other characters as ``_``). A platform
    key's workspace comes from ``workspaces`` or ``SENDKIT_WORKSPACE_ID_<NAME>``.
    The repr shows the references, never a key.
    """

    __slots__ = ("_env", "_keys", "_workspaces")

    def __init__(
        self,
        keys: Mapping[str, str] | None = None,
        *,
        workspaces: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._keys = dict(keys or {})
        self._workspaces = dict(workspaces or {})
        self._env = environ

    def key(self, ref: str) -> str:
        """The API key of ``ref``.

        Raises:
            ConfigurationError: a malformed reference, or no key configured for it.
        """
        check_name(ref, "key reference")
        key = self._keys.get(ref)
        if key is None:
            env = os.environ if self._env is None else self._env
            key = env.get(env_name(ref))
        if not key:
            raise ConfigurationError(
                f"no API key for key reference {ref!r}: set {env_name(ref)} on this machine "
                "or give the worker a mapping"
            )
        return key

    def workspace_id(self, ref: str) -> str | None:
        """The workspace of ``ref`` for platform keys, or None."""
        found = self._workspaces.get(ref)
        if found is None:
            env = os.environ if self._env is None else self._env
            found = env.get(env_name(ref, WORKSPACE_PREFIX))
        return found or None

    def __repr__(self) -> str:
        return f"<KeyResolver refs={sorted(self._keys)} + {KEY_PREFIX}* environment>"
