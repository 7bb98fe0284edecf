"""Drop detection against a touchpoint's own baseline, robust to ordinary bad days.

Ratings of one day are not independent: a busy Monday, a sick colleague or a
long queue moves the whole day's mean. A CUSUM that counts 500 ratings of one
bad day as 500 pieces of evidence alarms on bad days; this one sees a day as
what it is, one draw of a day effect plus sampling noise:

* the mean of a run of ``n`` ratings of one day (the *segment*) varies around
  the baseline with variance ``σ²/n + τ² + κ·c``: sampling noise, the
  between-day variance ``τ²`` and the between-hour variance ``κ`` (``c`` is
  how concentrated the day's ratings are in few hours), all three estimated
  from the stream itself;
* the segment adds ``w·(d - k)`` to the CUSUM, where ``d`` is its shortfall
  in baseline standard deviations, ``k`` half the shift to detect and
  ``w = σ²/variance`` its *effective* number of ratings. Without day effects
  ``w = n`` and this is the classic CUSUM, rating by rating. With them ``w``
  tends to ``σ²/τ²`` however busy the day, so a day that is ``c`` day-SDs
  bad adds at most ``c²/4k``: with the default threshold floor a day within
  three of its own standard deviations never fires on its own. A sustained
  drop adds up over days and does;
* the baseline is learnt from whole days, weighted by their age in days
  (memory in time, not in ratings: quiet and busy touchpoints learn at the
  same pace), and the newest days are held back from it, so a slow drift is
  not learnt as normal.

Before the touchpoint has a baseline of closed days (a new touchpoint, or the
demo's few minutes) the first ratings of the day serve as one, and the rest of
the day is compared with them (same day, so no day effect between them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

_DAYS_PER_MONTH = 30.44
_SECONDS_PER_DAY = 86_400.0
_SECONDS_PER_HOUR = 3_600.0
#: Hours a day's ratings typically spread over (office hours), for the threshold's rate.
_TYPICAL_HOURS = 10.0
#: Ratings a pre-day-model state learnt at most (its memory), when an old state is loaded.
_OLD_MEMORY = 1_000


@dataclass(frozen=True)
class DropConfig:
    """How the drop detector trades detection delay against false alarms.

    The defaults meet the false-alarm budget in docs/alerts.md on streams with
    day effects, seasonality, holidays and busy days, at 2 to 500 ratings a day.
    """

    #: Size of drop to detect fastest, in baseline standard deviations (CUSUM k is half).
    shift_sd: float = 0.5
    #: ... or, when smaller, this in normalised units (0.125 is half a point on 1-5): on a
    #: J-shaped touchpoint half a point is fewer standard deviations.
    shift: float | None = None
    #: False alarms tolerated per touchpoint-month; sets the threshold from the rating rate.
    false_alarms_per_month: float = 0.005
    #: Never alert below this threshold. 9 = 3²/(4k): a day within three of its own
    #: standard deviations of the baseline cannot fire on its own, however busy.
    min_threshold: float = 9.0
    #: Ratings in the baseline before the detector speaks at all.
    min_baseline: int = 50
    #: A day with no closed days before it is judged against its first this many ratings.
    seed_size: int = 100
    #: Ratings since the statistic last left zero before an alert may fire.
    min_sample: int = 10
    #: Effective memory of the baseline, in days (exponential weights by age).
    memory_days: float = 56.0
    #: Closed days held back from the baseline, so a slow drift is not learnt as normal.
    lag_days: int = 7
    #: Floor of the baseline standard deviation (normalised units); all-top scores have none.
    min_sd: float = 0.05
    #: Multiplies the Siegmund threshold (calibrated by the benchmark in docs/alerts.md).
    threshold_scale: float = 1.5
    #: Stop learning a day that ends with the statistic above this share of the threshold.
    freeze_fraction: float = 0.5
    #: Recovery threshold as a share of the firing threshold (hysteresis).
    resolve_fraction: float = 0.5
    #: Between-day standard deviation assumed until days tell (normalised: 0.1 points on 1-5).
    day_sd_prior: float = 0.025
    #: Between-hour standard deviation assumed until busy days tell.
    hour_sd_prior: float = 0.0125
    #: Weight of each prior, in days.
    prior_days: float = 7.0
    #: A day with at least this many ratings tells how its hours vary.
    busy_day: int = 100

    @property
    def reference(self) -> float:
        """CUSUM reference value k: half the shift to detect, in standard deviations."""
        return self.shift_sd / 2.0

    def reference_for(self, sd: float) -> float:
        """Give k for a touchpoint whose ratings have this standard deviation (normalised)."""
        if self.shift is None or sd <= 0:
            return self.reference
        # The smaller of the two shifts: a J-shaped touchpoint's half point is fewer
        # deviations, and a narrow one's half deviation less than half a point.
        return round(max(min(self.shift / (2.0 * sd), self.reference), 0.05), 2)

    def threshold(
        self, ratings_per_day: float, excess: float = 0.0, reference: float | None = None
    ) -> float:
        """CUSUM threshold h for the false-alarm budget at this rating rate.

        ``excess`` is the variance of a day's mean beyond sampling noise, as a
        share of one rating's variance. The ratings of a day count for
        ``1 / (1/n + excess)`` independent ones: that is the rate the month's
        budget is spread over. Inverts Siegmund's approximation of the
        in-control run length, ARL0 ≈ (exp(2kb) - 2kb - 1) / 2k², b = h + 1.166.
        Rates are rounded to two significant digits so that the inversion is cached.
        Its floor keeps ``c²/4k`` for ``c = 3`` below it: one day within three
        of its standard deviations never fires alone.
        """
        k = self.reference if reference is None else reference
        rate = max(ratings_per_day, 0.1)
        effective = 1.0 / (1.0 / rate + max(excess, 0.0))
        arl0 = float(f"{effective:.2g}") * _DAYS_PER_MONTH / self.false_alarms_per_month
        floor = max(self.min_threshold, 9.0 / (4.0 * k))
        return max(floor, self.threshold_scale * _siegmund_threshold(k, arl0))


@lru_cache(maxsize=4096)
def _siegmund_threshold(k: float, arl0: float) -> float:
    b = 1.0
    for _ in range(30):
        b = math.log(arl0 * 2 * k * k + 2 * k * b + 1) / (2 * k)
    return b - 1.166


#: A closed day as it waits to be learnt: day, n, sum, sum of squares, hour variance, its weight.
DaySummary = tuple[float, float, float, float, float, float]


@dataclass(frozen=True)
class DropState:
    """What the drop detector remembers of one touchpoint (JSON-able via :meth:`to_dict`).

    ``base_*`` are exponentially weighted sums over the learnt days; ``day_*``
    and ``hours`` the open day; ``seg_*`` the run of the open day the
    statistic judges now, on top of ``carry`` from the days before.
    """

    base_n: int = 0  # ratings ever learnt
    base_weight: float = 0.0  # Σ decay·n
    base_sum: float = 0.0  # Σ decay·sum
    base_ss: float = 0.0  # Σ decay·within-day sum of squares
    base_df: float = 0.0  # Σ decay·(n - 1)
    base_days: float = 0.0  # Σ decay
    tau_num: float = 0.0  # Σ decay·a·(excess squared deviation of a day's mean)
    tau_den: float = 0.0
    kappa_num: float = 0.0  # Σ decay·(between-hour variance of a busy day)
    kappa_den: float = 0.0
    base_day: int | None = None
    pending: tuple[DaySummary, ...] = ()
    day: int | None = None
    day_n: int = 0
    day_sum: float = 0.0
    day_ss: float = 0.0
    hours: tuple[tuple[int, int, float], ...] = ()  # (hour, n, sum) of the open day
    hour_sq: int = 0  # Σ n² over the open day's hours
    seed_n: int = 0  # the open day's first ratings, the baseline while there is none
    seed_sum: float = 0.0
    seed_ss: float = 0.0
    seg_n: int = 0
    seg_sum: float = 0.0
    carry: float = 0.0
    statistic: float = 0.0
    run_n: int = 0
    run_sum: float = 0.0
    run_day: int | None = None  # the day the statistic last left zero
    recovery: float = 0.0
    firing: bool = False
    mean_gap_seconds: float | None = None
    last_at: float | None = None

    @property
    def base_mean(self) -> float:
        """Mean of the learnt baseline (normalised)."""
        return self.base_sum / self.base_weight if self.base_weight else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able form for a table's changelog.

        Its fields are all plain values, so a copy of them will do; ``asdict``
        would deep-copy each one, and this runs once per rating.
        """
        return {
            **vars(self),
            "pending": [list(day) for day in self.pending],
            "hours": [list(hour) for hour in self.hours],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DropState:
        """Rebuild from :meth:`to_dict` output, or from a state of the rating-memory detector.

        A state written before days were modelled has a baseline mean and
        variance learnt over its last 1,000 ratings: they become a baseline of
        that weight, with the day-to-day variance still at its prior. Its
        held-back ratings and running statistic are let go (the statistic
        restarts from zero, which only delays an alert); a firing drop stays
        firing, so that it still resolves.
        """
        if "base_weight" not in raw:
            return _from_rating_memory(raw)
        names = {f.name for f in fields(cls)}
        values = {key: value for key, value in raw.items() if key in names}
        values["pending"] = tuple(tuple(day) for day in raw.get("pending", ()))
        values["hours"] = tuple((int(h), int(n), float(s)) for h, n, s in raw.get("hours", ()))
        return cls(**values)


def _from_rating_memory(raw: Mapping[str, Any]) -> DropState:
    n = int(raw.get("base_n", 0))
    weight = float(min(n, _OLD_MEMORY))
    mean, var = float(raw.get("base_mean", 0.0)), float(raw.get("base_var", 0.0))
    last_at = raw.get("last_at")
    return DropState(
        base_n=n,
        base_weight=weight,
        base_sum=weight * mean,
        base_ss=weight * var,
        base_df=weight,
        base_day=None if last_at is None else int(last_at // _SECONDS_PER_DAY),
        firing=bool(raw.get("firing", False)),
        run_n=int(raw.get("run_n", 0)) if raw.get("firing") else 0,
        run_sum=float(raw.get("run_sum", 0.0)) if raw.get("firing") else 0.0,
        mean_gap_seconds=raw.get("mean_gap_seconds"),
        last_at=last_at,
    )


@dataclass(frozen=True)
class DropSignal:
    """A change of the drop detector's verdict, with its evidence."""

    fired: bool  # True: drop detected; False: recovered
    baseline: float  # normalised
    recent: float  # normalised
    sample_size: int
    statistic: float
    threshold: float


@dataclass(frozen=True)
class Baseline:
    """The reference a run of ratings is judged against, with its variance components."""

    n: int
    weight: float
    mean: float
    var: float  # one rating, within a day
    day_var: float  # τ²: between days (0 when judging a day against its own first ratings)
    hour_var: float  # κ: between hours of a day
    spread: float  # τ² as estimated, for the threshold's rate even when judging within a day

    def excess(self) -> float:
        """Variance of a day's mean beyond sampling noise, as a share of one rating's.

        A busy touchpoint's ratings are worth ``1 / (1/n + excess)`` independent
        ones a day; it is the same whether a day is judged against other days
        or against its own first ratings, so the threshold does not jump.
        """
        return (self.spread + self.hour_var / _TYPICAL_HOURS) / self.var


def ratings_per_day(state: DropState) -> float:
    """Estimated rating rate of the touchpoint."""
    if not state.mean_gap_seconds:
        return 0.0
    return _SECONDS_PER_DAY / state.mean_gap_seconds


def baseline(state: DropState, config: DropConfig) -> Baseline:
    """Give the reference the open day is judged against.

    Learnt days when there are enough of them; while there are not, the held
    back days and the first ratings of the open day as well (self-starting).
    Comparing a day with its own first ratings involves no day effect.
    """
    n, weight, total, ss, df = (
        state.base_n,
        state.base_weight,
        state.base_sum,
        state.base_ss,
        state.base_df,
    )
    same_day_only = False
    if n < config.min_baseline:
        for _, day_n, day_sum, day_ss, _, _ in state.pending:
            n += int(day_n)
            weight += day_n
            total += day_sum
            ss += day_ss - (day_sum * day_sum / day_n if day_n else 0.0)
            df += max(day_n - 1, 0)
        same_day_only = weight == 0
        if state.seed_n:
            n += state.seed_n
            weight += state.seed_n
            total += state.seed_sum
            ss += state.seed_ss - state.seed_sum * state.seed_sum / state.seed_n
            df += state.seed_n - 1
    mean = total / weight if weight else 0.0
    var = max(ss / df if df > 0 else 0.0, config.min_sd * config.min_sd)
    day_prior = config.day_sd_prior**2
    average = state.tau_den / state.base_days if state.tau_den > 0 else 1.0
    prior = config.prior_days * average
    day_var = max((state.tau_num + prior * day_prior) / (state.tau_den + prior), 0.0)
    hour_prior = config.hour_sd_prior**2
    hour_var = max(
        (state.kappa_num + config.prior_days * hour_prior) / (state.kappa_den + config.prior_days),
        0.0,
    )
    return Baseline(
        n=n,
        weight=weight,
        mean=mean,
        var=var,
        day_var=0.0 if same_day_only else day_var,
        hour_var=hour_var,
        spread=day_var,
    )


def _timed(state: DropState, at: float) -> tuple[float | None, float]:
    """Return the rate's new mean gap and the newest time seen."""
    if state.last_at is None:
        return state.mean_gap_seconds, at
    gap = max(at - state.last_at, 0.0)
    if state.mean_gap_seconds is None:
        return gap or 1.0, max(at, state.last_at)
    mean_gap = state.mean_gap_seconds + (gap - state.mean_gap_seconds) / 200.0
    return max(mean_gap, 1e-3), max(at, state.last_at)


def _evolve(state: DropState, changes: Mapping[str, Any]) -> DropState:
    """Copy the state with some fields changed.

    ``dataclasses.replace`` runs ``__init__`` with every field; this runs once
    or twice per rating, and the benchmark feeds millions.
    """
    evolved = object.__new__(DropState)
    evolved.__dict__.update(state.__dict__)
    evolved.__dict__.update(changes)
    return evolved


def _day_summary(state: DropState, config: DropConfig) -> DaySummary:
    """Summarise the open day, with its between-hour variance when it was busy."""
    hour_var, hour_weight = 0.0, 0.0
    n = state.day_n
    if n >= config.busy_day and len(state.hours) > 1:
        mean = state.day_sum / n
        between = sum(h_n * (h_sum / h_n - mean) ** 2 for _, h_n, h_sum in state.hours)
        groups = len(state.hours)
        within = (state.day_ss - sum(h_sum * h_sum / h_n for _, h_n, h_sum in state.hours)) / max(
            n - groups, 1
        )
        spread = (n - sum(h_n * h_n for _, h_n, _ in state.hours) / n) / (groups - 1)
        hour_var, hour_weight = (between / (groups - 1) - within) / spread, 1.0
    return (float(state.day or 0), float(n), state.day_sum, state.day_ss, hour_var, hour_weight)


def _learn(state: DropState, day: DaySummary, config: DropConfig) -> DropState:
    """Add one closed day to the baseline, after decaying it by the days since the last."""
    index, n, total, ss, hour_var, hour_weight = day
    if n <= 0:
        return state
    decay = 1.0
    if state.base_day is not None:
        decay = math.exp(-max(index - state.base_day, 0.0) / config.memory_days)
    reference = baseline(state, config) if state.base_weight else None
    tau_num, tau_den = state.tau_num * decay, state.tau_den * decay
    if reference is not None:
        # The day's mean against the baseline, less what sampling alone explains (the
        # day's and the baseline's own); weighted by its precision under the prior, so
        # quiet days' noise does not swamp the estimate. Weights from the estimate itself
        # would let one early outlier shrink every later day's weight, and stay.
        effective = n / (1.0 + n * config.day_sd_prior**2 / reference.var)
        sampling = reference.var / n + reference.var / reference.weight
        excess = (total / n - reference.mean) ** 2 - sampling
        tau_num += effective * effective * excess
        tau_den += effective * effective
    return DropState(
        **{
            **vars(state),
            "base_n": state.base_n + int(n),
            "base_weight": state.base_weight * decay + n,
            "base_sum": state.base_sum * decay + total,
            "base_ss": state.base_ss * decay + (ss - total * total / n),
            "base_df": state.base_df * decay + (n - 1),
            "base_days": state.base_days * decay + 1.0,
            "tau_num": tau_num,
            "tau_den": tau_den,
            "kappa_num": state.kappa_num * decay + hour_var * hour_weight,
            "kappa_den": state.kappa_den * decay + hour_weight,
            "base_day": int(index),
        }
    )


def _close_day(state: DropState, day: int, config: DropConfig, threshold: float) -> DropState:
    """Close the open day: hold it back (unless learning is frozen), learn what is old enough."""
    pending = state.pending
    if state.day_n and not state.firing and state.statistic <= threshold * config.freeze_fraction:
        pending = (*pending, _day_summary(state, config))
    fresh = tuple(d for d in pending if day - d[0] <= config.lag_days)
    state = DropState(
        **{
            **vars(state),
            "pending": (),
            "day": day,
            "day_n": 0,
            "day_sum": 0.0,
            "day_ss": 0.0,
            "hours": (),
            "hour_sq": 0,
            "seed_n": 0,
            "seed_sum": 0.0,
            "seed_ss": 0.0,
            "seg_n": 0,
            "seg_sum": 0.0,
            "carry": state.recovery if state.firing else state.statistic,
        }
    )
    for old in pending[: len(pending) - len(fresh)]:
        state = _learn(state, old, config)
    return _evolve(state, {"pending": fresh})


def _with_rating(state: DropState, value: float, at: float) -> dict[str, Any]:
    hour = int(at // _SECONDS_PER_HOUR)
    hours = state.hours
    if hours and hours[-1][0] == hour:  # the usual case: the same hour as the last rating
        h, n, total = hours[-1]
        hours, count = (*hours[:-1], (h, n + 1, total + value)), n
    else:
        index = next((i for i, (h, _, _) in enumerate(hours) if h == hour), None)
        if index is None:
            hours, count = (*hours, (hour, 1, value)), 0
        else:
            h, n, total = hours[index]
            hours = (*hours[:index], (h, n + 1, total + value), *hours[index + 1 :])
            count = n
    return {
        "day_n": state.day_n + 1,
        "day_sum": state.day_sum + value,
        "day_ss": state.day_ss + value * value,
        "hours": hours,
        "hour_sq": state.hour_sq + 2 * count + 1,
    }


def segment_increment(
    shortfall: float, n: int, base: Baseline, concentration: float, k: float, *, learnt: bool
) -> float:
    """Give what a run of ``n`` ratings of one day adds to the CUSUM: ``w·(d - k)``.

    ``shortfall`` is baseline mean minus the run's mean (normalised); ``d``
    is it in baseline standard deviations, ``w = σ²/variance`` the run's
    effective number of ratings. The run's variance has the sampling noise,
    the day and hour effects and the baseline's own uncertainty in it.
    """
    variance = (
        base.var / n
        + base.day_var
        + base.hour_var * concentration
        + (base.var / base.weight if base.weight else 0.0) * (0.0 if learnt else 1.0)
    )
    sd = math.sqrt(base.var)
    effective = base.var / variance
    return effective * (shortfall / sd - k)


def update_drop(
    state: DropState, value: float, at: float, config: DropConfig
) -> tuple[DropState, DropSignal | None]:
    """Feed one normalised score (0..1) observed at ``at`` (epoch seconds).

    Returns the new state and a signal when the verdict changes: a drop
    found, or a firing drop recovered. A rating dated before the open day (a
    late answer) counts in the open day: days only move forward.
    """
    mean_gap, last_at = _timed(state, at)
    rate = _SECONDS_PER_DAY / mean_gap if mean_gap else 0.0
    day = int(at // _SECONDS_PER_DAY)
    base = baseline(state, config)
    k = config.reference_for(math.sqrt(base.var))
    threshold = config.threshold(rate, base.excess(), k)
    if state.day is None:
        state = _evolve(state, {"day": day})
    elif day > state.day:
        state = _close_day(state, day, config, threshold)
        base = baseline(state, config)
    changes = _with_rating(state, value, at)
    changes |= {"mean_gap_seconds": mean_gap, "last_at": last_at}
    # Only the open day's first ratings to judge by: take enough of them to be sure of.
    seeding = state.seed_n and base.weight == state.seed_n and state.seed_n < config.seed_size
    if base.n < config.min_baseline or seeding:
        changes |= {
            "seed_n": state.seed_n + 1,
            "seed_sum": state.seed_sum + value,
            "seed_ss": state.seed_ss + value * value,
        }
        return _evolve(state, changes), None
    seg_n, seg_sum = state.seg_n + 1, state.seg_sum + value
    # Σ n_h² / n²: 1 when all of the day's ratings fell in one hour, 1/H over H even hours.
    concentration = changes["hour_sq"] / (changes["day_n"] * changes["day_n"])
    shortfall = base.mean - seg_sum / seg_n
    learnt = state.base_n >= config.min_baseline
    if state.firing:
        # The mirror image: evidence that the level is back within the shift of the
        # baseline, ``w·(k - d)``.
        rise = state.carry - segment_increment(
            shortfall, seg_n, base, concentration, k, learnt=learnt
        )
        run_n, run_sum = state.run_n + 1, state.run_sum + value
        if rise <= 0.0:
            rise, seg_n, seg_sum = 0.0, 0, 0.0
            changes["carry"] = 0.0
        resolve_at = threshold * config.resolve_fraction
        if rise > resolve_at:
            signal = DropSignal(
                fired=False,
                baseline=base.mean,
                recent=run_sum / run_n,
                sample_size=run_n,
                statistic=rise,
                threshold=resolve_at,
            )
            changes |= {"firing": False, "statistic": 0.0, "recovery": 0.0, "run_n": 0,
                        "run_sum": 0.0, "seg_n": 0, "seg_sum": 0.0, "carry": 0.0}  # fmt: skip
            return _evolve(state, changes), signal
        changes |= {"recovery": rise, "run_n": run_n, "run_sum": run_sum, "seg_n": seg_n,
                    "seg_sum": seg_sum}  # fmt: skip
        return _evolve(state, changes), None
    statistic = state.carry + segment_increment(
        shortfall, seg_n, base, concentration, k, learnt=learnt
    )
    if statistic <= 0.0:
        changes |= {"statistic": 0.0, "seg_n": 0, "seg_sum": 0.0, "carry": 0.0, "run_n": 0,
                    "run_sum": 0.0}  # fmt: skip
        return _evolve(state, changes), None
    run_n, run_sum = state.run_n + 1, state.run_sum + value
    run_day = state.run_day if state.run_n and state.run_day is not None else state.day
    changes["run_day"] = run_day
    if statistic > threshold and run_n >= config.min_sample:
        signal = DropSignal(
            fired=True,
            baseline=base.mean,
            recent=run_sum / run_n,
            sample_size=run_n,
            statistic=statistic,
            threshold=threshold,
        )
        # Held-back days since the evidence began may hold the drop: none of them may
        # become baseline. Those before it stay (they are the baseline of a young touchpoint).
        kept = tuple(d for d in state.pending if run_day is not None and d[0] < run_day)
        changes |= {"firing": True, "pending": kept, "statistic": statistic, "recovery": 0.0,
                    "run_n": 0, "run_sum": 0.0, "seg_n": 0, "seg_sum": 0.0,
                    "carry": 0.0}  # fmt: skip
        return _evolve(state, changes), signal
    changes |= {"statistic": statistic, "run_n": run_n, "run_sum": run_sum, "seg_n": seg_n,
                "seg_sum": seg_sum}  # fmt: skip
    return _evolve(state, changes), None
