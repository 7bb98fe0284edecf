"""Every Prometheus metric of Palaute, on one registry, behind small typed functions.

Stages call the functions at the bottom of this module (``observe_metrics``,
``count_event``, ``agent_progress`` …); the web service serves :func:`render`
with :data:`CONTENT_TYPE`. The metrics live on a dedicated
:class:`~prometheus_client.CollectorRegistry` rather than the global one, so
that tests and several apps in one process never collide over a metric name.

Two promises hold for every label (docs/metrics.md lists each metric with its
labels and bound):

* **bounded cardinality** — fixed labels take enum values only; free ones
  (touchpoint, roll-up key, window, topic, partition, agent, reason code, error
  kind) pass a :class:`LabelBudget` that admits a capped number of distinct
  values. Past the cap a counter folds into ``other`` and a gauge is not
  written (the figure of an arbitrary folded touchpoint would be a lie);
  either way ``palaute_label_values_folded_total`` counts it.
* **no personal data** — a free label value must match the Identifier pattern
  of the schemas (which already refuses ``@``, ``+`` and spaces) and must not
  hold anything ``phonenumbers`` recognises as a phone number; otherwise it
  is folded into ``invalid``.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final

import phonenumbers
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from schemas.alerts import AlertState, ScoreDropAlert
from schemas.base import Scale, SurveyChannel
from schemas.metrics import Dimension, TouchpointMetrics

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime, timedelta

    from schemas.surveys import SkipReason

#: The media type of :func:`render`'s output, for the web service's response.
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

#: Where values past a label's cap go.
OTHER: Final = "other"
#: Where values that are not safe identifiers go.
INVALID: Final = "invalid"
#: The label value of "not applicable" (a skipped survey may have no channel).
NONE: Final = "none"

# The Identifier pattern of schemas.base, compiled once: a label value must be an id.
_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")
_IDENTIFIER_MAX = 128


class Stage(StrEnum):
    """The stages that count events and dead letters."""

    INTAKE = "intake"
    SCHEDULER = "scheduler"
    DISPATCHER = "dispatcher"
    RESPONSES = "responses"
    METRICS = "metrics"
    DETECTOR = "detector"
    NOTIFIER = "notifier"
    WEB = "web"


class Outcome(StrEnum):
    """What became of one input event in a stage."""

    OK = "ok"
    DUPLICATE = "duplicate"  # an idempotent replay, recognised and ignored
    RETRIED = "retried"  # set aside for another attempt
    DEAD_LETTERED = "dead-lettered"


class SurveyOutcome(StrEnum):
    """The decisions and ends of a survey's life."""

    SCHEDULED = "scheduled"
    SKIPPED = "skipped"
    SENT = "sent"
    FAILED = "failed"
    EXPIRED = "expired"


class FoldReason(StrEnum):
    """Why a label value was replaced."""

    OVER_CAP = "over-cap"
    NOT_AN_IDENTIFIER = "not-an-identifier"


@dataclass(frozen=True)
class Limits:
    """How many distinct values each free label may take in one process."""

    touchpoints: int = 500
    rollup_keys: int = 100
    windows: int = 16
    topics: int = 50
    partitions: int = 1024
    agents: int = 100
    reason_codes: int = 100
    error_kinds: int = 50


def is_safe_label_value(value: str) -> bool:
    """Tell whether a value may appear in a label: an identifier holding no phone number.

    Identifiers cannot hold ``@`` or ``+``, which rules out email addresses and
    international numbers; ``phonenumbers`` catches national forms such as
    ``0401234567`` that the pattern alone would let through.
    """
    if len(value) > _IDENTIFIER_MAX or not _IDENTIFIER.fullmatch(value):
        return False
    return not any(phonenumbers.PhoneNumberMatcher(value, "FI"))


