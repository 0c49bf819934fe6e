"""Example web apps that embed one shared :class:`sendkit_async.AsyncSendKit` (not installed)."""
