"""Drop, target-breach and silence detection, and the lifecycle of the alerts they raise.

Three questions per touchpoint, each answered with a statistic a person can check:

* **drop** — is the recent level below the touchpoint's own baseline? A
  one-sided CUSUM on the normalised score, standardised by a baseline mean and
  variance that are estimated from the stream itself (self-starting) and lag
  the newest ratings, so a drop is not absorbed into its own baseline. Its
  threshold follows from a false-alarm budget per touchpoint-month and the
  touchpoint's rating rate: a busy touchpoint sees more ratings a month and
  needs a higher bar for the same number of false alarms.
* **target breach** — is the CSAT share below its target with confidence?
  The upper bound of a one-sided Wilson interval must lie below the target,
  and only after a minimum number of ratings.
* **KPI breach** — is the mean score (the NPS on nps-11) below the
  touchpoint's ``kpi_target`` with confidence? The upper bound of a one-sided
  Student-t interval of the last week's mean must lie below the target
  (:func:`mean_upper_bound` says why that bound).
* **silence** — did answers, deliveries or contacts stop? A broken
  front-office integration otherwise looks like perfect scores. The observed
  count in a window is compared with the expected one (a seasonal baseline,
  :mod:`engine.silence`) by a Poisson tail.

:func:`step` turns these into :class:`~schemas.alerts.ScoreDropAlert` events:
firing once, resolved with hysteresis, never twice within a cool-down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from engine.drop import DropConfig, DropSignal, DropState, ratings_per_day, update_drop
from engine.ids import derived_id
from schemas.alerts import AlertKind, AlertState, Evidence, ScoreDropAlert, Severity
from schemas.base import Scale
from schemas.responses import Rating

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "BOTTOM_BOX",
    "POLARISATION",
    "DetectorConfig",
    "DetectorState",
    "DropConfig",
    "DropSignal",
    "DropState",
    "Firing",
    "KpiConfig",
    "KpiVerdict",
    "KpiWindow",
    "SilenceConfig",
    "SilenceVerdict",
    "TargetConfig",
    "TargetVerdict",
    "Tick",
    "bottom_box",
    "drop_config_for",
    "kpi_top",
    "kpi_value",
    "kpi_verdict",
    "mean_upper_bound",
    "new_detector",
    "poisson_cdf",
    "ratings_per_day",
    "silence_verdict",
    "step",
    "student_t_quantile",
    "target_verdict",
    "update_drop",
    "wilson_interval",
]


# Polarisation: the bottom-box share.

#: The lowest answers of each scale: a citizen the service failed completely.
BOTTOM_BOX: dict[Scale, str] = {
    Scale.CSAT_5: "1-2",
    Scale.NPS_11: "0-6 (detractor)",
    Scale.CES_7: "1-2",
    Scale.SMILEY_4: "1",
}
_BOTTOM_TOP = {Scale.CSAT_5: 2, Scale.NPS_11: 6, Scale.CES_7: 2, Scale.SMILEY_4: 1}

#: The polarisation detector's defaults: the drop detector's, on the share of answers
#: that are not bottom-box (calibrated in docs/alerts.md).
POLARISATION = DropConfig(min_sd=0.2, threshold_scale=2.0)


@lru_cache(maxsize=64)
def drop_config_for(drop: DropConfig, scale: Scale, points: float) -> DropConfig:
    """Give the drop detector's configuration on a scale: the drop to detect is in points.

    Half a point is 0.125 of the 1-5 range and 0.05 of the 0-10 range; on a
    J-shaped touchpoint (a large spread) it is fewer standard deviations, so
    a detector tuned in standard deviations would look for a larger drop.
    """
    if drop.shift is not None:
        return drop
    return replace(drop, shift=points / (scale.high - scale.low))


def bottom_box(scale: Scale, score: int) -> bool:
    """Tell whether an answer is bottom-box: 1-2 on 1-5, a detractor (0-6) on 0-10."""
    return score <= _BOTTOM_TOP[scale]


# Target detection.


@dataclass(frozen=True)
class TargetConfig:
    """The KPI target of a touchpoint: a CSAT share (top-two boxes) between 0 and 1."""

    target: float | None = None
    #: One-sided 95 % confidence.
    z: float = 1.645
    min_sample: int = 30


def wilson_interval(successes: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion; sound for small n and shares near 0 or 1."""
    if n <= 0:
        return 0.0, 1.0
    share = successes / n
    denominator = 1 + z * z / n
    centre = (share + z * z / (2 * n)) / denominator
    spread = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - spread), min(1.0, centre + spread)


