"""Benchmark client 2: the floor. One reused curl_cffi `AsyncSession`, the page GET
once, then the same POSTs (same form, same headers) and the JSON parse; nothing else:
no validation, retries, deadline, error mapping or cookie handling.

It impersonates the same browser as chatgpt4o and allows the same 64 parallel
transfers (curl_cffi's default is 10), so that the comparison is about the code
between the caller and curl, not about settings.
"""

from __future__ import annotations

import json
import re
import secrets
import string

import curl_cffi
from _harness import PROMPT, Client, main
from curl_cffi.requests import AsyncSession

ALPHABET = string.ascii_letters + string.digits


def setup(url: str, ca: str | None) -> Client:
    session = AsyncSession(impersonate="chrome", verify=ca or True, max_clients=64)
    ajax = url + "/wp-admin/admin-ajax.php"
    # The headers chatgpt4o sends, in its order (curl_cffi's Chrome defaults fill in the
    # rest, the same for both): its page GET asks for HTML, its POST names the charset.
    page_headers = {
        "accept": "text/html,application/xhtml+xml,*/*;q=0.8",
        "accept-language": "en-US,en;q=0.9",
    }
    headers = {
        "accept": "*/*",
        "accept-language": "en-US,en;q=0.9",
        "content-type": "application/x-www-form-urlencoded; charset=UTF-8",
        "origin": url,
        "referer": url + "/",
    }
    form: dict[str, str] = {}

    async def scrape() -> None:
        page = (await session.get(url + "/", headers=page_headers)).text
        form.update(
            _wpnonce=re.search(r'data-nonce="([0-9a-f]{10})"', page).group(1),
            post_id=re.search(r'data-post-id="(\d+)"', page).group(1),
            url=re.search(r'data-url="([^"]*)"', page).group(1),
            action="wpaicg_chat_shortcode_message",
            message=PROMPT,
            bot_id="0",
            chatbot_identity="shortcode",
            wpaicg_chat_history="[]",
            wpaicg_chat_client_id="".join(secrets.choice(ALPHABET) for _ in range(10)),
        )

    async def call() -> str:
        response = await session.post(ajax, data=form, headers=headers)
        return json.loads(response.content)["data"]

    async def stream():
        # A streaming widget's request also carries a random chat_id (1 to 100000).
        fields = {**form, "chat_id": str(secrets.randbelow(100_000) + 1)}
        response = await session.post(ajax, data=fields, headers=headers, stream=True)
        pending = b""
        try:
            async for chunk in response.aiter_content():
                events = (pending + chunk).split(b"\n\n")
                pending = events.pop()
                for event in events:
                    if event.startswith(b"data: {"):
                        delta = json.loads(event[6:])["choices"][0]["delta"]
                        if delta.get("content"):
                            yield delta["content"]
                    elif event.startswith(b"data: [DONE]"):
                        return
        finally:
            await response.aclose()

    return Client(
        call=call,
        stream=stream,
        start=scrape,
        aclose=session.close,
        info={"curl_cffi": curl_cffi.__version__},
    )


if __name__ == "__main__":
    main(setup)
