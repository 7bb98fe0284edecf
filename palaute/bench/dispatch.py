"""``palaute bench dispatch``: whether the dispatcher holds its rate limit, at the simulator.

One broker, one Twilio simulator (in this process, stamping the arrival of
every message-creation request), two senders:

(a) the baseline: the simulator's raw rate without a limit, the real
    :class:`~connectors.sms.TwilioSmsGateway` sending one message after the
    other as fast as it can (as the dispatcher sends);
(b) ``palaute worker`` with ``[dispatch] sms_per_second`` set to the limit,
    and ``messages`` SMS surveys all falling due at the same instant (written
    to the surveys and vault topics as the intake writes them).

For each: the achieved rate (requests from first to last arrival) and the
largest number of requests that arrived within any one second. The limit
holds when no one-second window has more requests than the limit.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from aiohttp import web

from connectors.twilio_sim import SimulatorConfig, TwilioSimulator
from palaute.bench.intake import broker, write_json
from palaute.bench.scheduler import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    SENDER,
    SurveyReader,
    WorkerProcess,
    create_run_topics,
    phone_number,
    produce_keyed,
    survey_records,
    worker_config,
)
from schemas.topics import SURVEYS, VAULT

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

WINDOW_S = 1.0


@dataclass(frozen=True, slots=True)
class Plan:
    """How big a run is."""

    messages: int = 1_000
    baseline_messages: int = 1_000
    limit_per_second: float = 100.0
    burst: int = 20
    #: How long after they are written the surveys fall due (time for the worker to read them).
    lead_s: float = 30.0
    deadline_s: float = 900.0


FULL = Plan()
QUICK = Plan(messages=60, baseline_messages=50, lead_s=8.0, deadline_s=240.0)


class StampingSimulator(TwilioSimulator):
    """The simulator, noting the monotonic time each message-creation request arrives."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        super().__init__(config)
        self.creations: list[float] = []

    def build_app(self) -> web.Application:
        """Build the simulator's app with a first middleware that stamps arrivals."""
        app = super().build_app()

        @web.middleware
        async def stamp(
            request: web.Request,
            handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        ) -> web.StreamResponse:
            if request.method == "POST" and request.path.endswith("/Messages.json"):
                self.creations.append(time.monotonic())
            return await handler(request)

        app.middlewares.insert(0, stamp)
        return app


def largest_window(stamps: list[float], window_s: float = WINDOW_S) -> int:
    """Give the most stamps within any half-open window ``[t, t + window_s)``."""
    ordered = sorted(stamps)
    most = start = 0
    for end, stamp in enumerate(ordered):
        while stamp - ordered[start] >= window_s:
            start += 1
        most = max(most, end - start + 1)
    return most


@dataclass(frozen=True, slots=True)
class Sending:
    """Requests that reached the simulator: how many, how fast, the busiest second."""

    requests: int
    seconds: float
    largest_window: int

    @property
    def per_second(self) -> float:
        """Requests per second, first arrival to last."""
        return (self.requests - 1) / self.seconds if self.seconds > 0 else 0.0


def sending(stamps: list[float]) -> Sending:
    """Summarise arrival stamps."""
    if not stamps:
        return Sending(0, 0.0, 0)
    return Sending(len(stamps), max(stamps) - min(stamps), largest_window(stamps))


async def raw_rate(simulator: StampingSimulator, messages: int) -> Sending:
    """Send ``messages`` SMS one after the other through the real gateway, with no limit."""
    from connectors.sms import TwilioSmsGateway  # noqa: PLC0415 - quick start

    gateway = TwilioSmsGateway(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        from_=SENDER,
        messaging_service_sid=None,
        base_url=simulator.url,
    )
    first = len(simulator.creations)
    try:
        for number in range(messages):
            await gateway.send(phone_number(number), "Miten onnistuimme? Vastaa 1-5.", None)
    finally:
        await gateway.aclose()
    return sending(simulator.creations[first:])


def _say(progress: TextIO | None, message: str) -> None:
    if progress is not None:
        print(f"{time.strftime('%H:%M:%S')} {message}", file=progress, flush=True)