@dataclass(frozen=True)
class TargetVerdict:
    """Whether the share is confidently below target, and whether it is back on target."""

    breached: bool
    recovered: bool
    share: float | None
    upper: float


def target_verdict(successes: int, n: int, config: TargetConfig) -> TargetVerdict:
    """Judge a window's CSAT share against the target.

    Breached when the upper confidence bound is below the target; recovered
    (the hysteresis) only when the share itself is back at or above it.
    """
    _, upper = wilson_interval(successes, n, config.z)
    share = successes / n if n else None
    if config.target is None or n < config.min_sample or share is None:
        return TargetVerdict(breached=False, recovered=True, share=share, upper=upper)
    return TargetVerdict(
        breached=upper < config.target, recovered=share >= config.target, share=share, upper=upper
    )


# KPI (mean score) detection.

_NPS_PROMOTER = 9
_NPS_PASSIVE = 7


@dataclass(frozen=True)
class KpiConfig:
    """The KPI target of a touchpoint: a mean on its scale, or an NPS (-100..100) on nps-11."""

    target: float | None = None
    #: One-sided confidence of the upper bound.
    confidence: float = 0.95
    min_sample: int = 30


def kpi_value(scale: Scale, score: int) -> float:
    """One answer's contribution to the KPI: the score, or -100/0/100 on nps-11.

    The NPS is the mean of these values over the answers (promoters minus
    detractors, in points), so one bound serves both kinds of target.
    """
    if scale is Scale.NPS_11:
        if score >= _NPS_PROMOTER:
            return 100.0
        return 0.0 if score >= _NPS_PASSIVE else -100.0
    return float(score)


def kpi_top(scale: Scale) -> float:
    """Give the best value an answer can add to the KPI."""
    return 100.0 if scale is Scale.NPS_11 else float(scale.high)


@dataclass(frozen=True)
class KpiWindow:
    """Sums of the KPI values of the target window's answers."""

    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0


def student_t_quantile(probability: float, df: int) -> float:
    """Quantile of Student's t, by the Cornish-Fisher expansion around the normal.

    Abramowitz & Stegun 26.7.5; within 0.1 % of the exact quantile from 10
    degrees of freedom up (the detector never judges fewer than 30 answers).
    """
    z = NormalDist().inv_cdf(probability)
    nu = float(max(df, 1))
    return (
        z
        + (z**3 + z) / (4 * nu)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * nu**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * nu**3)
    )


def mean_upper_bound(window: KpiWindow, top: float, confidence: float) -> float:
    """One-sided upper confidence bound of the mean KPI value.

    Why this bound: scores are bounded, so their mean is close to normal
    already at a few dozen answers (Berry-Esseen: the error shrinks with the
    third moment, which a bounded score keeps small), and a Student-t bound is
    near its nominal level at the 30 answers the detector waits for. Bounds
    that hold at every n without that approximation (Hoeffding, empirical
    Bernstein) need about four times as many answers to show the same
    breach, so a touchpoint with a few answers a day would never be judged
    within its week. The t-bound's weak spot is a sample with little spread:
    thirty identical answers give an interval of width zero. The bound is
    therefore computed as if one more answer at the top of the scale had come
    in (a plus-one correction in the spirit of Wilson's interval): it errs on
    the side of the touchpoint, and fades as answers accumulate.
    """
    n = window.n + 1
    total = window.total + top
    mean = total / n
    variance = max(window.total_sq + top * top - n * mean * mean, 0.0) / (n - 1)
    return mean + student_t_quantile(confidence, n - 1) * math.sqrt(variance / n)


