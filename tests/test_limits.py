"""Rate limits: a participant over its rate, and a guesser of tokens, are told to wait."""

from __future__ import annotations

import pytest

from eucp.api.limits import RateLimiter
from tests.conftest import COORDINATOR, FASTBOOK
from tests.http_steps import Api
from tests.test_api import api  # noqa: F401  (the fixture)


def test_a_burst_is_allowed_then_the_rate_holds() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.take("p", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("p", now=0.0) == pytest.approx(0.5)  # one token every half second
    assert limiter.take("p", now=0.5) == 0.0
    assert limiter.take("other", now=0.5) == 0.0  # each key has its own bucket


def test_the_limiter_forgets_the_least_recent_keys_first() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_keys=2)
    for key in ("a", "b", "c"):
        limiter.take(key, now=0.0)
    assert limiter.take("a", now=0.0) == 0.0  # "a" was forgotten: a fresh bucket
    assert limiter.take("c", now=0.0) > 0  # "c" is remembered and spent


async def test_guessing_tokens_is_slowed_down_and_never_logged(
    api: Api,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    guess = "eucp_" + "A" * 43
    async with api.anonymous() as guesser:
        statuses = [
            (await guesser.get("/v1/incidents", headers={"Authorization": f"Bearer {guess}"}))
            for _ in range(12)
        ]
    assert [r.status_code for r in statuses[:10]] == [401] * 10
    assert statuses[-1].status_code == 429
    assert int(statuses[-1].headers["Retry-After"]) >= 1
    logged = caplog.text + capsys.readouterr().out
    assert "authentication failed" in logged
    assert guess not in logged
    # a participant with a valid token is not held up by the guesser
    assert (await api.as_(COORDINATOR.id).get("/v1/incidents")).status_code == 200
    assert (await api.as_(FASTBOOK.id).get("/v1/incidents")).status_code == 200
