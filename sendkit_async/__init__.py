"""sendkit-async: an async-first SDK for the SendKit analytics API."""

from ._version import __version__

__all__ = ["__version__"]