@dataclass(frozen=True)
class KpiVerdict:
    """Whether the mean KPI is confidently below target, and whether it is back on target."""

    breached: bool
    recovered: bool
    mean: float | None
    upper: float | None


def kpi_verdict(window: KpiWindow, top: float, config: KpiConfig) -> KpiVerdict:
    """Judge a window's mean KPI against the target.

    Breached when the upper confidence bound is below the target; recovered
    (the hysteresis) only when the mean itself is back at or above it.
    """
    mean = window.total / window.n if window.n else None
    if config.target is None or mean is None or window.n < config.min_sample:
        return KpiVerdict(breached=False, recovered=True, mean=mean, upper=None)
    upper = mean_upper_bound(window, top, config.confidence)
    return KpiVerdict(
        breached=upper < config.target, recovered=mean >= config.target, mean=mean, upper=upper
    )


# Silence detection.


@dataclass(frozen=True)
class SilenceConfig:
    """When too few answers, deliveries or contacts mean something broke."""

    #: Fire when observing this few is less likely than this under the expected rate.
    probability: float = 1e-4
    #: ... and the observed count is below this share of the expected one.
    collapse_ratio: float = 0.5
    #: Resolve when the observed count is back to this share of the expected one.
    recovered_ratio: float = 0.75
    #: Below this expected count, silence is no evidence at all.
    min_expected: float = 10.0


def poisson_cdf(observed: int, expected: float) -> float:
    """P(X <= observed) for X ~ Poisson(expected), summed in log space for large rates."""
    if observed < 0:
        return 0.0
    if expected <= 0:
        return 1.0
    log_term = -expected
    total = math.exp(log_term)
    for count in range(1, observed + 1):
        log_term += math.log(expected / count)
        total += math.exp(log_term)
    return min(total, 1.0)


@dataclass(frozen=True)
class SilenceVerdict:
    """Whether a signal has collapsed, and whether it is back."""

    silent: bool
    recovered: bool
    probability: float
    ratio: float | None


def silence_verdict(observed: int, expected: float, config: SilenceConfig) -> SilenceVerdict:
    """Compare an observed count with the expected one for the same window."""
    if expected < config.min_expected:
        return SilenceVerdict(silent=False, recovered=True, probability=1.0, ratio=None)
    probability = poisson_cdf(observed, expected)
    ratio = observed / expected
    return SilenceVerdict(
        silent=probability < config.probability and ratio < config.collapse_ratio,
        recovered=ratio >= config.recovered_ratio,
        probability=probability,
        ratio=ratio,
    )


# Alert lifecycle.


@dataclass(frozen=True)
class DetectorConfig:
    """Per-touchpoint configuration of all three detectors and their alerts."""

    drop: DropConfig = field(default_factory=DropConfig)
    #: The share of bottom-box answers against its own baseline: a drop that shows as
    #: more citizens failed completely rather than as a lower mean.
    polarisation: DropConfig = field(default_factory=lambda: POLARISATION)
    #: The drop to detect fastest, in points of the touchpoint's scale, unless ``drop``
    #: sets its own ``shift``.
    drop_points: float = 0.5
    target: TargetConfig = field(default_factory=TargetConfig)
    kpi: KpiConfig = field(default_factory=KpiConfig)
    silence: SilenceConfig = field(default_factory=SilenceConfig)
    #: A kind of alert never fires twice for a touchpoint within this time.
    cooldown: timedelta = timedelta(hours=6)
    #: A drop this many times the configured shift is critical rather than a warning.
    critical_factor: float = 2.0
    #: ``{touchpoint_id}`` is replaced; None leaves alerts without a link.
    dashboard_url: str | None = "/dashboard/touchpoints/{touchpoint_id}"


