"""The webhook receiver that docs/platforms.md gives platforms to copy, run exactly as printed:
it accepts what eucp signs, and refuses a delivery signed outside the replay window, an
altered one, and acts on a repeated delivery id only once. (The reference receiver,
`eucp simulate-platform`, is held to the same in tests/test_simulator.py.)"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from eucp.runtime.signing import sign

DOC = Path(__file__).parent.parent / "docs" / "platforms.md"
SECRET = "shared-secret-of-fastbook"
Handle = Callable[[str, dict[str, str], bytes], int]


def documented_receiver() -> str:
    """The Python block of the guide's "Verifying a webhook" section."""
    section = DOC.read_text().split("## Verifying a webhook", 1)[1].split("\n## ", 1)[0]
    [code] = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    return code


@pytest.fixture
def receiver() -> tuple[Handle, list[dict[str, Any]]]:
    """The guide's `handle`, with `enqueue` recording what it would act on."""
    acted: list[dict[str, Any]] = []
    namespace: dict[str, Any] = {"enqueue": acted.append}
    exec(compile(documented_receiver(), str(DOC), "exec"), namespace)
    return namespace["handle"], acted


def delivery(delivery_id: str, at: int) -> tuple[dict[str, str], bytes]:
    """A notification as eucp sends it at unix time `at`."""
    body = (
        f'{{"delivery_id":"{delivery_id}","kind":"task_assigned","incident_id":"inc-1"}}'.encode()
    )
    headers = {
        "X-EUCP-Delivery": delivery_id,
        "X-EUCP-Timestamp": str(at),
        "X-EUCP-Signature": sign(SECRET, at, body),
    }
    return headers, body


def test_a_fresh_delivery_is_accepted(receiver: tuple[Handle, list[dict[str, Any]]]) -> None:
    handle, acted = receiver
    assert handle(SECRET, *delivery("d-1", int(time.time()))) == 200
    assert [n["delivery_id"] for n in acted] == ["d-1"]


@pytest.mark.parametrize("offset", [-301, -3600, 301], ids=["5min-1s-old", "1h-old", "future"])
def test_a_delivery_signed_outside_the_window_is_refused(
    receiver: tuple[Handle, list[dict[str, Any]]], offset: int
) -> None:
    handle, acted = receiver
    headers, body = delivery("d-old", int(time.time()) + offset)  # genuinely signed, but then
    assert handle(SECRET, headers, body) == 401
    assert acted == []


def test_a_repeated_delivery_id_is_acted_on_once(
    receiver: tuple[Handle, list[dict[str, Any]]],
) -> None:
    handle, acted = receiver
    now = int(time.time())
    first = delivery("d-2", now - 10)
    assert handle(SECRET, *first) == 200
    assert handle(SECRET, *first) == 200  # a captured delivery replayed within the window
    assert handle(SECRET, *delivery("d-2", now)) == 200  # eucp's retry: new signature, same id
    assert [n["delivery_id"] for n in acted] == ["d-2"]


def test_an_altered_or_foreign_delivery_is_refused(
    receiver: tuple[Handle, list[dict[str, Any]]],
) -> None:
    handle, acted = receiver
    headers, body = delivery("d-3", int(time.time()))
    assert handle(SECRET, headers, body.replace(b"inc-1", b"inc-2")) == 401
    assert handle("another-platforms-secret", headers, body) == 401
    retimed = {**headers, "X-EUCP-Timestamp": str(int(headers["X-EUCP-Timestamp"]) + 1)}
    assert handle(SECRET, retimed, body) == 401  # the timestamp is signed too
    assert handle(SECRET, {**headers, "X-EUCP-Timestamp": "1e9"}, body) == 401
    assert acted == []