class LabelBudget:
    """Admit at most ``limit`` distinct values of one label; fold the rest.

    The first values seen keep their place for the life of the process, so a
    series never changes its label under a dashboard. Declaring the
    configured catalogue first (:meth:`declare`) gives its ids the places.
    """

    def __init__(self, label: str, limit: int, folded: Counter) -> None:
        if limit < 1:
            raise ValueError(f"the {label} label needs a limit of at least 1")
        self.label = label
        self.limit = limit
        self._admitted: set[str] = set()
        self._folded = folded

    def admit(self, value: str) -> str | None:
        """Return the value to use, or None when it must be folded (and count the fold)."""
        if value in self._admitted:
            return value
        if not is_safe_label_value(value):
            self._folded.labels(label=self.label, reason=FoldReason.NOT_AN_IDENTIFIER).inc()
            return None
        if len(self._admitted) >= self.limit:
            self._folded.labels(label=self.label, reason=FoldReason.OVER_CAP).inc()
            return None
        self._admitted.add(value)
        return value

    def fold(self, value: str) -> str:
        """Return the value, ``other`` past the cap, or ``invalid`` when it is unsafe."""
        admitted = self.admit(value)
        if admitted is not None:
            return admitted
        return OTHER if is_safe_label_value(value) else INVALID

    def declare(self, values: Iterable[str]) -> None:
        """Reserve places for known values (the touchpoint catalogue) ahead of traffic."""
        for value in values:
            self.admit(value)

    def __len__(self) -> int:
        return len(self._admitted)


@dataclass(frozen=True)
class _FiringLabels:
    touchpoint: str
    kind: str
    severity: str


def _remove(gauge: Gauge, *labels: str) -> None:
    """Remove a child series; an absent one is already what we want."""
    with contextlib.suppress(KeyError):
        gauge.remove(*labels)


def _set_or_remove(gauge: Gauge, value: float | None, *labels: str) -> None:
    """Write a figure, or remove its series when the window has none (no stale figure)."""
    if value is None:
        _remove(gauge, *labels)
    else:
        gauge.labels(*labels).set(value)


def _normalise(scale: Scale, mean: float) -> float:
    return (mean - scale.low) / (scale.high - scale.low)


_TW = ("touchpoint", "window")
_RW = ("dimension", "key", "window")


