"""The conversations this process has had with one site, so a call can continue one.

Some plugins keep a conversation on the server (an Assistant thread, a session id). A
call whose earlier turns are exactly an earlier call's messages plus the reply it got
continues that conversation; any other call starts a new one. Conversations are
remembered by a digest of their text (never the text itself), least recently used
first out, at most `CONVERSATION_MEMORY_SIZE` per site; one memory per site, so no
state is ever shared between sites. Nothing here is logged.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence

from ._constants import CONVERSATION_MEMORY_SIZE
from ._messages import Turn

__all__ = ["ConversationMemory", "digest"]


def digest(turns: Sequence[Turn]) -> bytes:
    """A fixed-size key for a transcript: role and text of every turn, in order."""
    hashed = hashlib.blake2b(digest_size=16)
    for role, text in turns:
        hashed.update(role.encode("ascii", "replace"))
        hashed.update(b"\x00")
        hashed.update(text.encode("utf-8", "surrogatepass"))
        hashed.update(b"\x01")
    return hashed.digest()


class ConversationMemory:
    """Server-side conversation state by transcript, least recently used out first."""

    __slots__ = ("_entries", "size")

    def __init__(self, size: int = CONVERSATION_MEMORY_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[bytes, object] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<ConversationMemory {len(self._entries)} of {self.size}>"

    def recall(self, turns: Sequence[Turn]) -> object | None:
        """The state of the conversation that `turns` continues, if this process had it:
        `turns` without its last message is a transcript that was remembered."""
        if len(turns) < 2 or not self._entries:
            return None
        key = digest(turns[:-1])
        state = self._entries.get(key)
        if state is not None:
            self._entries.move_to_end(key)
        return state

    def remember(self, turns: Sequence[Turn], reply: str, state: object) -> None:
        """`turns` got `reply`, and the server keeps that conversation as `state`."""
        key = digest([*turns, ("assistant", reply)])
        self._entries[key] = state
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def forget(self, turns: Sequence[Turn]) -> None:
        """Drop the conversation that `turns` continues (the server lost it)."""
        if len(turns) >= 2:
            self._entries.pop(digest(turns[:-1]), None)

    def clear(self) -> None:
        self._entries.clear()
