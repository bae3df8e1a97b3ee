"""Cookies off the command line: `CHATGPT4O_COOKIE` (a Cookie header's text) and
`--cookie-file` (Netscape cookies.txt), in `_options` for every command."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytest

from chatgpt4o._cli import main
from chatgpt4o._cookiefile import (
    CookieFileError,
    cookies_for,
    parse_cookie_file,
    parse_cookie_header,
)
from chatgpt4o._options import add_site_options, site_options
from chatgpt4o._terminal import Scrubber, UsageError
from chatgpt4o.testing import SiteEmulator
from chatgpt4o.testing._emulator import default_reply

from .test_cli import _env, emu, emulator_thread, one_error_line, run_cli

__all__ = ["emu", "emulator_thread"]  # the fixtures, shared with test_cli

FAR = int(time.time()) + 86400 * 365
PAST = int(time.time()) - 60


def cookie_file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "cookies.txt"
    path.write_text("# Netscape HTTP Cookie File\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def line(domain: str, sub: str, name: str, value: str, *, secure: str = "FALSE",
         expires: int = FAR) -> str:
    return "\t".join([domain, sub, "/", secure, str(expires), name, value])


# -- the file format ---------------------------------------------------------------------


def test_netscape_lines_comments_httponly_and_blank_lines(tmp_path: Path) -> None:
    path = cookie_file(
        tmp_path,
        "",
        "# a comment",
        line(".example.org", "TRUE", "cf_clearance", "clear-1"),
        "#HttpOnly_" + line("example.org", "FALSE", "sid", "s1"),
        line("other.net", "FALSE", "foreign", "f1"),
        line("example.org", "FALSE", "old", "o1", expires=PAST),
        line("example.org", "FALSE", "session", "x1", expires=0),
        line("example.org", "FALSE", "tls_only", "t1", secure="TRUE"),
    )
    cookies = parse_cookie_file(str(path))
    assert len(cookies) == 6
    assert "clear-1" not in repr(cookies)
    assert cookies_for(cookies, "https://example.org/chat/") == {
        "cf_clearance": "clear-1", "sid": "s1", "session": "x1", "tls_only": "t1",
    }
    # a secure cookie is not sent over http; an include-subdomains one reaches them
    assert cookies_for(cookies, "http://www.example.org/") == {"cf_clearance": "clear-1"}
    assert cookies_for(cookies, "https://notexample.org/") == {}
    assert cookies_for(cookies, "https://example.org.evil.net/") == {}


def test_a_cookie_for_the_host_only_does_not_reach_subdomains(tmp_path: Path) -> None:
    cookies = parse_cookie_file(str(cookie_file(tmp_path, line("example.org", "FALSE", "a", "1"))))
    assert cookies_for(cookies, "https://example.org") == {"a": "1"}
    assert cookies_for(cookies, "https://www.example.org") == {}


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        ("example.org\tTRUE\t/\tFALSE\t0\tname", "expected 7 tab-separated fields"),
        ("example.org TRUE / FALSE 0 name s3cret-value", "got 1"),
        ("example.org\tyes\t/\tFALSE\t0\tname\ts3cret-value", "include-subdomains"),
        ("example.org\tTRUE\t/\tFALSE\tsoon\tname\ts3cret-value", "expires"),
        ("\tTRUE\t/\tFALSE\t0\tname\ts3cret-value", "domain"),
        ("example.org\tTRUE\t/\tFALSE\t0\tname\ts3cret value", "characters a cookie cannot"),
    ],
)
def test_errors_name_the_file_and_line_never_the_value(
    tmp_path: Path, bad: str, said: str
) -> None:
    path = cookie_file(tmp_path, line("example.org", "TRUE", "ok", "1"), bad)
    with pytest.raises(CookieFileError) as caught:
        parse_cookie_file(str(path))
    message = str(caught.value)
    assert f"{path} line 3" in message
    assert said in message
    assert "s3cret" not in message


def test_an_unreadable_or_undecodable_file(tmp_path: Path) -> None:
    with pytest.raises(CookieFileError, match="cannot read"):
        parse_cookie_file(str(tmp_path / "missing.txt"))
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"# ok\nexample.org\tTRUE\t/\tFALSE\t0\tn\t\xe9t\xe9\n")
    with pytest.raises(CookieFileError, match="line 2: not UTF-8"):
        parse_cookie_file(str(path))


def test_the_cookie_header_text() -> None:
    assert parse_cookie_header("a=1; b=2;c = 3 ;", "ENV") == {"a": "1", "b": "2", "c": "3"}
    with pytest.raises(CookieFileError, match="ENV: item 2 is not NAME=VALUE"):
        parse_cookie_header("a=1; s3cret", "ENV")
    with pytest.raises(CookieFileError) as caught:
        parse_cookie_header('a="s3cret value"', "ENV")
    assert "s3cret" not in str(caught.value)


# -- the options: precedence and secrets ---------------------------------------------------


def options(argv: list[str], environ: dict[str, str], url: str = "https://example.org/") -> tuple[
    dict[str, str], Scrubber
]:
    parser = argparse.ArgumentParser()
    add_site_options(parser)
    scrub = Scrubber()
    args = parser.parse_args([*argv, "--url", url])
    return site_options(args, environ, scrub).cookies, scrub


def test_flags_win_over_the_file_and_the_file_over_the_environment(tmp_path: Path) -> None:
    path = cookie_file(
        tmp_path,
        line("example.org", "FALSE", "a", "from-file"),
        line("example.org", "FALSE", "b", "from-file"),
    )
    cookies, scrub = options(
        ["--cookie-file", str(path), "--cookie", "a=from-flag"],
        {"CHATGPT4O_COOKIE": "a=from-env; b=from-env; c=from-env"},
    )
    assert cookies == {"a": "from-flag", "b": "from-file", "c": "from-env"}
    for value in ("from-flag", "from-file", "from-env"):
        assert value not in scrub(f"said {value}")


def test_a_bad_environment_cookie_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="CHATGPT4O_COOKIE: item 1"):
        options([], {"CHATGPT4O_COOKIE": "s3cret"})


# -- through the command --------------------------------------------------------------------


def test_cookie_file_and_environment_reach_the_site(emu: SiteEmulator, tmp_path: Path) -> None:
    path = cookie_file(
        tmp_path,
        line("127.0.0.1", "FALSE", "cf_clearance", "clear-from-file"),
        line("example.org", "TRUE", "elsewhere", "not-sent"),
    )
    result = run_cli(
        "--url", emu.url, "--cookie-file", str(path), "hi",
        env=_env(CHATGPT4O_COOKIE="lang=ru; cf_clearance=overridden"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == default_reply("hi") + "\n"
    assert emu.requests[-1].cookies == {"lang": "ru", "cf_clearance": "clear-from-file"}


def test_cookie_file_with_local_matches_the_emulator(tmp_path: Path) -> None:
    path = cookie_file(tmp_path, line("127.0.0.1", "FALSE", "sid", "abc"))
    assert main(["--local", "--cookie-file", str(path), "hi"]) == 0


def test_a_bad_cookie_file_through_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = cookie_file(tmp_path, "example.org\tTRUE\t/\tFALSE\t0\tsid")
    assert main(["--local", "--cookie-file", str(path), "hi"]) == 2
    message = one_error_line(capsys.readouterr().err)
    assert message.startswith(f"chatgpt4o: error: --cookie-file: {path} line 2:")