class Telemetry:
    """The metric families of one Palaute process and the state behind them."""

    def __init__(self, limits: Limits | None = None, *, process_metrics: bool = True) -> None:
        self.limits = limits or Limits()
        self.registry = CollectorRegistry(auto_describe=True)
        if process_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        self.folded = Counter(
            "palaute_label_values_folded",
            "Label values replaced by 'other' (over the cap) or 'invalid' (not an id).",
            ("label", "reason"),
            registry=self.registry,
        )
        limit = self.limits
        self.touchpoints = LabelBudget("touchpoint", limit.touchpoints, self.folded)
        self.rollup_keys = LabelBudget("key", limit.rollup_keys, self.folded)
        self.windows = LabelBudget("window", limit.windows, self.folded)
        self.topics = LabelBudget("topic", limit.topics, self.folded)
        self.partitions = LabelBudget("partition", limit.partitions, self.folded)
        self.agents = LabelBudget("agent", limit.agents, self.folded)
        self.reason_codes = LabelBudget("reason_code", limit.reason_codes, self.folded)
        self.error_kinds = LabelBudget("error_kind", limit.error_kinds, self.folded)
        self._define_figures()
        self._define_health()
        self._firing: dict[str, _FiringLabels] = {}
        self._progress: dict[str, datetime] = {}

    def _gauge(self, name: str, documentation: str, labels: tuple[str, ...]) -> Gauge:
        return Gauge(name, documentation, labels, registry=self.registry)

    def _counter(self, name: str, documentation: str, labels: tuple[str, ...]) -> Counter:
        return Counter(name, documentation, labels, registry=self.registry)

    def _define_figures(self) -> None:
        """Families fed by TouchpointMetrics, KPI targets and the detector's alerts."""
        gauge = self._gauge
        self.score_mean = gauge(
            "palaute_touchpoint_score_mean",
            "Mean raw score in the window, on the touchpoint's own scale.",
            _TW,
        )
        self.score_normalised = gauge(
            "palaute_touchpoint_score_normalised_ratio",
            "Mean score mapped onto 0..1, comparable across scales.",
            _TW,
        )
        self.csat = gauge(
            "palaute_touchpoint_csat_ratio",
            "Share of ratings in the top two boxes of the scale.",
            _TW,
        )
        self.nps = gauge(
            "palaute_touchpoint_net_promoter_score",
            "Net promoter score (-100..100), for touchpoints on the nps-11 scale.",
            _TW,
        )
        self.kpi_score = gauge(
            "palaute_touchpoint_kpi_score",
            "The figure the KPI target is set on: the mean score, or the NPS on nps-11.",
            _TW,
        )
        self.ratings = gauge(
            "palaute_touchpoint_ratings_in_window",
            "Ratings counted in the window (one per survey).",
            _TW,
        )
        self.sent_in_window = gauge(
            "palaute_touchpoint_surveys_sent_in_window", "Surveys sent in the window.", _TW
        )
        self.response_ratio = gauge(
            "palaute_touchpoint_response_ratio", "Ratings per survey sent in the window.", _TW
        )
        self.median_answer = gauge(
            "palaute_touchpoint_median_answer_seconds",
            "Median time from sending a survey to its answer.",
            _TW,
        )
        self.as_of = gauge(
            "palaute_touchpoint_metrics_as_of_timestamp_seconds",
            "When the window's figures were computed (Unix time); the freshest wins.",
            _TW,
        )
        self.kpi_target = gauge(
            "palaute_touchpoint_kpi_target",
            "Configured KPI target, on the same terms as palaute_touchpoint_kpi_score.",
            ("touchpoint",),
        )
        self.rollup_normalised = gauge(
            "palaute_rollup_score_normalised_ratio",
            "Mean normalised score of a channel or service roll-up.",
            _RW,
        )
        self.rollup_ratings = gauge(
            "palaute_rollup_ratings_in_window",
            "Ratings counted in the window of a channel or service roll-up.",
            _RW,
        )
        self.rollup_response_ratio = gauge(
            "palaute_rollup_response_ratio",
            "Ratings per survey sent in the window of a channel or service roll-up.",
            _RW,
        )
        self.alert_firing = gauge(
            "palaute_alert_firing",
            "Alerts of the detector now firing (the series goes when none is left).",
            ("touchpoint", "kind", "severity"),
        )

    def _define_health(self) -> None:
        """Families that tell whether Palaute itself works."""
        counter = self._counter
        self.events = counter(
            "palaute_events_processed",
            "Input events handled by a stage, by what became of them.",
            ("stage", "outcome"),
        )
        self.dead_letters = counter(
            "palaute_dead_letters",
            "Records written to the dead-letter topic.",
            ("stage", "reason_code"),
        )
        self.stage_retries = counter(
            "palaute_stage_retries",
            "Attempts at a record that met a transient error (Kafka or a provider away) and "
            "were retried, by stage and error class.",
            ("stage", "error_class"),
        )
        self.refetches = counter(
            "palaute_stream_refetches",
            "Stream partitions read again from their committed offset: records had been "
            "fetched and never handed to an agent (see streams.runtime.overrides.refetch).",
            ("topic",),
        )
        self.surveys = counter(
            "palaute_surveys",
            "Survey decisions and ends: scheduled, skipped (with reason), sent, failed, expired.",
            ("outcome", "reason", "channel"),
        )
        self.dispatch_attempts = counter(
            "palaute_dispatch_attempts",
            "Calls to an SMS or email provider to send a survey.",
            ("channel",),
        )
        self.dispatch_failures = counter(
            "palaute_dispatch_failures",
            "Provider calls that did not send (retriable or not).",
            ("channel", "error_kind"),
        )
        self.consumer_lag = self._gauge(
            "palaute_consumer_lag_records",
            "Records in a partition not yet processed by this process's consumer.",
            ("topic", "partition"),
        )
        self.agent_last_progress = self._gauge(
            "palaute_agent_last_progress_timestamp_seconds",
            "Last time (Unix) an agent finished a record or an idle tick.",
            ("agent",),
        )

    # Rolling figures.

    def declare_touchpoints(self, touchpoint_ids: Iterable[str]) -> None:
        """Reserve label places for the configured catalogue before traffic arrives."""
        self.touchpoints.declare(touchpoint_ids)

    def observe_metrics(self, m: TouchpointMetrics) -> None:
        """Publish one window's figures; a figure the window lacks is removed, not kept."""
        window = self.windows.admit(m.window)
        if window is None:
            return
        normalised = None if m.mean is None else _normalise(m.scale, m.mean)
        if m.dimension is not Dimension.TOUCHPOINT:
            key = self.rollup_keys.admit(m.key)
            if key is None:
                return
            rollup = (m.dimension.value, key, window)
            _set_or_remove(self.rollup_normalised, normalised, *rollup)
            self.rollup_ratings.labels(*rollup).set(m.count)
            _set_or_remove(self.rollup_response_ratio, m.response_rate, *rollup)
            return
        touchpoint = self.touchpoints.admit(m.key)
        if touchpoint is None:
            return
        labels = (touchpoint, window)
        _set_or_remove(self.score_mean, m.mean, *labels)
        _set_or_remove(self.score_normalised, normalised, *labels)
        _set_or_remove(self.csat, m.csat_share, *labels)
        _set_or_remove(self.nps, m.nps, *labels)
        _set_or_remove(self.kpi_score, m.nps if m.scale is Scale.NPS_11 else m.mean, *labels)
        self.ratings.labels(*labels).set(m.count)
        self.sent_in_window.labels(*labels).set(m.surveys_sent)
        _set_or_remove(self.response_ratio, m.response_rate, *labels)
        _set_or_remove(self.median_answer, m.median_answer_seconds, *labels)
        self.as_of.labels(*labels).set(m.as_of.timestamp())

    def forget_touchpoint(self, touchpoint_id: str) -> None:
        """Drop a touchpoint's figures, e.g. when its partition moves to another worker.

        Without this a worker keeps exporting the last figures of partitions it
        no longer owns; the recording rules prefer the freshest as a backstop.
        """
        families = (
            self.score_mean,
            self.score_normalised,
            self.csat,
            self.nps,
            self.kpi_score,
            self.ratings,
            self.sent_in_window,
            self.response_ratio,
            self.median_answer,
            self.as_of,
        )
        for family in families:
            windows = {
                sample.labels["window"]
                for metric in family.collect()
                for sample in metric.samples
                if sample.labels.get("touchpoint") == touchpoint_id
            }
            for window in windows:
                _remove(family, touchpoint_id, window)

    def set_kpi_target(self, touchpoint_id: str, target: float | None) -> None:
        """Publish (or, with None, withdraw) a touchpoint's configured KPI target."""
        touchpoint = self.touchpoints.admit(touchpoint_id)
        if touchpoint is not None:
            _set_or_remove(self.kpi_target, target, touchpoint)

    # Alerts.

    def observe_alert(self, a: ScoreDropAlert) -> None:
        """Count a firing alert under its labels; take it away again when it resolves."""
        previous = self._firing.pop(a.alert_id, None)
        if previous is not None:
            self._publish_firing(previous)
        if a.state is AlertState.FIRING:
            labels = _FiringLabels(
                touchpoint=self.touchpoints.fold(a.touchpoint_id),
                kind=a.kind.value,
                severity=a.severity.value,
            )
            self._firing[a.alert_id] = labels
            self._publish_firing(labels)

    def _publish_firing(self, labels: _FiringLabels) -> None:
        """Set the count of alerts firing under these labels; remove the series at zero."""
        count = sum(1 for firing in self._firing.values() if firing == labels)
        values = (labels.touchpoint, labels.kind, labels.severity)
        if count:
            self.alert_firing.labels(*values).set(count)
        else:
            _remove(self.alert_firing, *values)

    # Pipeline health.

    def count_event(self, stage: Stage, outcome: Outcome) -> None:
        """Count one input event of a stage by what became of it."""
        self.events.labels(stage=stage.value, outcome=outcome.value).inc()

    def record_dead_letter(self, stage: Stage, reason_code: str) -> None:
        """Count a record sent to the dead-letter topic, by stage and reason code."""
        reason = self.reason_codes.fold(reason_code)
        self.dead_letters.labels(stage=stage.value, reason_code=reason).inc()

    def record_stage_retry(self, stage: Stage, error_class: str) -> None:
        """Count a transient failure of a stage that will be retried, by the error's class."""
        kind = self.reason_codes.fold(error_class)
        self.stage_retries.labels(stage=stage.value, error_class=kind).inc()

    def record_survey(
        self,
        outcome: SurveyOutcome,
        channel: SurveyChannel | None,
        reason: SkipReason | None = None,
    ) -> None:
        """Count a survey decision or end; only a skip has a reason."""
        if (reason is not None) != (outcome is SurveyOutcome.SKIPPED):
            raise ValueError("a skip reason goes with the skipped outcome, and only with it")
        self.surveys.labels(
            outcome=outcome.value,
            reason=NONE if reason is None else reason.value,
            channel=NONE if channel is None else channel.value,
        ).inc()

    def record_dispatch_attempt(self, channel: SurveyChannel) -> None:
        """Count a provider call: the denominator of the failure ratio."""
        self.dispatch_attempts.labels(channel=channel.value).inc()

    def record_dispatch_failure(self, channel: SurveyChannel, error_kind: str) -> None:
        """Count a provider call that did not send, by the connector's error kind."""
        kind = self.error_kinds.fold(error_kind)
        self.dispatch_failures.labels(channel=channel.value, error_kind=kind).inc()

    def count_refetch(self, topic: str) -> None:
        """Count a stream partition read again after records were lost on the way."""
        topic_label = self.topics.admit(topic)
        if topic_label is not None:
            self.refetches.labels(topic=topic_label).inc()

    def set_consumer_lag(self, topic: str, partition: int, lag: int) -> None:
        """Publish how far this consumer is behind on one partition."""
        if partition < 0 or lag < 0:
            raise ValueError("partition and lag are never negative")
        topic_label = self.topics.admit(topic)
        partition_label = self.partitions.admit(str(partition))
        if topic_label is not None and partition_label is not None:
            self.consumer_lag.labels(topic=topic_label, partition=partition_label).set(lag)

    def retain_consumer_lag(self, owned: Iterable[tuple[str, int]]) -> None:
        """Remove the lag of every partition not in ``owned`` (topic, partition).

        After a rebalance another worker publishes the lag of a partition this
        one gave up; a last figure left here would keep a lag alert firing
        for records this worker will never read.
        """
        keep = {(topic, str(partition)) for topic, partition in owned}
        published = {
            (sample.labels["topic"], sample.labels["partition"])
            for metric in self.consumer_lag.collect()
            for sample in metric.samples
        }
        for topic, partition in published - keep:
            _remove(self.consumer_lag, topic, partition)

    def agent_progress(self, name: str, now: datetime) -> None:
        """Note that an agent finished a record (or an idle tick) at ``now``."""
        agent = self.agents.fold(name)
        self._progress[agent] = now
        self.agent_last_progress.labels(agent=agent).set(now.timestamp())

    def stalled_agents(self, now: datetime, max_age: timedelta) -> list[str]:
        """Name the agents whose last progress is older than ``max_age``, for /health."""
        return sorted(agent for agent, last in self._progress.items() if now - last > max_age)

    # Exposition.

    def render(self) -> bytes:
        """Render every metric in the Prometheus text format (see :data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)

    def metric_names(self) -> frozenset[str]:
        """Give every sample name the registry can expose, for checks of rules and dashboards."""
        suffixes = {
            "counter": ("_total", "_created"),
            "gauge": ("",),
            "histogram": ("_bucket", "_count", "_sum", "_created"),
            "summary": ("", "_count", "_sum", "_created"),
            "info": ("_info",),
        }
        return frozenset(
            family.name + suffix
            for family in self.registry.collect()
            for suffix in suffixes.get(family.type, ("",))
        )


_current = Telemetry()


def configure(limits: Limits | None = None) -> Telemetry:
    """Replace the process's telemetry at start-up, e.g. with a larger touchpoint cap."""
    global _current  # noqa: PLW0603 - one telemetry per process, replaced only at start-up
    _current = Telemetry(limits)
    return _current


