"""aiohttp, which the emulators are built on, or one ImportError that says how to get it.

Every emulator imports aiohttp from here, so that a missing aiohttp reads the same
wherever it is first met.
"""

from __future__ import annotations

try:
    from aiohttp import web
    from multidict import CIMultiDict
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "chatgpt4o.testing needs aiohttp, which is not installed: pip install aiohttp "
        '(the extra "local" of chatgpt4o)'
    ) from exc

__all__ = ["CIMultiDict", "web"]