@dataclass(frozen=True)
class Tick:
    """Window counts the metrics stage hands to the detector on its schedule.

    A tick judges only what it carries. ``observed`` and ``expected`` are
    counts per signal (answers, deliveries, contacts) in the same recent
    window: silence is judged when there are any. ``rated`` and ``top_two``
    are the ratings and top-two answers of the target window, and ``kpi`` the
    sums of its KPI values: the CSAT share is judged when ``rated`` is given,
    the mean KPI when ``kpi`` is.
    """

    observed: Mapping[str, int] = field(default_factory=dict)
    expected: Mapping[str, float] = field(default_factory=dict)
    rated: int | None = None
    top_two: int = 0
    kpi: KpiWindow | None = None


@dataclass(frozen=True)
class Firing:
    """An alert that is firing now."""

    alert_id: str
    started_at: datetime
    severity: Severity


@dataclass(frozen=True)
class DetectorState:
    """Everything the detector keeps for one touchpoint."""

    touchpoint_id: str
    scale: Scale
    drop: DropState = field(default_factory=DropState)
    polarisation: DropState = field(default_factory=DropState)
    firing: Mapping[AlertKind, Firing] = field(default_factory=dict)
    last_fired: Mapping[AlertKind, datetime] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able form for a table's changelog."""
        return {
            "touchpoint_id": self.touchpoint_id,
            "scale": self.scale.value,
            "drop": self.drop.to_dict(),
            "polarisation": self.polarisation.to_dict(),
            "firing": {
                kind.value: [f.alert_id, f.started_at.isoformat(), f.severity.value]
                for kind, f in self.firing.items()
            },
            "last_fired": {kind.value: at.isoformat() for kind, at in self.last_fired.items()},
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DetectorState:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            touchpoint_id=raw["touchpoint_id"],
            scale=Scale(raw["scale"]),
            drop=DropState.from_dict(raw["drop"]),
            # A state from before the polarisation detector starts it afresh.
            polarisation=DropState.from_dict(raw.get("polarisation") or {"base_weight": 0.0}),
            firing={
                AlertKind(kind): Firing(alert_id, datetime.fromisoformat(at), Severity(sev))
                for kind, (alert_id, at, sev) in raw["firing"].items()
            },
            last_fired={
                AlertKind(kind): datetime.fromisoformat(at)
                for kind, at in raw["last_fired"].items()
            },
        )


def new_detector(touchpoint_id: str, scale: Scale) -> DetectorState:
    """Start detecting for a touchpoint with no history."""
    return DetectorState(touchpoint_id=touchpoint_id, scale=scale)


@dataclass(frozen=True)
class _Finding:
    kind: AlertKind
    fire: bool  # False: the condition is over
    severity: Severity
    before: float | None
    after: float | None
    target: float | None
    sample_size: int
    evidence: Evidence
    summary: str


def step(
    state: DetectorState, event: Rating | Tick, now: datetime, config: DetectorConfig
) -> tuple[DetectorState, list[ScoreDropAlert]]:
    """Advance one touchpoint's detector by a rating or a tick; return alerts to emit."""
    findings: list[_Finding] = []
    if isinstance(event, Rating):
        if event.touchpoint_id != state.touchpoint_id or event.scale is not state.scale:
            return state, []
        at = event.answered_at.timestamp()
        drop_config = drop_config_for(config.drop, state.scale, config.drop_points)
        drop, signal = update_drop(state.drop, event.normalised, at, drop_config)
        served = 0.0 if bottom_box(event.scale, event.score) else 1.0
        polarisation, polarised = update_drop(state.polarisation, served, at, config.polarisation)
        state = replace(state, drop=drop, polarisation=polarisation)
        if signal is not None:
            findings.append(_drop_finding(signal, state.scale, config))
        if polarised is not None:
            findings.append(_polarisation_finding(polarised, state.scale))
    else:
        findings.extend(_tick_findings(state, event, config))
    alerts: list[ScoreDropAlert] = []
    for finding in findings:
        state, alert = _transition(state, finding, now, config)
        if alert is not None:
            alerts.append(alert)
    return state, alerts