def current() -> Telemetry:
    """Return the process's telemetry (its registry is what /metrics serves)."""
    return _current


def declare_touchpoints(touchpoint_ids: Iterable[str]) -> None:
    """Reserve label places for the configured catalogue (see :class:`LabelBudget`)."""
    _current.declare_touchpoints(touchpoint_ids)


def observe_metrics(m: TouchpointMetrics) -> None:
    """Publish one window's figures of a touchpoint or roll-up."""
    _current.observe_metrics(m)


def forget_touchpoint(touchpoint_id: str) -> None:
    """Drop the figures of a touchpoint this process no longer owns."""
    _current.forget_touchpoint(touchpoint_id)


def set_kpi_target(touchpoint_id: str, target: float | None) -> None:
    """Publish a touchpoint's KPI target (None withdraws it)."""
    _current.set_kpi_target(touchpoint_id, target)


def observe_alert(a: ScoreDropAlert) -> None:
    """Track a firing or resolved alert of the detector."""
    _current.observe_alert(a)


def count_event(stage: Stage, outcome: Outcome) -> None:
    """Count one input event of a stage."""
    _current.count_event(stage, outcome)


def record_dead_letter(stage: Stage, reason_code: str) -> None:
    """Count a dead-lettered record."""
    _current.record_dead_letter(stage, reason_code)


