"""A long compose wait survives a composer that drops or refuses a few status polls.

A compose runs for tens of minutes; in that time osbuild-composer restarts, or the proxy in front of a
remote composer answers 503. The status polls and the download are GETs and are asked again under the
one retry policy (edgebuild/retry.py); the POST that starts a compose is never repeated. Faults are
injected by the composer stand-in (tests/composer_standin.py, `status_faults`), which answers the next
polls with 503 / 429 or closes the connection unanswered. The waiter's sleep is injected: no test waits.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebuild.compose import Token, compose_cloud, compose_weldr
from edgebuild.compose.errors import ComposerBusyError, ComposerDroppedError
from edgebuild.compose.transport import Waiter
from edgebuild.retry import RetryPolicy
from tests.composer_standin import StandIn

REF = "rhel/9/x86_64/edge"


def no_sleep_waiter(slept: list[float] | None = None, attempts: int = 8) -> Waiter:
    record = slept.append if slept is not None else (lambda _s: None)
    return Waiter(interval=0, timeout=None, sleep=record, retry=RetryPolicy(attempts=attempts, base_delay=1.0,
                                                                            max_delay=30.0))


def test_weldr_wait_rides_out_a_restarting_composer(standin: StandIn, blueprint: Path, tmp_path: Path) -> None:
    standin.scenario(status_faults=["drop", "503", "drop"])
    seen = []
    slept: list[float] = []
    result = compose_weldr(blueprint, "edge-commit", socket=standin.weldr_socket, download_dir=tmp_path / "out",
                           progress=seen.append, waiter=no_sleep_waiter(slept))
    assert result.state == "FINISHED" and result.artifact and result.artifact.is_file()
    retried = [p.message for p in seen if "asking again" in p.message]
    assert len(retried) == 3, seen
    assert "did not answer" in retried[0] and "HTTP 503" in retried[1]
    assert len([s for s in slept if s > 0]) == 3, "three back-offs, one per failed poll"
    assert sum(1 for r in standin.requests("weldr") if r["method"] == "POST"
               and r["path"] == "/api/v1/compose") == 1, "the compose is started once"


def test_cloud_wait_retries_503_and_429_through_a_proxy_like_answer(standin: StandIn, blueprint: Path,
                                                                     tmp_path: Path) -> None:
    standin.scenario(status_faults=["503", "429", "drop"])
    seen = []
    result = compose_cloud(blueprint, "edge-commit", ref=REF, endpoint=standin.cloud_url,
                           token=Token.from_file(standin.token_file), ca_cert=standin.ca_cert,
                           download_dir=tmp_path / "out", progress=seen.append, waiter=no_sleep_waiter())
    assert result.state == "success" and result.artifact and result.artifact.is_file()
    assert sum("asking again" in p.message for p in seen) == 3
    posts = [r for r in standin.requests("cloud") if r["method"] == "POST"]
    assert len(posts) == 1, "POST /compose is never repeated"


def test_a_composer_that_stays_away_ends_the_wait_with_the_last_error(standin: StandIn, blueprint: Path) -> None:
    standin.scenario(status_faults=["drop"] * 10)
    slept: list[float] = []
    with pytest.raises(ComposerDroppedError) as caught:
        compose_weldr(blueprint, "edge-commit", socket=standin.weldr_socket, wait=True,
                      waiter=no_sleep_waiter(slept, attempts=4))
    text = str(caught.value)
    assert "did not answer GET /api/v1/compose/status/" in text
    assert "systemctl status osbuild-composer.socket" in text
    assert len([s for s in slept if s > 0]) == 3, "attempts=4: three back-offs, then the error"


def test_a_composer_that_stays_busy_ends_the_wait_with_its_answer(standin: StandIn, blueprint: Path) -> None:
    standin.scenario(status_faults=["503"] * 10)
    slept: list[float] = []
    with pytest.raises(ComposerBusyError) as caught:
        compose_cloud(blueprint, "edge-commit", ref=REF, endpoint=standin.cloud_url,
                      token=Token.from_file(standin.token_file), ca_cert=standin.ca_cert, wait=True,
                      waiter=no_sleep_waiter(slept, attempts=2))
    assert caught.value.status_code == 503 and "HTTP 503" in str(caught.value)
    assert len([s for s in slept if s > 0]) == 1


def test_a_4xx_status_answer_is_not_retried(standin: StandIn, blueprint: Path) -> None:
    """A 4xx will not change by asking again; it ends the wait on the first answer."""
    standin.scenario(status_faults=["404"])
    slept: list[float] = []
    with pytest.raises(Exception) as caught:
        compose_weldr(blueprint, "edge-commit", socket=standin.weldr_socket, wait=True,
                      waiter=no_sleep_waiter(slept))
    assert not isinstance(caught.value, (ComposerBusyError, ComposerDroppedError))
    assert "HTTP 404" in str(caught.value)
    assert not [s for s in slept if s > 0], "no back-off for an answer that will not change"


def test_the_default_wait_gives_a_composer_75_to_150_seconds_to_come_back():
    """What README promises: nine back-offs of 1, 2, 4, 8, 16, then 30 s at most, each jittered."""
    from edgebuild.compose.transport import POLL_RETRY
    slept: list[float] = []
    waiter = Waiter(interval=0, timeout=None, sleep=slept.append, retry=POLL_RETRY)

    def down() -> None:
        raise ComposerDroppedError("osbuild-composer did not answer GET /status: connection refused")
    with pytest.raises(ComposerDroppedError):
        waiter.ask(down)
    assert len(slept) == 9 and waiter.retries == 9
    assert 75 <= sum(slept) <= 151
