"""The one error type users see as a clear one-line message (``smolbook: error: ...``, exit code 2)."""


class SmolbookError(Exception):
    """A user-facing error: bad input, missing file, unreachable hub. Say what is wrong and what to do."""