def record_stage_retry(stage: Stage, error_class: str) -> None:
    """Count a transient failure of a stage that is being retried."""
    _current.record_stage_retry(stage, error_class)


def record_survey(
    outcome: SurveyOutcome, channel: SurveyChannel | None, reason: SkipReason | None = None
) -> None:
    """Count a survey decision or end."""
    _current.record_survey(outcome, channel, reason)


def record_dispatch_attempt(channel: SurveyChannel) -> None:
    """Count a provider call."""
    _current.record_dispatch_attempt(channel)


def record_dispatch_failure(channel: SurveyChannel, error_kind: str) -> None:
    """Count a provider call that did not send."""
    _current.record_dispatch_failure(channel, error_kind)


def count_refetch(topic: str) -> None:
    """Count a stream partition read again from its committed offset."""
    _current.count_refetch(topic)


def set_consumer_lag(topic: str, partition: int, lag: int) -> None:
    """Publish a partition's consumer lag."""
    _current.set_consumer_lag(topic, partition, lag)


def retain_consumer_lag(owned: Iterable[tuple[str, int]]) -> None:
    """Remove the consumer lag of partitions this process no longer owns."""
    _current.retain_consumer_lag(owned)


def agent_progress(name: str, now: datetime) -> None:
    """Note an agent's progress at ``now``."""
    _current.agent_progress(name, now)


def stalled_agents(now: datetime, max_age: timedelta) -> list[str]:
    """Name the agents without progress for longer than ``max_age``."""
    return _current.stalled_agents(now, max_age)


def render() -> bytes:
    """Render the process's metrics for /metrics."""
    return _current.render()
