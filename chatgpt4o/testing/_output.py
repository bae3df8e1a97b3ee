"""What one PHP request prints, and which status and headers go out with it.

PHP sends the headers with the first byte that leaves the process. With output buffering
(the usual ``php.ini``) the first bytes stay in a buffer, so a warning printed early does
not stop the plugin from setting its ``Content-Type`` or WordPress from setting a 403; the
plugin's ``ob_end_flush()`` empties the buffer. Without buffering the first warning sends
the headers at once: the answer keeps admin-ajax.php's ``text/html`` and status 200, and
every later ``header()`` call prints a ``Cannot modify header information`` warning of its
own (docs/protocol.md §4.1 has the client's side of this).

:class:`PhpOutput` follows those rules for the emulator. Its items are what the emulator
sends: bytes, a pause (a ``float``, seconds) or :data:`ABORT` (drop the connection).
"""

from __future__ import annotations

from typing import Final

from ._php import PhpMessage, php_json

__all__ = [
    "ABORT",
    "EVENT_STREAM",
    "HTML",
    "JSON",
    "PHP_WARNING_MODES",
    "Item",
    "PhpOutput",
]

HTML = "text/html; charset=UTF-8"
JSON = "application/json; charset=UTF-8"
EVENT_STREAM = "text/event-stream;charset=UTF-8"

#: ``display_errors`` off; on with output buffering; on without output buffering.
PHP_WARNING_MODES = ("off", "buffered", "unbuffered")


class _Abort:
    def __repr__(self) -> str:
        return "ABORT"


#: An item that drops the connection where it stands.
ABORT: Final = _Abort()

Item = bytes | float | _Abort

# Where wp_send_json() echoes, for "output started at" (WordPress 6.6).
_WP_FUNCTIONS = ("/var/www/html/wp-includes/functions.php", 4366)


class PhpOutput:
    """The output of one request to admin-ajax.php.

    Attributes:
        display: PHP prints warnings and notices (``display_errors`` on).
        status: the HTTP status that went (or will go) out.
        content_type: the ``Content-Type`` that went (or will go) out.
        stream: the plugin's event-stream headers took effect.
        streaming: the plugin started an event stream (whether or not its headers did).
        close: close the connection after the answer.
        items: what was printed, in order.
    """

    def __init__(self, mode: str) -> None:
        self.display = mode != "off"
        self._buffering = mode != "unbuffered"
        self.sent = False
        self.status = 200
        self.content_type = HTML
        self.stream = False
        self.streaming = False
        self.close = False
        self.items: list[Item] = []
        self._started_at: tuple[str, int] | None = None

    def write(self, data: bytes, origin: tuple[str, int] = _WP_FUNCTIONS) -> None:
        """Print ``data``; ``origin`` is the file and line that print it."""
        if not data:
            return
        if not self._buffering:
            self.sent = True
        if self._started_at is None:
            self._started_at = origin
        self.items.append(data)

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` before printing on (the plugin flushes before it waits)."""
        if seconds > 0:
            self.items.append(float(seconds))

    def abort(self) -> None:
        """Drop the connection here."""
        self.items.append(ABORT)

    def warn(self, message: PhpMessage) -> None:
        """A warning or notice: printed when ``display_errors`` is on."""
        if self.display:
            self.write(message.html().encode(), (message.file, message.line))

    def header(self, file: str, line: int) -> bool:
        """A ``header()`` call at ``file:line``: ``False`` (and a warning) once the headers
        are out."""
        if not self.sent:
            return True
        started = self._started_at or _WP_FUNCTIONS
        origin = PhpMessage("Warning", "", started[0], started[1])
        self.warn(origin.headers_already_sent(file, line))
        return False

    def start_stream(self, file: str, lines: tuple[int, ...]) -> None:
        """The plugin's event-stream ``header()`` calls, then ``ob_end_flush()``."""
        results = [self.header(file, line) for line in lines]
        if all(results):
            self.stream = True
            self.content_type = EVENT_STREAM
        self.streaming = True
        self.flush()

    def flush(self) -> None:
        """``ob_end_flush()``: what the buffer holds goes out, and buffering ends."""
        if self._buffering:
            self._buffering = False
            if self.items:
                self.sent = True

    def clean(self) -> None:
        """``while (ob_get_level()) ob_end_clean();``: the buffer's content is thrown away."""
        if self._buffering:
            self.items.clear()
            self._started_at = None
            self._buffering = False

    def send_json(self, payload: object) -> None:
        """``wp_send_json()``: the JSON ``Content-Type`` if the headers are still open."""
        if not self.sent:
            self.content_type = JSON
        self.write(php_json(payload).encode())

    def die(self, status: int, text: str) -> None:
        """``wp_die()`` in admin-ajax.php: ``status`` if the headers are still open, then
        the bare text."""
        if not self.sent:
            self.status = status
        self.write(text.encode())
