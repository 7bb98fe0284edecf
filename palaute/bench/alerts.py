"""``palaute bench alerts``: how fast each rule finds a drop, and how often it cries wolf.

A seeded simulation. Each touchpoint's ratings come from an ordered-probit
model (a latent satisfaction, cut into the five boxes of a 1-5 scale) with a
realistic skew towards 4 and 5, weekday seasonality in both volume and level,
and answers in office hours. Half the streams get a drop of the latent level,
sized to lower the mean by a given amount, at a random time; the other half
run unchanged for twelve weeks. Every rule sees the same ratings.

The comparison rules are those commercial tools document; they are given
the touchpoint's true baseline (an administrator who knows the touchpoint
well), and for each rule the benchmark picks, per volume, the most sensitive
setting from a grid whose false-alarm rate on the null streams stays within
the budget. The detector runs with its defaults and no knowledge of the
baseline. A rule alerts on a rising edge of its condition (de-duplicated),
as the tools' notifications do.

The oracle is there to bound what any rule could do, not to compete: it is
Page's CUSUM on the exact log-likelihood ratio of the touchpoint's true score
distributions before and after the drop (of the weekday of each rating, as
the model has a weekday level), told the drop's size but not its time. It is
calibrated on the null streams like the comparison rules, so its delay is
what the best detector for a known change achieves at the same budget.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from bisect import bisect_right
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, TextIO

from engine.detection import DropConfig, DropState, update_drop

if TYPE_CHECKING:
    from pathlib import Path

#: Latent cut points between the boxes 1|2, 2|3, 3|4, 4|5.
CUTS = (-1.75, -1.3, -0.9, 0.2)
#: Weekday (Mon..Sun) volume factors (normalised below) and latent level offsets.
WEEKDAY_VOLUME = (1.25, 1.1, 1.05, 1.0, 0.9, 0.4, 0.3)
WEEKDAY_LEVEL = (-0.06, 0.0, 0.0, 0.0, 0.04, 0.08, 0.08)
DAY = 86_400.0
MONTH_DAYS = 30.44
HISTORY_DAYS = 28  # before the earliest drop
DROP_SPREAD_DAYS = 14  # drops fall uniformly in this span after the history
FOLLOW_DAYS = 28  # how long after a drop a rule may still find it
FOLLOW_RATINGS = 3_000
NULL_DAYS = 84

DIFF_GRID = (0.3, 0.4, 0.5, 0.6, 0.8, 1.0)  # points below the true baseline mean
PCT_GRID = (0.05, 0.10, 0.15, 0.20, 0.25, 0.30)  # relative drop of the day vs the 7-day mean
NEG_GRID = (0.05, 0.10, 0.15, 0.20, 0.25, 0.30)  # negative share above the baseline share
NEG_MIN_ANSWERS = 5
#: Oracle CUSUM thresholds h (nats): ln(ARL0) spans about 9.6 (5 a day) to 14.2 (500 a day).
ORACLE_GRID = tuple(h / 4 for h in range(16, 69))  # 4.0 .. 17.0 in steps of 0.25

RULES: dict[str, str] = {
    "detector": "Palaute CUSUM (defaults, self-starting baseline)",
    "last20": 'naive "mean of last 20 ratings below X"',
    "daily": "fixed threshold on the daily mean",
    "relative": "day vs trailing 7-day mean (Qualtrics relative check)",
    "negative": "% negative (1-2) in the last 24 h above X (HappyOrNot)",
    "oracle": "exact likelihood-ratio CUSUM given the true before/after distributions (bound)",
}

_NORMAL = NormalDist()


def box_probabilities(level: float) -> list[float]:
    """Probability of each box 1..5 for a latent level."""
    cdf = [_NORMAL.cdf(cut - level) for cut in CUTS]
    return [b - a for a, b in zip([0.0, *cdf], [*cdf, 1.0], strict=True)]


def mean_score(level: float) -> float:
    """Return the expected score for a latent level."""
    return sum((box + 1) * p for box, p in enumerate(box_probabilities(level)))


def level_for_mean(target: float) -> float:
    """Invert :func:`mean_score` by bisection."""
    low, high = -4.0, 4.0
    for _ in range(60):
        middle = (low + high) / 2
        if mean_score(middle) < target:
            low = middle
        else:
            high = middle
    return (low + high) / 2


@dataclass(frozen=True)
class Scenario:
    """One simulated touchpoint."""

    per_day: float
    seed: int
    drop: float  # mean-score drop; 0 for a null stream
    oracle_drop: float = 0.5  # the drop the oracle is told to look for, on every stream


@dataclass
class Outcome:
    """What every rule setting did on one stream."""

    per_day: float
    months: float
    is_drop: bool
    alarms: dict[str, int] = field(default_factory=dict)  # null streams
    delays: dict[str, int | None] = field(default_factory=dict)  # drop streams


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 50:  # noqa: PLR2004 - normal approximation is exact enough beyond this
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, product, count = math.exp(-mean), rng.random(), 0
    while product > limit:
        product *= rng.random()
        count += 1
    return count


def level_shift(level: float, drop: float) -> float:
    """Return the latent shift that lowers the mean score of ``level`` by ``drop`` points."""
    return level_for_mean(mean_score(level) - drop) - level if drop else 0.0


def oracle_llr(level: float, shift: float) -> list[list[float]]:
    """Return ln p1(score) / p0(score) per weekday (Mon..Sun) and score 1..5.

    These are the simulation's own distributions, so a CUSUM on them is the best
    detector of this change there is: optimal in Lorden's sense for i.i.d. scores,
    and asymptotically so with the model's small weekday changes of level.
    """
    table = []
    for offset in WEEKDAY_LEVEL:
        before = box_probabilities(level + offset)
        after = box_probabilities(level + offset + shift)
        table.append([math.log(p1 / p0) for p0, p1 in zip(before, after, strict=True)])
    return table


def page_cusum(llrs: list[float], h: float) -> list[int]:
    """Return where Page's CUSUM crosses ``h``, restarting from zero after each alarm.

    Restarting is the textbook renewal form, so alarms on a null stream occur
    once per in-control run length, which is what the false-alarm budget counts.
    """
    alarms: list[int] = []
    statistic = 0.0
    for index, llr in enumerate(llrs):
        statistic += llr
        if statistic < 0.0:
            statistic = 0.0
        elif statistic >= h:
            alarms.append(index)
            statistic = 0.0
    return alarms


def _ratings(scenario: Scenario, rng: random.Random, drop_at: float | None, level: float,
             end: float) -> Any:  # fmt: skip
    """Yield (time, score, after_drop) in time order."""
    shift = level_shift(level, scenario.drop)
    volume_norm = sum(WEEKDAY_VOLUME) / 7
    tables = {
        (day, dropped): list(
            _cumulative(box_probabilities(level + WEEKDAY_LEVEL[day] + (shift if dropped else 0)))
        )
        for day in range(7)
        for dropped in (False, True)
    }
    day = 0
    while day * DAY < end:
        weekday = day % 7
        count = _poisson(rng, scenario.per_day * WEEKDAY_VOLUME[weekday] / volume_norm)
        for at in sorted(day * DAY + rng.uniform(8, 18) * 3600 for _ in range(count)):
            if at >= end:
                return
            dropped = drop_at is not None and at >= drop_at
            score = bisect_right(tables[weekday, dropped], rng.random()) + 1
            yield at, min(score, 5), dropped
        day += 1


def _cumulative(probabilities: list[float]) -> list[float]:
    total, out = 0.0, []
    for p in probabilities[:-1]:
        total += p
        out.append(total)
    return out


class _Edge:
    """Rising-edge alarm of one rule setting."""

    __slots__ = ("active", "count", "first_after_drop")

    def __init__(self) -> None:
        self.active = False
        self.count = 0
        self.first_after_drop: int | None = None

    def update(self, condition: bool, post_drop_ratings: int) -> None:  # noqa: FBT001 - hot loop
        if condition and not self.active:
            self.count += 1
            if post_drop_ratings and self.first_after_drop is None:
                self.first_after_drop = post_drop_ratings
        self.active = condition


def simulate(scenario: Scenario) -> Outcome:  # noqa: C901, PLR0912, PLR0915 - one hot loop, kept together for speed
    """Run every rule over one stream."""
    rng = random.Random(scenario.seed)  # noqa: S311 - a reproducible simulation, not secrets
    level = rng.uniform(-0.2, 0.5)
    true_mean = mean_score(level)
    true_negative = sum(box_probabilities(level)[:2])
    if scenario.drop:
        drop_at: float | None = (HISTORY_DAYS + rng.uniform(0, DROP_SPREAD_DAYS)) * DAY
        end = (drop_at or 0) + FOLLOW_DAYS * DAY
    else:
        drop_at, end = None, NULL_DAYS * DAY
    edges: dict[str, _Edge] = {"detector": _Edge()}
    for d in DIFF_GRID:
        edges[f"last20@{d}"] = _Edge()
        edges[f"daily@{d}"] = _Edge()
    for p in PCT_GRID:
        edges[f"relative@{p}"] = _Edge()
    for x in NEG_GRID:
        edges[f"negative@{x}"] = _Edge()
    detector = DropState()
    config = DropConfig()
    llr_table = oracle_llr(level, level_shift(level, scenario.oracle_drop))
    llrs: list[float] = []
    first_post: int | None = None  # index in llrs of the first rating after the drop
    last20: deque[int] = deque(maxlen=20)
    recent: deque[tuple[float, int]] = deque()
    negatives = 0
    days: list[tuple[int, int]] = []  # (sum, count) per finished day
    today, day_sum, day_count = 0, 0, 0
    post = 0

    def close_day() -> None:
        days.append((day_sum, day_count))
        mean = day_sum / day_count if day_count else None
        for d in DIFF_GRID:
            edges[f"daily@{d}"].update(mean is not None and mean < true_mean - d, post)
        week = days[-8:-1]
        week_sum, week_count = sum(s for s, _ in week), sum(c for _, c in week)
        for p in PCT_GRID:
            relative = (
                mean is not None
                and len(week) == 7  # noqa: PLR2004 - a week of history
                and week_count > 0
                and mean < week_sum / week_count * (1 - p)
            )
            edges[f"relative@{p}"].update(relative, post)

    for at, score, dropped in _ratings(scenario, rng, drop_at, level, end):
        while at >= (today + 1) * DAY:
            close_day()
            today, day_sum, day_count = today + 1, 0, 0
        if dropped:
            post += 1
            if post > FOLLOW_RATINGS:
                break
            if first_post is None:
                first_post = len(llrs)
        llrs.append(llr_table[int(at // DAY) % 7][score - 1])
        day_sum += score
        day_count += 1
        detector, signal = update_drop(detector, (score - 1) / 4, at, config)
        if signal is not None and signal.fired:
            edges["detector"].update(condition=False, post_drop_ratings=post)
            edges["detector"].update(condition=True, post_drop_ratings=post)
        last20.append(score)
        if len(last20) == 20:  # noqa: PLR2004 - the rule's own window
            mean20 = sum(last20) / 20
            for d in DIFF_GRID:
                edges[f"last20@{d}"].update(mean20 < true_mean - d, post)
        recent.append((at, score))
        negatives += score <= 2  # noqa: PLR2004 - 1 and 2 are the negative faces
        while recent[0][0] <= at - DAY:
            negatives -= recent.popleft()[1] <= 2  # noqa: PLR2004 - as above
        share = negatives / len(recent)
        for x in NEG_GRID:
            edges[f"negative@{x}"].update(
                len(recent) >= NEG_MIN_ANSWERS and share > true_negative + x, post
            )
    else:
        close_day()
    months = (end - (drop_at or 0.0) if scenario.drop else end) / DAY / MONTH_DAYS
    outcome = Outcome(per_day=scenario.per_day, months=months, is_drop=bool(scenario.drop))
    for name, edge in edges.items():
        if scenario.drop:
            outcome.delays[name] = edge.first_after_drop
        else:
            outcome.alarms[name] = edge.count
    for h in ORACLE_GRID:
        alarms = page_cusum(llrs, h)
        if not scenario.drop:
            outcome.alarms[f"oracle@{h:g}"] = len(alarms)
            continue
        after = [index for index in alarms if first_post is not None and index >= first_post]
        delay = after[0] - (first_post or 0) + 1 if after else None
        outcome.delays[f"oracle@{h:g}"] = delay
    return outcome


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.inf
    position = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[position]


def summarise(outcomes: list[Outcome], budget: float) -> dict[str, Any]:
    """Calibrate each rule per volume within the false-alarm budget and tabulate it."""
    rows: list[dict[str, Any]] = []
    for per_day in sorted({o.per_day for o in outcomes}):
        nulls = [o for o in outcomes if o.per_day == per_day and not o.is_drop]
        drops = [o for o in outcomes if o.per_day == per_day and o.is_drop]
        months = sum(o.months for o in nulls)
        for rule in RULES:
            settings = [name for name in nulls[0].alarms if name.split("@")[0] == rule]
            measured = []
            for name in settings:
                alarms = sum(o.alarms[name] for o in nulls)
                delays = [
                    math.inf if o.delays[name] is None else float(o.delays[name] or 0)
                    for o in drops
                ]
                measured.append((name, 100 * alarms / months, delays))
            within = [m for m in measured if m[1] <= budget]
            calibrated = within or [min(measured, key=lambda m: m[1])]
            name, false_alarms, delays = min(
                calibrated, key=lambda m: (_percentile(m[2], 0.5), _percentile(m[2], 0.9))
            )
            rows.append(
                {
                    "per_day": per_day,
                    "rule": rule,
                    "setting": name.partition("@")[2] or "defaults",
                    "within_budget": bool(within),
                    "median_ratings_to_alert": _percentile(delays, 0.5),
                    "p90_ratings_to_alert": _percentile(delays, 0.9),
                    "detected_share": sum(d < math.inf for d in delays) / max(len(delays), 1),
                    "false_alarms_per_100_months": false_alarms,
                    "null_months": months,
                    "drop_streams": len(drops),
                }
            )
    return {"budget_per_100_months": budget, "rows": rows}


def _format(value: float) -> str:
    return "never" if value == math.inf else f"{value:.0f}"


def render(summary: dict[str, Any]) -> str:
    """Render the table as Markdown (it is pasted into docs/alerts.md)."""
    lines = [
        (
            "| ratings/day | rule | setting | median ratings to alert | p90 | detected "
            "| false alarms / 100 touchpoint-months |"
        ),
        "|---:|---|---|---:|---:|---:|---:|",
    ]
    for row in summary["rows"]:
        flag = "" if row["within_budget"] else " (over budget)"
        lines.append(
            f"| {row['per_day']:g} | {row['rule']} | {row['setting']} "
            f"| {_format(row['median_ratings_to_alert'])} | {_format(row['p90_ratings_to_alert'])} "
            f"| {row['detected_share']:.0%} | {row['false_alarms_per_100_months']:.2f}{flag} |"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Plan:
    """How many streams of each kind the run simulates."""

    volumes: dict[float, tuple[int, int]]  # per_day -> (null streams, drop streams)
    drop: float = 0.5
    seed: int = 20_260_302
    budget: float = 1.0  # false alarms per 100 touchpoint-months
    workers: int = 2


FULL = Plan(volumes={5: (600, 300), 50: (200, 200), 500: (60, 100)})
QUICK = Plan(volumes={5: (20, 20), 500: (3, 6)}, workers=1)


def run(plan: Plan, progress: TextIO | None = sys.stderr) -> dict[str, Any]:
    """Simulate the plan and return the summary (JSON-able)."""
    scenarios = [
        Scenario(per_day, plan.seed + 7919 * index + int(per_day) * 104_729, drop, plan.drop)
        for per_day, (nulls, drops) in plan.volumes.items()
        for index, drop in enumerate([0.0] * nulls + [plan.drop] * drops)
    ]
    started = time.monotonic()
    outcomes: list[Outcome] = []
    if plan.workers > 1:
        with ProcessPoolExecutor(plan.workers) as pool:
            for outcome in pool.map(simulate, scenarios, chunksize=4):
                outcomes.append(outcome)
                _report(progress, len(outcomes), len(scenarios), started)
    else:
        for scenario in scenarios:
            outcomes.append(simulate(scenario))
            _report(progress, len(outcomes), len(scenarios), started)
    summary = summarise(outcomes, plan.budget)
    summary["plan"] = {
        "drop_points": plan.drop,
        "seed": plan.seed,
        "streams": {f"{k:g}": {"null": v[0], "drop": v[1]} for k, v in plan.volumes.items()},
        "seconds": round(time.monotonic() - started, 1),
    }
    return summary


def _report(progress: TextIO | None, done: int, total: int, started: float) -> None:
    if progress is not None and (done % 50 == 0 or done == total):
        elapsed = time.monotonic() - started
        progress.write(f"\r{done}/{total} streams, {elapsed:.0f} s")
        if done == total:
            progress.write("\n")
        progress.flush()


def write_json(summary: dict[str, Any], path: Path) -> None:
    """Write the summary, with infinities as null (JSON has none)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and math.isinf(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(clean(summary), indent=2) + "\n", encoding="utf-8")


def acceptance(summary: dict[str, Any]) -> list[str]:
    """Check the acceptance targets; return what failed (empty when all hold)."""
    failures: list[str] = []
    rows = summary["rows"]
    for row in rows:
        if row["rule"] != "detector":
            continue
        if row["median_ratings_to_alert"] > 60:  # noqa: PLR2004 - the acceptance target
            failures.append(
                f"{row['per_day']:g}/day: median {_format(row['median_ratings_to_alert'])} "
                "ratings to alert (target 60)"
            )
        if row["false_alarms_per_100_months"] > summary["budget_per_100_months"]:
            failures.append(
                f"{row['per_day']:g}/day: {row['false_alarms_per_100_months']:.2f} false "
                "alarms per 100 touchpoint-months"
            )
        for other in rows:
            if other["per_day"] != row["per_day"] or other["rule"] in {"detector", "oracle"}:
                continue  # the oracle knows the change; it bounds the detector, not rivals it
            if (
                other["median_ratings_to_alert"] < row["median_ratings_to_alert"]
                and other["false_alarms_per_100_months"] <= row["false_alarms_per_100_months"]
            ):
                failures.append(f"{row['per_day']:g}/day: {other['rule']} is faster")
    return failures
