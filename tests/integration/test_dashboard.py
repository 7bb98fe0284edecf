"""The dashboard and the open-data feed, served by the real web app from real topics."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
import pytest

from schemas.base import Language, Scale, SurveyChannel
from schemas.contacts import TouchpointChannel
from schemas.history import HistoryCounts, Period
from schemas.responses import CommentReceived, Rating
from schemas.topics import COMMENTS, RATINGS, comment_key
from tests.integration.dashboard_harness import TOKEN, dashboard_env, metrics, now

if TYPE_CHECKING:
    from aiohttp import StreamReader


pytestmark = pytest.mark.integration

BEARER = {"Authorization": f"Bearer {TOKEN}"}


async def _next_event(stream: StreamReader) -> dict[str, Any]:
    """Read server-sent events until an ``update`` arrives; give its data."""
    name, data = "", b""
    async with asyncio.timeout(120):
        while True:
            line = (await stream.readline()).rstrip(b"\r\n")
            if line.startswith(b"event: "):
                name = line[7:].decode()
            elif line.startswith(b"data: "):
                data = line[6:]
            elif not line and name == "update":
                result: dict[str, Any] = orjson.loads(data)
                return result


def _rating(number: int, touchpoint: str, score: int) -> Rating:
    return Rating(
        rating_id=f"r-{touchpoint}-{number}",
        survey_id=f"s-{touchpoint}-{number}",
        touchpoint_id=touchpoint,
        service="service",
        touchpoint_channel=TouchpointChannel.PHONE,
        survey_channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=Scale.CSAT_5,
        score=score,
        normalised=(score - 1) / 4,
        answered_after_seconds=60.0,
        answered_at=now() - timedelta(days=2),
    )


async def test_the_dashboard_refuses_requests_without_an_operator_credential(
    kafka_bootstrap: str,
) -> None:
    """Scores and comments are for the operations team, not for anyone who finds the URL."""
    async with dashboard_env(kafka_bootstrap) as env:
        await env.start()
        async with aiohttp.ClientSession() as http:
            for path in ("/dashboard", "/dashboard/events", "/dashboard/api/overview"):
                for headers in ({}, {"Authorization": "Bearer wrong-token"}):
                    async with http.get(env.url(path), headers=headers) as response:
                        assert response.status == 401, path
                        assert response.headers["WWW-Authenticate"].startswith("Basic ")
            basic = base64.b64encode(f"ops:{TOKEN}".encode()).decode()
            async with http.get(
                env.url("/dashboard"), headers={"Authorization": f"Basic {basic}"}
            ) as response:
                assert response.status == 200
                assert "script-src 'self'" in response.headers["Content-Security-Policy"]


async def test_the_overview_lists_every_touchpoint_with_the_figures_of_the_metrics_topic(
    kafka_bootstrap: str,
) -> None:
    """Operators act on these numbers; they must be the metrics stage's, unchanged."""
    async with dashboard_env(kafka_bootstrap) as env:
        produced = [
            metrics("phone-service", "24h", {5: 6, 4: 3, 2: 1}, sent=20, as_of=now()),
            metrics("phone-service", "7d", {5: 30, 4: 12, 1: 4}, sent=90, as_of=now()),
            metrics("library-desk", "24h", {3: 2, 4: 2}, sent=8, as_of=now()),
        ]
        for figures in produced:
            await env.publish_metrics(figures)
        await env.start()
        async with (
            aiohttp.ClientSession() as http,
            http.get(env.url("/dashboard/api/overview"), headers=BEARER) as response,
        ):
            assert response.status == 200
            overview = await response.json()
        windows = {
            (line["touchpoint_id"], window): figures
            for line in overview["touchpoints"]
            for window, figures in line["windows"].items()
        }
        assert windows == {
            (figures.key, figures.window): figures.model_dump(mode="json") for figures in produced
        }
        async with (
            aiohttp.ClientSession() as http,
            http.get(env.url("/dashboard?lang=en"), headers=BEARER) as response,
        ):
            page = await response.text()
        assert '<html lang="en">' in page
        assert 'data-touchpoint="phone-service"' in page
        assert 'data-touchpoint="library-desk"' in page
        assert "4.20" in page  # the catalogue's KPI target
        assert ">4.40<" in page  # phone-service 24h mean, (30 + 12 + 2) / 10
        finnish = {**BEARER, "Accept-Language": "fi-FI,fi;q=0.9,en;q=0.5"}
        async with (
            aiohttp.ClientSession() as http,
            http.get(env.url("/dashboard"), headers=finnish) as response,
        ):
            page = await response.text()
        assert '<html lang="fi">' in page
        assert ">4,40<" in page
        assert "Kosketuspisteet" in page