def _raw(scale: Scale, normalised: float) -> float:
    return scale.low + normalised * (scale.high - scale.low)


def _drop_finding(signal: DropSignal, scale: Scale, config: DetectorConfig) -> _Finding:
    before, after = _raw(scale, signal.baseline), _raw(scale, signal.recent)
    critical = (before - after) / (scale.high - scale.low) >= (
        config.critical_factor * config.drop.shift_sd * max(config.drop.min_sd, 0.2)
    )
    verb = "dropped" if signal.fired else "recovered"
    return _Finding(
        kind=AlertKind.DROP,
        fire=signal.fired,
        severity=Severity.CRITICAL if critical else Severity.WARNING,
        before=round(before, 3),
        after=round(after, 3),
        target=None,
        sample_size=signal.sample_size,
        evidence=Evidence(method="cusum", statistic=signal.statistic, threshold=signal.threshold),
        summary=f"mean score {verb}: {after:.2f} over the last {signal.sample_size} ratings "
        f"against a baseline of {before:.2f}",
    )


def _polarisation_finding(signal: DropSignal, scale: Scale) -> _Finding:
    # The detector sees the share of answers that are *not* bottom-box; the alert speaks
    # of the bottom-box share itself.
    before, after = 1.0 - signal.baseline, 1.0 - signal.recent
    verb = "rose" if signal.fired else "is back"
    return _Finding(
        kind=AlertKind.POLARISATION,
        fire=signal.fired,
        severity=Severity.WARNING,
        before=round(before, 3),
        after=round(after, 3),
        target=None,
        sample_size=signal.sample_size,
        evidence=Evidence(
            method="cusum-bottom-box", statistic=signal.statistic, threshold=signal.threshold
        ),
        summary=f"share of {BOTTOM_BOX[scale]} answers {verb}: {after:.0%} over the last "
        f"{signal.sample_size} ratings against a baseline of {before:.0%}",
    )


def _tick_findings(state: DetectorState, tick: Tick, config: DetectorConfig) -> list[_Finding]:
    findings = [
        _target_finding(state, tick.rated, tick.top_two, config),
        _kpi_finding(state, tick.kpi, config),
        _silence_finding(state, tick, config),
    ]
    return [finding for finding in findings if finding is not None]


def _target_finding(
    state: DetectorState, rated: int | None, top_two: int, config: DetectorConfig
) -> _Finding | None:
    if rated is None:
        return None
    target = target_verdict(top_two, rated, config.target)
    firing = AlertKind.TARGET_BREACH in state.firing
    if not (target.breached or (firing and target.recovered)):
        return None
    return _Finding(
        kind=AlertKind.TARGET_BREACH,
        fire=target.breached,
        severity=Severity.WARNING,
        before=None,
        after=target.share,
        target=config.target.target,
        sample_size=rated,
        evidence=Evidence(
            method="wilson-upper-bound", statistic=target.upper, threshold=config.target.target
        ),
        summary=f"CSAT share {target.share or 0:.0%} of {rated} ratings; "
        f"upper bound {target.upper:.0%} against a target of {config.target.target or 0:.0%}",
    )


def _kpi_finding(
    state: DetectorState, window: KpiWindow | None, config: DetectorConfig
) -> _Finding | None:
    if window is None or config.kpi.target is None:
        return None
    verdict = kpi_verdict(window, kpi_top(state.scale), config.kpi)
    firing = AlertKind.KPI_BREACH in state.firing
    if not (verdict.breached or (firing and verdict.recovered)):
        return None
    name = "NPS" if state.scale is Scale.NPS_11 else "mean score"
    mean = verdict.mean if verdict.mean is not None else 0.0
    bound = "" if verdict.upper is None else f"; upper bound {verdict.upper:.2f}"
    return _Finding(
        kind=AlertKind.KPI_BREACH,
        fire=verdict.breached,
        severity=Severity.WARNING,
        before=None,
        after=None if verdict.mean is None else round(verdict.mean, 3),
        target=config.kpi.target,
        sample_size=window.n,
        evidence=Evidence(
            method="student-t-upper-bound", statistic=verdict.upper, threshold=config.kpi.target
        ),
        summary=f"{name} {mean:.2f} over {window.n} ratings of the last week{bound} "
        f"against a KPI target of {config.kpi.target:g}",
    )


