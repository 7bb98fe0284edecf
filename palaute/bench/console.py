"""``palaute bench console``: the operations console at the size of a wellbeing county.

The web process's board is filled as if it had read the topics of a large
organisation: ``touchpoints`` touchpoints, each with 13 months of daily
history and 15 days of hourly history in three groups (the whole and the
two answer channels), four rolling windows of figures, a few alerts and
comments. The dashboard is served by ``palaute web``'s own handlers on
127.0.0.1 (aiohttp, in this process), and

(a) the overview (``/dashboard``) and
(b) a touchpoint's console page, for random touchpoints and ranges, and
(c) its chart image, drawn (a touchpoint and range not drawn before) and
    cached (the same again)

are requested one after another, timing each from request to the last byte
(p50, p95, max). Then (d) ``streams`` browsers follow touchpoint pages over
server-sent events while history records arrive; each record's latency runs
from its being folded into the board to each stream's receipt of the
re-rendered page (p50, p95, max).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import resource
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from connectors.web import access, csrf, dashboard
from connectors.web.board import BOARD, Board, Comment
from schemas.alerts import AlertKind, AlertState, Evidence, ScoreDropAlert, Severity
from schemas.base import Scale
from schemas.config import Settings
from schemas.history import HistoryCounts, Period
from schemas.metrics import TouchpointMetrics

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

TOKEN = "bench-console-operator-token-0123456789"  # noqa: S105 - a local run's own token
ZONE = ZoneInfo("Europe/Helsinki")
GROUPS = (("all", "all"), ("channel", "sms"), ("channel", "email"))
RANGES = ("24h", "7d", "28d", "90d", "13m")
WINDOWS = ("1h", "24h", "7d", "28d")


@dataclass(frozen=True)
class Plan:
    """How large an organisation, and how many requests of each kind."""

    touchpoints: int = 500
    days: int = 396
    hours: int = 15 * 24
    requests: int = 200
    streams: int = 20
    updates: int = 50
    seed: int = 1


FULL = Plan()
QUICK = Plan(touchpoints=12, days=40, hours=48, requests=10, streams=2, updates=3)


@dataclass
class Timings:
    """Latencies of one kind of request, in milliseconds."""

    samples: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        """Give p50, p95 and max."""
        ordered = sorted(self.samples)
        if not ordered:
            return {"p50": 0.0, "p95": 0.0, "max": 0.0, "n": 0}
        return {
            "p50": ordered[len(ordered) // 2],
            "p95": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
            "max": ordered[-1],
            "n": len(ordered),
        }


def _scores(rng: random.Random, n: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for score in rng.choices(range(1, 6), weights=(3, 5, 10, 35, 47), k=n):
        counts[str(score)] = counts.get(str(score), 0) + 1
    return counts


def _bucket(
    touchpoint: str, group: tuple[str, str], period: Period, start: str, **values: Any
) -> HistoryCounts:
    # Built without validation: a million of them would take a minute to validate.
    return HistoryCounts.model_construct(
        touchpoint_id=touchpoint,
        dimension=group[0],
        value=group[1],
        scale=Scale.CSAT_5,
        period=period,
        start=start,
        **values,
    )


def build_board(plan: Plan, now: datetime) -> Board:
    """Fill a board as the web process would after reading a large organisation's topics."""
    rng = random.Random(plan.seed)  # noqa: S311 - reproducible load, not secrets
    board = Board()
    today = now.astimezone(ZONE).date()
    hour = now.replace(minute=0, second=0, microsecond=0)
    for number in range(plan.touchpoints):
        touchpoint = f"tp-{number:04d}"
        for back in range(plan.days):
            day = (today - timedelta(days=back)).isoformat()
            for group in GROUPS:
                n = rng.randint(0, 12)
                sent = rng.randint(n, n * 3 + 1) if group[0] == "all" else 0
                board.apply(
                    _bucket(touchpoint, group, Period.DAY, day, scores=_scores(rng, n), sent=sent)
                )
        for back in range(plan.hours):
            start = (hour - timedelta(hours=back)).strftime("%Y-%m-%dT%H")
            for group in GROUPS:
                n = rng.randint(0, 2)
                board.apply(
                    _bucket(touchpoint, group, Period.HOUR, start, scores=_scores(rng, n), sent=n)
                )
        for window in WINDOWS:
            board.apply(_figures(touchpoint, window, now, rng))
        board.comments[touchpoint] = deque(
            Comment(f"Kommentti {i}", now - timedelta(hours=i), f"s-{touchpoint}-{i}|a")
            for i in range(10)
        )
    for number in range(0, plan.touchpoints, max(1, plan.touchpoints // 10)):
        board.apply(_alert(f"tp-{number:04d}", now - timedelta(days=2)))
    return board


def _figures(touchpoint: str, window: str, now: datetime, rng: random.Random) -> TouchpointMetrics:
    scores = {int(s): n for s, n in _scores(rng, rng.randint(5, 200)).items()}
    count = sum(scores.values())
    mean = sum(s * n for s, n in scores.items()) / count
    return TouchpointMetrics(
        key=touchpoint,
        window=window,
        as_of=now,
        scale=Scale.CSAT_5,
        count=count,
        mean=mean,
        distribution={str(s): n for s, n in sorted(scores.items())},
        csat_share=sum(n for s, n in scores.items() if s >= 4) / count,  # noqa: PLR2004 - top two
        surveys_sent=count * 3,
        response_rate=1 / 3,
    )


def _alert(touchpoint: str, at: datetime) -> ScoreDropAlert:
    return ScoreDropAlert(
        alert_id=f"drop-{touchpoint}",
        touchpoint_id=touchpoint,
        kind=AlertKind.DROP,
        state=AlertState.FIRING,
        severity=Severity.WARNING,
        started_at=at,
        before=4.3,
        after=3.2,
        sample_size=40,
        evidence=Evidence(method="cusum", statistic=6.0, threshold=5.0, probability=0.003),
        summary=f"The mean of {touchpoint} fell from 4.3 to 3.2 over 40 answers.",
    )


def settings() -> Settings:
    """Give settings with one operator token and nothing else of note."""
    return Settings.model_validate(
        {
            "secrets": {"pseudonymisation_key": "b" * 40, "link_signing_key": "c" * 40},
            "web": {"ops_token_sha256": [hashlib.sha256(TOKEN.encode()).hexdigest()]},
        }
    )


async def _timed(session: aiohttp.ClientSession, url: str, into: Timings) -> None:
    started = time.perf_counter()
    async with session.get(url) as response:
        await response.read()
        if response.status != 200:  # noqa: PLR2004 - OK
            raise RuntimeError(f"{url}: HTTP {response.status}")
    into.samples.append((time.perf_counter() - started) * 1000)


async def measure(plan: Plan, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Fill the board, serve the dashboard, and time what the plan asks for."""
    now = datetime.now(UTC)
    started = time.perf_counter()
    board = build_board(plan, now)
    built = time.perf_counter() - started
    progress(f"board filled in {built:.1f} s")
    app = web.Application()
    app[BOARD] = board  # already filled: no Kafka follower is made
    configured = settings()
    csrf.setup(app, configured)
    access.setup(app, configured)
    dashboard.setup(app, configured)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    rng = random.Random(plan.seed + 1)  # noqa: S311 - reproducible load, not secrets
    timings = {
        name: Timings()
        for name in ("overview", "touchpoint", "chart_drawn", "chart_cached", "live")
    }
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with aiohttp.ClientSession(
            base_url=str(server.make_url("/")), headers=auth
        ) as session:
            await _timed(session, "/dashboard", Timings())  # warm up
            for _ in range(plan.requests):
                await _timed(session, "/dashboard?lang=fi", timings["overview"])
            progress("overview timed")
            drawn: list[str] = []
            for _ in range(plan.requests):
                touchpoint = f"tp-{rng.randrange(plan.touchpoints):04d}"
                chosen = rng.choice(RANGES)
                await _timed(
                    session,
                    f"/dashboard/touchpoints/{touchpoint}?range={chosen}",
                    timings["touchpoint"],
                )
                chart = f"/dashboard/touchpoints/{touchpoint}/chart.svg?range={chosen}&lang=fi"
                await _timed(session, chart, timings["chart_drawn"])
                drawn.append(chart)
            progress("touchpoint pages timed")
            for chart in drawn:
                await _timed(session, chart, timings["chart_cached"])
            await _live(session, board, plan, rng, timings["live"])
            progress("live updates timed")
    finally:
        await server.close()
    return {
        "plan": asdict(plan),
        "board_seconds": round(built, 1),
        "buckets": sum(
            len(series.days) + len(series.hours)
            for groups in board.history.series.values()
            for scales in groups.values()
            for series in scales.values()
        ),
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "ms": {name: timing.summary() for name, timing in timings.items()},
    }


async def _live(
    session: aiohttp.ClientSession, board: Board, plan: Plan, rng: random.Random, into: Timings
) -> None:
    """Follow touchpoint pages over server-sent events while history records arrive."""
    received: list[asyncio.Queue[float]] = [asyncio.Queue() for _ in range(plan.streams)]

    async def follow(number: int, ready: asyncio.Event) -> None:
        touchpoint = f"tp-{number % plan.touchpoints:04d}"
        async with session.get(f"/dashboard/events?touchpoint={touchpoint}&range=7d") as response:
            async for line in response.content:
                if line.startswith(b"event: update"):
                    if ready.is_set():
                        received[number].put_nowait(time.perf_counter())
                    ready.set()

    readies = [asyncio.Event() for _ in range(plan.streams)]
    tasks = [asyncio.create_task(follow(i, readies[i])) for i in range(plan.streams)]
    try:
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=120)
        hour = datetime.now(UTC).strftime("%Y-%m-%dT%H")
        for _ in range(plan.updates):
            touchpoint = f"tp-{rng.randrange(plan.touchpoints):04d}"
            board.apply(
                _bucket(touchpoint, GROUPS[0], Period.HOUR, hour, scores=_scores(rng, 3), sent=3)
            )
            applied = time.perf_counter()
            await board.notify()
            for queue in received:
                at = await asyncio.wait_for(queue.get(), timeout=60)
                into.samples.append((at - applied) * 1000)
            await asyncio.sleep(0.3)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def render(summary: dict[str, Any]) -> str:
    """Give the figures as the docs quote them."""
    plan = summary["plan"]
    lines = [
        (
            f"{plan['touchpoints']} touchpoints, {plan['days']} days and {plan['hours']} hours "
            f"of history in 3 groups: {summary['buckets']} buckets, board filled in "
            f"{summary['board_seconds']} s, max RSS {summary['max_rss_mib']} MiB"
        ),
        f"{'request':<22}{'n':>6}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}",
    ]
    names = {
        "overview": "overview",
        "touchpoint": "touchpoint page",
        "chart_drawn": "chart, drawn",
        "chart_cached": "chart, cached",
        "live": "live update",
    }
    for key, label in names.items():
        figures = summary["ms"][key]
        lines.append(
            f"{label:<22}{figures['n']:>6}{figures['p50']:>10.1f}{figures['p95']:>10.1f}"
            f"{figures['max']:>10.1f}"
        )
    return "\n".join(lines)


def write_json(summary: dict[str, Any], path: Path) -> None:
    """Keep the figures for later comparison."""
    import orjson  # noqa: PLC0415 - only here

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))


def run(plan: Plan, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the benchmark; give its summary."""
    return asyncio.run(measure(plan, progress))