def _this_hour(touchpoint: str, scores: dict[str, int], *, sent: int) -> HistoryCounts:
    """Give a touchpoint's counts of the current UTC hour, as the history stage writes them."""
    return HistoryCounts(
        touchpoint_id=touchpoint,
        dimension="all",
        value="all",
        scale=Scale.CSAT_5,
        period=Period.HOUR,
        start=now().strftime("%Y-%m-%dT%H"),
        scores=scores,
        sent=sent,
    )


def _answers(live: str) -> int:
    """Read the answer count of the current period from the console's figures table."""
    row = live.split('<tr data-period="current">', 1)[1].split("</tr>", 1)[0]
    return int(re.findall(r"<td>(.*?)</td>", row)[2])


async def test_server_sent_events_deliver_new_figures_and_comments_as_they_arrive(
    kafka_bootstrap: str,
) -> None:
    """A dashboard left open on a wall must show a new figure without anyone reloading.

    A comment tombstoned on the comments topic (the citizen asked to be
    forgotten) leaves the open dashboard too.
    """
    async with dashboard_env(kafka_bootstrap) as env:
        await env.publish_metrics(metrics("web-booking", "24h", {5: 4}, sent=5, as_of=now()))
        await env.publish_history(_this_hour("web-booking", {"5": 4}, sent=5))
        await env.publish(RATINGS, "web-booking", _rating(1, "web-booking", 5))
        await env.start()
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                env.url("/dashboard/events?lang=en&touchpoint=web-booking"), headers=BEARER
            ) as response,
        ):
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/event-stream")
            first = await _next_event(response.content)
            assert _answers(first["live"]) == 4
            await env.publish_metrics(
                metrics("web-booking", "24h", {5: 4, 1: 3}, sent=9, as_of=now())
            )
            await env.publish_history(_this_hour("web-booking", {"5": 4, "1": 3}, sent=9))
            await env.publish(
                COMMENTS,
                comment_key("s-web-booking-1", "a-1"),
                CommentReceived(
                    answer_id="a-1",
                    survey_id="s-web-booking-1",
                    text="Jonotin liian kauan [puhelinnumero]",
                    received_at=now(),
                ),
            )
            seen = first
            async with asyncio.timeout(120):
                while _answers(seen["live"]) != 7 or "Jonotin liian kauan" not in seen["live"]:
                    seen = await _next_event(response.content)
            assert seen["version"] > first["version"]
            tombstone = await env.producer.send(
                env.topic(COMMENTS), value=None, key=comment_key("s-web-booking-1", "a-1").encode()
            )
            await tombstone
            async with asyncio.timeout(120):
                while "Jonotin liian kauan" in seen["live"]:
                    seen = await _next_event(response.content)
            assert _answers(seen["live"]) == 7


async def test_the_open_feed_publishes_scores_and_suppresses_small_touchpoints(
    kafka_bootstrap: str,
) -> None:
    """Public figures must never let someone single out one citizen's answer."""
    async with dashboard_env(kafka_bootstrap, min_answers=10) as env:
        for number in range(12):
            await env.publish(RATINGS, "phone-service", _rating(number, "phone-service", 4))
        for number in range(3):
            await env.publish(RATINGS, "library-desk", _rating(number, "library-desk", 5))
        await env.start()
        async with aiohttp.ClientSession() as http:
            async with http.get(env.url("/open/v1/scores.json")) as response:
                assert response.status == 200
                assert response.headers["Access-Control-Allow-Origin"] == "*"
                assert "max-age" in response.headers["Cache-Control"]
                feed = await response.json()
            async with http.get(env.url("/open/v1/scores.csv")) as response:
                rows = list(csv.DictReader(io.StringIO(await response.text())))
            async with http.get(env.url("/open/v1/embed.html?lang=en")) as response:
                embed = await response.text()
                assert "frame-ancestors *" in response.headers["Content-Security-Policy"]
        lines = {line["touchpoint_id"]: line for line in feed["touchpoints"]}
        assert feed["version"] == "1.0"
        assert set(lines) == {
            "phone-service",
            "health-centre",
            "library-desk",
            "social-office",
            "web-booking",
        }
        assert (lines["phone-service"]["count"], lines["phone-service"]["mean"]) == (12, 4.0)
        assert lines["phone-service"]["suppressed"] is False
        assert lines["library-desk"]["suppressed"] is True
        assert lines["library-desk"]["count"] is None
        by_id = {row["touchpoint_id"]: row for row in rows}
        assert by_id["phone-service"]["count"] == "12"
        assert by_id["library-desk"]["mean"] == ""
        assert "Puhelinpalvelu" in embed
