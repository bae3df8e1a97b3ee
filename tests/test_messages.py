"""Messages: g4f's format_prompt semantics and checks before any I/O."""

from __future__ import annotations

from typing import Any

import pytest

from chatgpt4o import format_prompt


def test_one_message_is_its_text() -> None:
    assert format_prompt([{"role": "user", "content": "Привет!"}]) == "Привет!"


def test_several_messages_become_role_lines_with_an_assistant_cue() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "How are you?"},
    ]
    assert format_prompt(messages) == (
        "System: Be brief.\nUser: Hi\nAssistant: Hello!\nUser: How are you?\nAssistant:"
    )
    assert format_prompt(messages, do_continue=True).endswith("User: How are you?")
    assert "System:" not in format_prompt(messages, include_system=False)


def test_special_tokens_format_even_one_message() -> None:
    assert format_prompt([{"role": "user", "content": "Hi"}], add_special_tokens=True) == (
        "User: Hi\nAssistant:"
    )


def test_text_parts_are_joined() -> None:
    content = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert format_prompt([{"role": "user", "content": content}]) == "ab"


def test_developer_is_a_system_role() -> None:
    messages = [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert format_prompt(messages) == "Developer: Be brief.\nUser: Hi\nAssistant:"
    assert format_prompt(messages, include_system=False) == "User: Hi\nAssistant:"


@pytest.mark.parametrize(
    ("messages", "error", "match"),
    [
        ([], ValueError, "empty"),
        ("hello", TypeError, "must be a list"),
        ({"role": "user", "content": "x"}, TypeError, "must be a list"),
        (None, TypeError, "must be a list"),
        (["hello"], TypeError, r"messages\[0\] must be a dict"),
        ([{"content": "x"}], ValueError, r"messages\[0\] has no role"),
        ([{"role": "user"}], ValueError, r"messages\[0\] has no content"),
        (
            [{"role": "user", "content": "a"}, {"role": "wizard", "content": "x"}],
            ValueError,
            r"messages\[1\]: unknown role 'wizard'",
        ),
        ([{"role": 1, "content": "x"}], TypeError, "role must be a str"),
        ([{"role": {"x": 1}, "content": "x"}], TypeError, "role must be a str"),
        ([{"role": "user", "content": 42}], TypeError, r"messages\[0\]: content must be a str"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            TypeError,
            "only sends text",
        ),
        ([{"role": "user", "content": [b"raw"]}], TypeError, "content part 0"),
    ],
)
def test_bad_messages_name_the_bad_item(messages: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        format_prompt(messages)
