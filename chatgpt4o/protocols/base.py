"""The protocol seam: what the call engine needs from one WordPress chat plugin.

A protocol knows one plugin's wire format and nothing else. It reads a page into the
site's credentials (or says the page does not run its plugin), describes the
request(s) of one chat turn as data, reads an answer (plain or streamed) into text
pieces, and sorts an error answer into a typed error. It does no I/O and keeps no
state between calls: the engine fetches, sends, retries, caches and times.

A turn is a generator (`ChatProtocol.turn`): it may yield preliminary requests, each
answered with the whole `Answer`, and returns the request whose answer is the reply.
A plugin that needs one request returns it at once.

See docs/protocol.md for the wire formats themselves.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Generic, TypeVar

from .._exceptions import StaleCredentials
from .._messages import Turn as MessageTurn
from .._transports.base import Request

__all__ = [
    "Answer",
    "ChatProtocol",
    "Conversation",
    "PageReader",
    "ProbeVerdict",
    "ReplyReader",
    "StaleCredentials",
    "Turn",
]

#: A protocol's credentials for one site (what it read from the page).
Credentials = TypeVar("Credentials")
#: A protocol's checked form of one call's messages.
Prepared = TypeVar("Prepared")


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole answer to a preliminary request of a turn."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes = field(repr=False)
    url: str = ""


#: One turn: preliminary requests out, their answers in, the reply's request returned.
Turn = Generator[Request, Answer, Request]


@dataclass(frozen=True, slots=True)
class ProbeVerdict:
    """What the answer to a protocol's `probe` request says about the credentials.

    `accepted` is True when the site accepted them, False when it rejected them, and
    None when the answer cannot tell; `said` is what the site answered, for people
    (trimmed, without secrets).
    """

    accepted: bool | None
    said: str


@dataclass(slots=True)
class Conversation(Generic[Prepared]):
    """One call's conversation as a protocol sees it.

    `state` is what the server keeps of the conversation this call continues (an
    Assistant thread id, say), or None for a new conversation; a protocol sets it
    when an answer names the server's conversation, and the engine remembers it for
    the call that continues this one (see `chatgpt4o/_memory.py`).
    """

    prepared: Prepared
    state: object | None = None
    #: The state remembered for this conversation when the call began (what to send);
    #: `state` is what the answers say, and what the engine remembers afterwards.
    recalled: object | None = None
    #: Fresh credentials the answer handed out (a renewed nonce); the engine keeps them.
    credentials: object | None = None


class PageReader(ABC, Generic[Credentials]):
    """Reads a page as it arrives; `feed` says when reading more is pointless."""

    @abstractmethod
    def feed(self, chunk: bytes) -> bool:
        """Take the next piece of the page; True once enough has been read."""

    @abstractmethod
    def text(self) -> str:
        """The page read so far, for error messages."""

    @abstractmethod
    def result(self, *, page_url: str, site_url: str) -> Credentials | None:
        """The site's credentials; None when the page shows no trace of this plugin.

        Raises `ScrapeError` when the plugin is there but its data is unusable.
        `page_url` is the page's final address (after redirects).
        """


class ReplyReader(ABC):
    """Reads one answer body into reply pieces, whatever its shape."""

    @abstractmethod
    def feed(self, chunk: bytes) -> list[str]:
        """The reply pieces this chunk completes (often none); raises typed errors."""

    @abstractmethod
    def close(self) -> str:
        """The body has ended: the whole reply, or the typed error if it ended badly."""


class ChatProtocol(ABC, Generic[Credentials, Prepared]):
    """One plugin's wire format. Instances hold configuration only, never call state."""

    #: Shown in messages and logs: the plugin and the versions this protocol speaks.
    name: ClassVar[str]
    #: Said when a page has no trace of the plugin (a `ScrapeError`).
    missing: ClassVar[str]

    @abstractmethod
    def prepare(self, turns: Sequence[MessageTurn]) -> Prepared:
        """Put the call's checked (role, text) turns in the form `turn` uses; no I/O.

        Raises ValueError for a conversation the plugin cannot take.
        """

    @abstractmethod
    def page_reader(self, bot: str | None = None) -> PageReader[Credentials]:
        """A reader for one load of the page; `bot` picks one of several chatbots on it
        (None: the first)."""

    def dialect(self, credentials: Credentials) -> ChatProtocol[Credentials, Prepared]:
        """The protocol that serves calls made with `credentials`: this one, or, for a
        protocol that speaks the dialect the page shows (`aipower`), that dialect's,
        which goes straight to its own steps. The engine asks once per credentials and
        then calls the answer for `usable`, `turn`, `reply_reader`, `read_reply` and
        `check_answer` of the answers those credentials get."""
        return self

    def usable(self, credentials: Credentials) -> bool:
        """False for credentials that cannot make a request (incomplete ones)."""
        return True

    def complete(self, credentials: Credentials) -> Request | None:
        """A request that completes credentials read from the page (a guest session to
        start, say), or None when they are complete. Its answer goes to
        `read_completion`."""
        return None

    def refresh(self, stale: Credentials) -> Request | None:
        """After the site rejected `stale`: a request that renews them without loading
        the page (a nonce endpoint), or None to load the page. Its answer goes to
        `read_completion`."""
        return None

    def read_completion(self, credentials: Credentials, answer: Answer) -> Credentials | None:
        """Credentials from the answer to `complete`'s or `refresh`'s request; None when
        the page must be loaded instead. Raises the typed error of a failed answer."""
        return None

    def same_credentials(self, old: Credentials, new: Credentials) -> bool:
        """Whether a fresh load of the page gave the credentials the site rejected."""
        return old == new

    # -- for `chatgpt4o check` (chatgpt4o/_check.py): never used by a chat call ----------

    def describe(self, credentials: Credentials) -> dict[str, str | int | bool | None]:
        """What the page told about its chatbot, for people: the plugin (`plugin`), the
        bot, whether it streams, hints at the plugin's version; never a secret."""
        return {"plugin": self.name}

    def probe(self, credentials: Credentials) -> Request | None:
        """A harmless request that shows whether the site accepts `credentials`: the
        chat request with an empty message, which the plugin refuses after checking the
        nonce and before anything reaches the model (docs/protocol.md §11). None when
        the protocol has none. Its answer goes to `read_probe`."""
        return None

    def read_probe(self, credentials: Credentials, answer: Answer) -> ProbeVerdict:
        """What the answer to `probe`'s request says. Raises the typed error of an answer
        that is neither the expected refusal nor a rejection of the credentials (a
        banned IP, a plugin without the chat action, a 5xx), as a chat would meet it."""
        raise NotImplementedError(f"{self.name} has no probe")

    @abstractmethod
    def turn(
        self,
        credentials: Credentials,
        conversation: Conversation[Prepared],
        *,
        visitor: str,
        stream: bool,
    ) -> Turn:
        """The requests of one chat turn (see `Turn`).

        `visitor` is the site-wide visitor id the engine keeps; `stream` asks for a
        streamed reply where the site can give one.
        """

    @abstractmethod
    def reply_reader(
        self, credentials: Credentials, conversation: Conversation[Prepared]
    ) -> ReplyReader:
        """A reader for the answer to the turn's last request."""

    def read_reply(
        self, credentials: Credentials, conversation: Conversation[Prepared], body: bytes
    ) -> str:
        """The reply in a whole answer body (the answer was read at once)."""
        reader = self.reply_reader(credentials, conversation)
        reader.feed(body)
        return reader.close()

    @abstractmethod
    def check_answer(
        self,
        status: int,
        headers: Mapping[str, str],
        body: str,
        *,
        page: bool = False,
        credentials: Credentials | None = None,
    ) -> None:
        """Raise the typed error for an answer that is not a success; return otherwise.
        `credentials` are those the request carried (None for a page load).

        `body` is the start of the answer (decoded); `page` says it answered a page load
        rather than a chat request. Raises `StaleCredentials` for rejected credentials.
        """

    @abstractmethod
    def new_visitor_id(self) -> str:
        """A fresh visitor id, as a browser makes one on its first visit."""
