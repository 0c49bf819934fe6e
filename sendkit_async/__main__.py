"""``python -m sendkit_async``: the command line."""

from .cli import entry_point

entry_point()