async def _run(plan: Plan, servers: str, scratch: Path, progress: TextIO | None) -> dict[str, Any]:
    simulator = StampingSimulator(
        SimulatorConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, callback_delay=0.0)
    )
    await simulator.start()
    try:
        baseline = await raw_rate(simulator, plan.baseline_messages)
        _say(
            progress,
            f"(a) raw: {baseline.per_second:,.0f}/s, busiest second {baseline.largest_window}",
        )
        await simulator.settle()
        run_id = uuid.uuid4().hex[:12]
        suffix = f"-bench-{run_id}"
        create_run_topics(servers, suffix)
        config = worker_config(
            scratch,
            servers,
            suffix,
            sim_url=simulator.url,
            dispatch=f"sms_per_second = {plan.limit_per_second}\nburst = {plan.burst}",
        )
        worker = WorkerProcess(config, scratch / "worker.log", loglevel="warning")
        reader = SurveyReader(servers, SURVEYS + suffix)
        await reader.start()
        first = len(simulator.creations)
        worker.start()
        try:
            now = datetime.now(UTC)
            due = now + timedelta(seconds=plan.lead_s)
            surveys = [survey_records(run_id, number, due, now) for number in range(plan.messages)]
            await produce_keyed(servers, SURVEYS + suffix, (s for s, _ in surveys))
            await produce_keyed(servers, VAULT + suffix, (d for _, d in surveys))
            _say(progress, f"(b) {plan.messages:,} surveys written, due in {plan.lead_s:.0f} s")
            ids = {f"{run_id}-survey-{number}" for number in range(plan.messages)}
            limit = time.monotonic() + plan.lead_s + plan.deadline_s
            while not ids <= (set(reader.seen.sent) | set(reader.seen.failed)):
                worker.check()
                if time.monotonic() > limit:
                    missing = len(ids - set(reader.seen.sent) - set(reader.seen.failed))
                    raise TimeoutError(f"{missing} surveys not sent in time:\n{worker.tail()}")
                await reader.poll()
        finally:
            worker.stop()
            await reader.stop()
        limited = sending(simulator.creations[first:])
        seen = reader.seen
        _say(
            progress,
            f"(b) worker: {limited.per_second:,.1f}/s, busiest second {limited.largest_window}",
        )
        return summarise(
            plan,
            baseline=baseline,
            limited=limited,
            sent=len(ids & set(seen.sent)),
            failed=len(ids & set(seen.failed)),
            bootstrap=servers,
        )
    finally:
        await simulator.stop()


def run(
    plan: Plan, bootstrap: str | None = None, progress: TextIO | None = sys.stderr
) -> dict[str, Any]:
    """Measure (a) and (b) on one broker and return the figures."""
    with (
        broker(bootstrap, progress) as servers,
        tempfile.TemporaryDirectory(prefix="palaute-bench-dispatch-") as scratch,
    ):
        return asyncio.run(_run(plan, servers, Path(scratch), progress))


def summarise(
    plan: Plan,
    *,
    baseline: Sending,
    limited: Sending,
    sent: int,
    failed: int,
    bootstrap: str,
) -> dict[str, Any]:
    """Gather the figures into one JSON-ready dict."""

    def row(name: str, figures: Sending, limit: float | None) -> dict[str, Any]:
        return {
            "sender": name,
            "limit_per_second": limit,
            "requests": figures.requests,
            "seconds": round(figures.seconds, 3),
            "per_second": round(figures.per_second, 1),
            "largest_1s_window": figures.largest_window,
        }

    return {
        "plan": asdict(plan),
        "bootstrap": bootstrap,
        "rows": [
            row("(a) simulator, raw, no limit", baseline, None),
            row("(b) palaute worker, rate-limited", limited, plan.limit_per_second),
        ],
        "surveys_sent": sent,
        "surveys_failed": failed,
        "limit_held": limited.largest_window <= plan.limit_per_second,
    }


def render(summary: dict[str, Any]) -> str:
    """Format the figures as the table docs/performance.md quotes."""
    lines = [
        (
            f"{'sender':<36} {'limit/s':>8} {'requests':>9} {'seconds':>8} {'per s':>8} "
            f"{'max in 1 s':>11}"
        ),
    ]
    for row in summary["rows"]:
        limit = "-" if row["limit_per_second"] is None else f"{row['limit_per_second']:.0f}"
        lines.append(
            f"{row['sender']:<36} {limit:>8} {row['requests']:>9,} {row['seconds']:>8.2f} "
            f"{row['per_second']:>8.1f} {row['largest_1s_window']:>11,}"
        )
    lines += [
        "",
        (
            f"surveys sent {summary['surveys_sent']:,}, failed {summary['surveys_failed']:,}; "
            f"limit held: {'yes' if summary['limit_held'] else 'no'}"
        ),
    ]
    return "\n".join(lines)


def acceptance(summary: dict[str, Any]) -> list[str]:
    """List the targets of the performance issue that this run missed."""
    misses = []
    if not summary["limit_held"]:
        worker = summary["rows"][1]
        misses.append(
            f"{worker['largest_1s_window']} requests within one second, over the limit of "
            f"{worker['limit_per_second']:.0f}"
        )
    return misses


__all__ = ["FULL", "QUICK", "Plan", "acceptance", "largest_window", "render", "run", "write_json"]
