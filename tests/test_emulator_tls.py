"""The emulator over HTTPS: a throwaway CA (trustme), and the client told to trust it."""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
from pathlib import Path

import pytest

from chatgpt4o import Chatgpt4o, ProviderConnectionError
from chatgpt4o.testing import EmulatorThread, SiteEmulator

from .conftest import USER_HELLO
from .emulator_process import emulator_process

trustme = pytest.importorskip("trustme")

@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


async def test_provider_trusting_the_ca_talks_to_the_https_emulator(
    server_context: ssl.SSLContext, ca_file: str
) -> None:
    async with SiteEmulator(ssl_context=server_context, reply="over TLS") as site:
        assert re.fullmatch(r"https://127\.0\.0\.1:\d+", site.url)
        secure = Chatgpt4o.for_site(site.url, verify=ca_file)
        secure.reset_cache()
        for _ in range(3):
            assert await secure.create_async("", USER_HELLO) == "over TLS"
        assert (site.page_loads, site.posts) == (1, 3)
        assert site.requests[0].form == {}  # the page GET
        assert site.requests[1].form["url"] == site.url


async def test_streaming_over_tls(server_context: ssl.SSLContext, ca_file: str) -> None:
    async with SiteEmulator(
        ssl_context=server_context, reply="abcdefgh", stream=True, stream_chunks=4
    ) as site:
        secure = Chatgpt4o.for_site(site.url, verify=ca_file)
        pieces = [piece async for piece in secure.create_async_generator("", USER_HELLO)]
        assert pieces == ["ab", "cd", "ef", "gh"]


async def test_an_untrusted_certificate_is_refused(server_context: ssl.SSLContext) -> None:
    async with SiteEmulator(ssl_context=server_context) as site:
        # verify = True: the system's CAs, which never saw this CA
        trusting = Chatgpt4o.for_site(site.url)
        trusting.reset_cache()
        with pytest.raises(ProviderConnectionError):
            await trusting.create_async("", USER_HELLO, max_retries=0)
        assert site.posts == 0


def test_emulator_thread_serves_https(server_context: ssl.SSLContext, ca_file: str) -> None:
    with EmulatorThread(ssl_context=server_context, reply="threaded") as site:
        secure = Chatgpt4o.for_site(site.url, verify=ca_file)
        assert site.url.startswith("https://")
        assert "".join(secure.create_completion("", USER_HELLO)) == "threaded"


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_command_line_certfile_keyfile_and_stats(
    ca: trustme.CA, ca_file: str, tmp_path: Path
) -> None:
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "server.pem", tmp_path / "server.key"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(certfile), append=True)
    cert.private_key_pem.write_to_path(str(keyfile))
    tls = ["--certfile", str(certfile), "--keyfile", str(keyfile)]
    with emulator_process("--reply", "cli tls", *tls, "--stats") as (process, site_url):
        assert re.fullmatch(r"https://127\.0\.0\.1:\d+", site_url)
        secure = Chatgpt4o.for_site(site_url, verify=ca_file)
        secure.reset_cache()
        assert "".join(secure.create_completion("", USER_HELLO)) == "cli tls"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
        assert process.returncode == 0, err
        assert "Traceback" not in err
        assert json.loads(out.strip().splitlines()[-1]) == {
            "page_loads": 1,
            "posts": 1,
            "connections": 1,
        }


def test_command_line_keyfile_needs_certfile(tmp_path: Path) -> None:
    from chatgpt4o.testing import serve

    assert serve(["--keyfile", str(tmp_path / "server.key")]) == 2
