"""Check that the floor sends what chatgpt4o sends: the same requests, bodies and headers.

    python benchmarks/same_bytes.py     # exit status 0 when they match

Both clients call one emulator (a plain site and a streaming one, over HTTP and over
HTTPS), two calls each after the page; the emulator records every request as it arrived
(`SiteEmulator.requests`). Bodies must be equal byte for byte and headers equal in name,
value and order, once the values each client draws at random are masked: the visitor id
(`wpaicg_chat_client_id`, 10 characters), a streaming widget's `chat_id` (1 to 100000)
and, for the latter, the Content-Length its number of digits changes.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "clients"))

import floor
import ours

from chatgpt4o.testing import EmulatorThread, SiteEmulator

REPLY = ("The quick brown fox jumps over the lazy dog. " * 18)[:800]
CALLS = 2


def _mask_body(body: bytes) -> bytes:
    body = re.sub(rb"wpaicg_chat_client_id=[0-9A-Za-z]{10}", b"wpaicg_chat_client_id=*", body)
    return re.sub(rb"chat_id=\d{1,6}", b"chat_id=*", body)


def _headers(record: object, streamed: bool) -> list[tuple[str, str]]:
    return [
        (name, "*" if streamed and name.lower() == "content-length" else value)
        for name, value in record.headers.items()  # type: ignore[attr-defined]
    ]


def _record(module: object, emulator: SiteEmulator, ca: str | None, streamed: bool) -> list:
    emulator.requests.clear()

    async def calls() -> None:
        client = module.setup(emulator.url, ca)  # type: ignore[attr-defined]
        if client.start is not None:
            await client.start()
        for _ in range(CALLS):
            if streamed:
                reply = "".join([piece async for piece in client.stream()])
            else:
                reply = await client.call()
            assert reply == REPLY, reply[:80]
        if client.aclose is not None:
            await client.aclose()

    asyncio.run(calls())
    return list(emulator.requests)


def compare(*, https: bool, streamed: bool, tls: tuple[str, str, str] | None) -> list[str]:
    kwargs: dict[str, object] = {"reply": REPLY, "stream": streamed}
    ca = None
    if https:
        assert tls is not None
        ca, cert, key = tls
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        kwargs["ssl_context"] = context
    problems: list[str] = []
    with EmulatorThread(**kwargs) as emulator:  # (entering gives the SiteEmulator)
        mine = _record(ours, emulator, ca, streamed)
        theirs = _record(floor, emulator, ca, streamed)
    where = f"{'HTTPS' if https else 'HTTP'}, {'streaming' if streamed else 'plain'} site"
    if [(r.method, r.path) for r in mine] != [(r.method, r.path) for r in theirs]:
        problems.append(f"{where}: different requests: {mine} / {theirs}")
        return problems
    for index, (a, b) in enumerate(zip(mine, theirs, strict=True)):
        label = f"{where}, request {index + 1} ({a.method} {a.path})"
        if _mask_body(a.raw_body) != _mask_body(b.raw_body):
            problems.append(
                f"{label}: bodies differ:\n  ours  {a.raw_body!r}\n  floor {b.raw_body!r}"
            )
        if _headers(a, streamed) != _headers(b, streamed):
            problems.append(
                f"{label}: headers differ:\n  ours  {_headers(a, streamed)}\n"
                f"  floor {_headers(b, streamed)}"
            )
    print(f"{where}: {len(mine)} requests compared, {'same' if not problems else 'DIFFERENT'}")
    return problems


def main() -> int:
    import trustme

    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1")
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        ca, cert, key = (str(Path(folder) / name) for name in ("ca.pem", "cert.pem", "key.pem"))
        authority.cert_pem.write_to_path(ca)
        issued.cert_chain_pems[0].write_to_path(cert)
        issued.private_key_pem.write_to_path(key)
        for https in (False, True):
            for streamed in (False, True):
                problems += compare(https=https, streamed=streamed, tls=(ca, cert, key))
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
