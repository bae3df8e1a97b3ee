"""A faithful local emulator of chatgpt4o.one (WordPress + the AI Power chat plugin).

It reproduces the legacy chat of AI Power 1.8.79 to 2.2 release by release (see
``SiteEmulator``'s ``plugin_version``): the page markup, nonces, the plugin's handling of
``message`` and ``wpaicg_chat_history``, both stream dialects, the Assistant mode, PHP
warnings on debug sites and translated texts. What the model was given is recorded
(``SiteEmulator.model_calls``).

Public names:

- :class:`SiteEmulator`: the aiohttp server (``async with SiteEmulator() as site``).
- :class:`EmulatorThread`: runs a ``SiteEmulator`` on its own loop in a daemon thread.
- :class:`Fault`: failures to inject with ``SiteEmulator.fail_next``.
- :class:`RecordedRequest`: what the emulator recorded about one request.
- :func:`make_nonce`: WordPress's nonce function.
- :func:`chat_page`: the HTML of a page with a chat (any plugin the emulators play), for
  respx routes and ``MockTransport`` handlers.
- :func:`serve`: the ``python -m chatgpt4o.testing`` command.
- :class:`MockTransport`: a transport answering with a handler of yours, no network;
  :class:`Request` and :class:`Response` are what the handler takes and returns.

Inside: ``_site`` (the WordPress site every emulator is: server, clock, nonces, fault
queue, counters, recorded requests), ``_fault_base`` (what every emulator's faults share),
``_emulator`` (the AI Power <= 2.2 handler), ``_pages`` (HTML), ``_faults``,
``_conversation`` (history and the model's messages), ``_streams`` (event-stream bytes),
``_output`` (PHP output buffering), ``_php`` (PHP and WordPress string functions),
``_aipower`` (what each release changed), ``_i18n`` (translations), ``_nonces``,
``_records``, ``_serve``, ``_thread``, ``_chat_page`` and ``pytest_plugin``. None of them
imports the client side of the package.

The names are imported lazily: importing this package (as pytest does for the bundled
plugin) costs nothing, and aiohttp is only needed once ``SiteEmulator``,
``EmulatorThread`` or ``serve`` is used (the extra ``local``: ``pip install aiohttp``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._transports.base import Request, Response
    from .._transports.mock import MockTransport
    from ._chat_page import chat_page
    from ._emulator import SiteEmulator
    from ._faults import Fault
    from ._nonces import make_nonce
    from ._records import RecordedRequest
    from ._serve import serve
    from ._thread import EmulatorThread

__all__ = [
    "EmulatorThread",
    "Fault",
    "MockTransport",
    "RecordedRequest",
    "Request",
    "Response",
    "SiteEmulator",
    "chat_page",
    "make_nonce",
    "serve",
]

_MODULES = {
    "EmulatorThread": "._thread",
    "Fault": "._faults",
    "MockTransport": ".._transports.mock",
    "Request": ".._transports.base",
    "Response": ".._transports.base",
    "RecordedRequest": "._records",
    "SiteEmulator": "._emulator",
    "chat_page": "._chat_page",
    "make_nonce": "._nonces",
    "serve": "._serve",
}


def __getattr__(name: str) -> Any:
    try:
        module_name = _MODULES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