def _silence_finding(state: DetectorState, tick: Tick, config: DetectorConfig) -> _Finding | None:
    if not tick.observed:
        return None
    verdicts = {
        name: silence_verdict(observed, tick.expected.get(name, 0.0), config.silence)
        for name, observed in sorted(tick.observed.items())
    }
    silent = [name for name, verdict in verdicts.items() if verdict.silent]
    firing = AlertKind.SILENCE in state.firing
    if not (silent or (firing and all(v.recovered for v in verdicts.values()))):
        return None
    worst = min(verdicts, key=lambda name: verdicts[name].probability)
    verdict = verdicts[worst]
    expected = tick.expected.get(worst, 0.0)
    return _Finding(
        kind=AlertKind.SILENCE,
        fire=bool(silent),
        severity=Severity.CRITICAL,
        before=round(expected, 3),
        after=float(tick.observed[worst]),
        target=None,
        sample_size=tick.observed[worst],
        evidence=Evidence(
            method="poisson-lower-tail",
            statistic=verdict.ratio,
            probability=verdict.probability,
            threshold=config.silence.probability,
        ),
        summary=f"{', '.join(silent) or worst}: {tick.observed[worst]} observed "
        f"against {expected:.0f} expected",
    )


def _alert_id(touchpoint_id: str, kind: AlertKind, started_at: datetime) -> str:
    # Letters only: a run of digits would look like a phone number to scrubbers, and hex
    # could hold an identity code (engine.ids).
    return f"{kind.value}-{derived_id('alert', touchpoint_id, kind.value, started_at.isoformat())}"


def _transition(
    state: DetectorState, finding: _Finding, now: datetime, config: DetectorConfig
) -> tuple[DetectorState, ScoreDropAlert | None]:
    """Apply de-duplication, cool-down and hysteresis to one finding."""
    current = state.firing.get(finding.kind)
    if finding.fire:
        last = state.last_fired.get(finding.kind)
        if current is not None or (last is not None and now - last < config.cooldown):
            return state, None
        current = Firing(_alert_id(state.touchpoint_id, finding.kind, now), now, finding.severity)
        state = replace(
            state,
            firing={**state.firing, finding.kind: current},
            last_fired={**state.last_fired, finding.kind: now},
        )
        return state, _alert(state, finding, current, AlertState.FIRING, None, config)
    if current is None:
        return state, None
    firing = {kind: f for kind, f in state.firing.items() if kind is not finding.kind}
    state = replace(state, firing=firing)
    return state, _alert(state, finding, current, AlertState.RESOLVED, now, config)


def _alert(  # noqa: PLR0917 - private helper, called twice with all six in order
    state: DetectorState,
    finding: _Finding,
    firing: Firing,
    alert_state: AlertState,
    resolved_at: datetime | None,
    config: DetectorConfig,
) -> ScoreDropAlert:
    url = config.dashboard_url
    return ScoreDropAlert(
        alert_id=firing.alert_id,
        touchpoint_id=state.touchpoint_id,
        kind=finding.kind,
        state=alert_state,
        severity=firing.severity,
        started_at=firing.started_at,
        resolved_at=resolved_at,
        before=finding.before,
        after=finding.after,
        target=finding.target,
        sample_size=finding.sample_size,
        evidence=finding.evidence,
        summary=finding.summary[:500],
        dashboard_url=url.format(touchpoint_id=state.touchpoint_id) if url else None,
    )
