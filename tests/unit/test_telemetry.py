"""Palaute's Prometheus metrics: values, labels, bounds, privacy, and who reads the names."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import prometheus_client
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from connectors import telemetry
from connectors.telemetry import Limits, Outcome, Stage, SurveyOutcome, Telemetry
from schemas.alerts import AlertKind, AlertState, ScoreDropAlert, Severity
from schemas.base import SurveyChannel
from schemas.metrics import TouchpointMetrics
from schemas.samples import SAMPLES, TOUCHPOINT_ID
from schemas.surveys import SkipReason

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "ops/prometheus/rules/palaute.rules.yml"
DASHBOARD = ROOT / "ops/grafana/dashboards/palaute.json"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def tele() -> Telemetry:
    return Telemetry(process_metrics=False)


def samples(tele: Telemetry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Parse the rendered text as Prometheus would, keyed by sample name and labels."""
    parsed = text_string_to_metric_families(tele.render().decode())
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in parsed
        for sample in family.samples
    }


def value(tele: Telemetry, name: str, **labels: str) -> float | None:
    return samples(tele).get((name, frozenset(labels.items())))


def series(tele: Telemetry, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (sample, labels) in samples(tele) if sample == name]


def metrics(now: datetime = NOW, **changes: Any) -> TouchpointMetrics:
    sample = SAMPLES["touchpoint-metrics"](now)
    return TouchpointMetrics.model_validate({**sample.model_dump(), **changes})


def alert(now: datetime = NOW, **changes: Any) -> ScoreDropAlert:
    sample = SAMPLES["score-drop-alert"](now)
    return ScoreDropAlert.model_validate({**sample.model_dump(), **changes})


# Rolling figures.


def test_touchpoint_figures_are_exported_per_touchpoint_and_window(tele: Telemetry) -> None:
    """Dashboards and the KPI rule read these exact figures of the metrics topic."""
    m = metrics()
    tele.observe_metrics(m)
    labels = {"touchpoint": TOUCHPOINT_ID, "window": m.window}
    assert value(tele, "palaute_touchpoint_score_mean", **labels) == pytest.approx(m.mean)
    assert value(tele, "palaute_touchpoint_kpi_score", **labels) == pytest.approx(m.mean)
    assert value(tele, "palaute_touchpoint_score_normalised_ratio", **labels) == pytest.approx(
        (4.21 - 1) / 4
    )
    assert value(tele, "palaute_touchpoint_csat_ratio", **labels) == pytest.approx(m.csat_share)
    assert value(tele, "palaute_touchpoint_ratings_in_window", **labels) == m.count
    assert value(tele, "palaute_touchpoint_surveys_sent_in_window", **labels) == m.surveys_sent
    assert value(tele, "palaute_touchpoint_response_ratio", **labels) == pytest.approx(
        m.response_rate
    )
    assert value(tele, "palaute_touchpoint_median_answer_seconds", **labels) == 540.0
    assert value(
        tele, "palaute_touchpoint_metrics_as_of_timestamp_seconds", **labels
    ) == pytest.approx(NOW.timestamp())
    assert series(tele, "palaute_touchpoint_net_promoter_score") == []


def test_nps_touchpoint_is_judged_on_its_nps(tele: Telemetry) -> None:
    """A KPI target on an nps-11 touchpoint is an NPS, so the KPI score must be one too."""
    tele.observe_metrics(metrics(scale="nps-11", mean=7.9, nps=12.5, csat_share=None))
    labels = {"touchpoint": TOUCHPOINT_ID, "window": "24h"}
    assert value(tele, "palaute_touchpoint_net_promoter_score", **labels) == 12.5
    assert value(tele, "palaute_touchpoint_kpi_score", **labels) == 12.5
    assert value(tele, "palaute_touchpoint_score_mean", **labels) == pytest.approx(7.9)


def test_a_window_without_ratings_removes_its_mean_instead_of_keeping_a_stale_one(
    tele: Telemetry,
) -> None:
    """A stale mean on an emptied window would keep a breached touchpoint looking fine."""
    tele.observe_metrics(metrics())
    tele.observe_metrics(
        metrics(count=0, mean=None, distribution={}, csat_share=None, response_rate=0.0)
    )
    labels = {"touchpoint": TOUCHPOINT_ID, "window": "24h"}
    assert value(tele, "palaute_touchpoint_score_mean", **labels) is None
    assert value(tele, "palaute_touchpoint_kpi_score", **labels) is None
    assert value(tele, "palaute_touchpoint_ratings_in_window", **labels) == 0


def test_rollups_are_exported_under_their_dimension(tele: Telemetry) -> None:
    """Channel and service roll-ups must not pose as touchpoints in the KPI rule."""
    tele.observe_metrics(metrics(dimension="channel", key="sms"))
    assert series(tele, "palaute_touchpoint_score_mean") == []
    assert value(
        tele, "palaute_rollup_ratings_in_window", dimension="channel", key="sms", window="24h"
    ) == (42)


def test_kpi_target_is_exported_and_can_be_withdrawn(tele: Telemetry) -> None:
    """The target line and the KPI rule follow the configuration, including its removal."""
    tele.set_kpi_target(TOUCHPOINT_ID, 4.0)
    assert value(tele, "palaute_touchpoint_kpi_target", touchpoint=TOUCHPOINT_ID) == 4.0
    tele.set_kpi_target(TOUCHPOINT_ID, None)
    assert series(tele, "palaute_touchpoint_kpi_target") == []


def test_forgetting_a_touchpoint_removes_all_its_windows_only(tele: Telemetry) -> None:
    """A worker that lost a partition must stop exporting its figures, and only those."""
    tele.observe_metrics(metrics(window="24h"))
    tele.observe_metrics(metrics(window="7d"))
    tele.observe_metrics(metrics(key="library-kallio"))
    tele.forget_touchpoint(TOUCHPOINT_ID)
    assert {s["touchpoint"] for s in series(tele, "palaute_touchpoint_kpi_score")} == {
        "library-kallio"
    }


# Alerts.


def test_firing_alert_is_a_gauge_and_resolving_removes_it(tele: Telemetry) -> None:
    """Alertmanager mirrors the detector through this gauge; a resolved alert must go."""
    firing = alert()
    tele.observe_alert(firing)
    labels = {"touchpoint": TOUCHPOINT_ID, "kind": "drop", "severity": "warning"}
    assert value(tele, "palaute_alert_firing", **labels) == 1
    tele.observe_alert(alert(state=AlertState.RESOLVED, resolved_at=NOW + timedelta(hours=2)))
    assert series(tele, "palaute_alert_firing") == []


def test_alerts_sharing_labels_are_counted_and_resolved_one_by_one(tele: Telemetry) -> None:
    """Two firing alerts with the same labels must not hide each other."""
    tele.observe_alert(alert(alert_id="a-1"))
    tele.observe_alert(alert(alert_id="a-2"))
    tele.observe_alert(alert(alert_id="a-1"))  # a replay of the same event
    labels = {"touchpoint": TOUCHPOINT_ID, "kind": "drop", "severity": "warning"}
    assert value(tele, "palaute_alert_firing", **labels) == 2
    tele.observe_alert(alert(alert_id="a-1", state=AlertState.RESOLVED))
    assert value(tele, "palaute_alert_firing", **labels) == 1


def test_an_alert_that_changes_severity_moves_to_its_new_labels(tele: Telemetry) -> None:
    """A re-graded alert must not stay firing under its old severity."""
    tele.observe_alert(alert())
    tele.observe_alert(alert(severity=Severity.CRITICAL, kind=AlertKind.DROP))
    assert series(tele, "palaute_alert_firing") == [
        {"touchpoint": TOUCHPOINT_ID, "kind": "drop", "severity": "critical"}
    ]


# Pipeline health.


def test_pipeline_counters_count_by_their_labels(tele: Telemetry) -> None:
    """The health rules divide and sum these counters by exactly these labels."""
    tele.count_event(Stage.INTAKE, Outcome.OK)
    tele.count_event(Stage.INTAKE, Outcome.OK)
    tele.count_event(Stage.INTAKE, Outcome.DEAD_LETTERED)
    tele.record_dead_letter(Stage.INTAKE, "invalid-json")
    tele.record_survey(SurveyOutcome.SKIPPED, None, SkipReason.FREQUENCY_CAP)
    tele.record_survey(SurveyOutcome.SENT, SurveyChannel.SMS)
    tele.record_dispatch_attempt(SurveyChannel.SMS)
    tele.record_dispatch_failure(SurveyChannel.SMS, "provider-unavailable")
    tele.set_consumer_lag("palaute.contacts.v1", 3, 120)
    tele.count_refetch("palaute.vault.v1")
    tele.count_refetch("palaute.vault.v1")
    got = samples(tele)

    def total(name: str, **labels: str) -> float:
        return got[(name, frozenset(labels.items()))]

    assert total("palaute_events_processed_total", stage="intake", outcome="ok") == 2
    assert total("palaute_events_processed_total", stage="intake", outcome="dead-lettered") == 1
    assert total("palaute_dead_letters_total", stage="intake", reason_code="invalid-json") == 1
    assert total("palaute_stream_refetches_total", topic="palaute.vault.v1") == 2
    assert (
        total("palaute_surveys_total", outcome="skipped", reason="frequency-cap", channel="none")
        == 1
    )
    assert total("palaute_surveys_total", outcome="sent", reason="none", channel="sms") == 1
    assert total("palaute_dispatch_attempts_total", channel="sms") == 1
    assert (
        total("palaute_dispatch_failures_total", channel="sms", error_kind="provider-unavailable")
        == 1
    )
    assert total("palaute_consumer_lag_records", topic="palaute.contacts.v1", partition="3") == 120


def test_retaining_the_owned_partitions_removes_the_lag_of_every_other(tele: Telemetry) -> None:
    """A lag left behind after a rebalance would keep the lag alert firing on the wrong worker."""
    lag = "palaute_consumer_lag_records"
    tele.set_consumer_lag("palaute.contacts.v1", 0, 40)
    tele.set_consumer_lag("palaute.contacts.v1", 1, 7)
    tele.set_consumer_lag("palaute.responses.v1", 0, 0)
    tele.retain_consumer_lag([("palaute.contacts.v1", 1), ("palaute.responses.v1", 0)])
    assert value(tele, lag, topic="palaute.contacts.v1", partition="0") is None
    assert value(tele, lag, topic="palaute.contacts.v1", partition="1") == 7
    assert value(tele, lag, topic="palaute.responses.v1", partition="0") == 0
    # Retaining a partition never published does not invent a figure for it.
    tele.retain_consumer_lag([("palaute.surveys.v1", 5), ("palaute.contacts.v1", 1)])
    assert series(tele, lag) == [{"topic": "palaute.contacts.v1", "partition": "1"}]
    tele.retain_consumer_lag([])
    assert series(tele, lag) == []
    # A partition assigned back is published again.
    tele.set_consumer_lag("palaute.contacts.v1", 0, 3)
    assert value(tele, lag, topic="palaute.contacts.v1", partition="0") == 3


def test_a_skip_reason_goes_with_the_skipped_outcome_only(tele: Telemetry) -> None:
    """A sent survey with a skip reason would make the survey accounting lie."""
    with pytest.raises(ValueError, match="skip reason"):
        tele.record_survey(SurveyOutcome.SENT, SurveyChannel.SMS, SkipReason.OPTED_OUT)
    with pytest.raises(ValueError, match="skip reason"):
        tele.record_survey(SurveyOutcome.SKIPPED, None)


def test_agent_progress_is_a_timestamp_and_stalled_agents_are_named(tele: Telemetry) -> None:
    """Faust agents stall after days: /metrics and /health must both show which one."""
    tele.agent_progress("intake", NOW - timedelta(minutes=30))
    tele.agent_progress("scheduler", NOW - timedelta(seconds=20))
    assert value(
        tele, "palaute_agent_last_progress_timestamp_seconds", agent="intake"
    ) == pytest.approx((NOW - timedelta(minutes=30)).timestamp())
    assert tele.stalled_agents(NOW, timedelta(minutes=10)) == ["intake"]
    tele.agent_progress("intake", NOW)
    assert tele.stalled_agents(NOW, timedelta(minutes=10)) == []


# Bounds and privacy.


def test_touchpoints_beyond_the_cap_are_not_exported_and_are_counted() -> None:
    """An unbounded touchpoint label would grow Prometheus's memory without limit."""
    tele = Telemetry(Limits(touchpoints=3), process_metrics=False)
    for n in range(5):
        tele.observe_metrics(metrics(key=f"tp-{n}"))
    exported = {s["touchpoint"] for s in series(tele, "palaute_touchpoint_kpi_score")}
    assert exported == {"tp-0", "tp-1", "tp-2"}
    assert (
        value(tele, "palaute_label_values_folded_total", label="touchpoint", reason="over-cap") == 2
    )


def test_alerts_on_touchpoints_beyond_the_cap_fold_into_other() -> None:
    """A folded touchpoint's alert must still be seen, under touchpoint="other"."""
    tele = Telemetry(Limits(touchpoints=1), process_metrics=False)
    tele.set_kpi_target("tp-first", 4.0)
    tele.observe_alert(alert(touchpoint_id="tp-late"))
    assert series(tele, "palaute_alert_firing") == [
        {"touchpoint": "other", "kind": "drop", "severity": "warning"}
    ]


def test_declared_catalogue_keeps_its_places_before_traffic() -> None:
    """Stray ids from bad events must not crowd the configured touchpoints out."""
    tele = Telemetry(Limits(touchpoints=2), process_metrics=False)
    tele.declare_touchpoints(["tp-a", "tp-b"])
    tele.observe_metrics(metrics(key="tp-stray"))
    tele.observe_metrics(metrics(key="tp-b"))
    assert {s["touchpoint"] for s in series(tele, "palaute_touchpoint_kpi_score")} == {"tp-b"}


@pytest.mark.parametrize(
    "unsafe",
    ["0401234567", "358401234567", "tp-040-1234567", "maija@example.com", "+358401234567", ""],
)
def test_values_that_are_not_safe_identifiers_never_reach_a_label(unsafe: str) -> None:
    """Phone numbers and addresses must never be stored in Prometheus."""
    tele = Telemetry(process_metrics=False)
    tele.record_dead_letter(Stage.INTAKE, unsafe)
    tele.record_dispatch_failure(SurveyChannel.SMS, unsafe)
    tele.observe_alert(alert(touchpoint_id="tp-ok"))
    tele.agent_progress(unsafe, NOW)
    tele.set_consumer_lag(unsafe, 0, 5)
    text = tele.render().decode()
    assert "@" not in text
    assert "+358" not in text
    assert "1234567" not in text
    assert value(tele, "palaute_dead_letters_total", stage="intake", reason_code="invalid") == 1
    assert series(tele, "palaute_consumer_lag_records") == []


def test_no_sample_event_leaks_contact_details_into_the_output(tele: Telemetry) -> None:
    """The sample contact carries a phone number and an address; nothing of them may show."""
    tele.observe_metrics(SAMPLES["touchpoint-metrics"](NOW))  # type: ignore[arg-type]
    tele.observe_alert(SAMPLES["score-drop-alert"](NOW))  # type: ignore[arg-type]
    contact = SAMPLES["contact-completed"](NOW)
    tele.declare_touchpoints([contact.data.touchpoint.id])  # type: ignore[attr-defined]
    text = tele.render().decode()
    assert "@" not in text
    assert "+358" not in text


# Naming and isolation.


def palaute_families(tele: Telemetry) -> list[Any]:
    return [f for f in tele.registry.collect() if f.name.startswith("palaute_")]


def test_names_follow_prometheus_conventions(tele: Telemetry) -> None:
    """Base units and _total suffixes let anyone read a metric without the docs."""
    for family in palaute_families(tele):
        exposed = family.name + ("_total" if family.type == "counter" else "")
        assert re.fullmatch(r"palaute_[a-z0-9_]+", exposed), exposed
        assert not re.search(r"_(ms|milliseconds|minutes|hours|percent|bytes_kb)(_|$)", exposed)
        if family.type == "gauge":
            assert not exposed.endswith("_total"), exposed
        if "timestamp" in exposed or "seconds" in exposed:
            assert exposed.endswith("_seconds"), exposed


def test_every_process_has_its_own_registry() -> None:
    """Tests and several apps in one process must not collide over metric names."""
    first = Telemetry(process_metrics=False)
    second = Telemetry(process_metrics=False)
    first.count_event(Stage.WEB, Outcome.OK)
    assert value(second, "palaute_events_processed_total", stage="web", outcome="ok") is None
    global_names = {f.name for f in prometheus_client.REGISTRY.collect()}
    assert not any(name.startswith("palaute_") for name in global_names)


@pytest.fixture
def fresh_current() -> Iterator[Telemetry]:
    before = telemetry.current()
    yield telemetry.configure(Limits(touchpoints=10))
    telemetry._current = before


def test_module_functions_feed_the_configured_telemetry(fresh_current: Telemetry) -> None:
    """Stages call the module functions; /metrics must show what they recorded."""
    telemetry.observe_metrics(metrics())
    telemetry.agent_progress("intake", NOW)
    text = telemetry.render().decode()
    assert fresh_current.limits.touchpoints == 10
    assert f'palaute_touchpoint_kpi_score{{touchpoint="{TOUCHPOINT_ID}",window="24h"}}' in text
    assert telemetry.stalled_agents(NOW + timedelta(hours=1), timedelta(minutes=10)) == ["intake"]
    assert telemetry.CONTENT_TYPE.startswith("text/plain")


def test_module_lag_functions_feed_the_configured_telemetry(fresh_current: Telemetry) -> None:
    """The worker's idle check calls the module functions; the removal must reach /metrics."""
    telemetry.set_consumer_lag("palaute.contacts.v1", 0, 12)
    telemetry.set_consumer_lag("palaute.contacts.v1", 1, 4)
    telemetry.retain_consumer_lag([("palaute.contacts.v1", 1)])
    lag = series(fresh_current, "palaute_consumer_lag_records")
    assert lag == [{"topic": "palaute.contacts.v1", "partition": "1"}]


def test_every_metric_is_documented() -> None:
    """docs/metrics.md is the contract for dashboards others build; it must not drift."""
    doc = (ROOT / "docs/metrics.md").read_text(encoding="utf-8")
    for family in palaute_families(Telemetry(process_metrics=False)):
        exposed = family.name + ("_total" if family.type == "counter" else "")
        assert f"`{exposed}`" in doc, f"{exposed} is missing from docs/metrics.md"


# Consumers of the names: the rules and the dashboard.

_NOT_METRICS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
}


def metric_names_in(expr: str) -> set[str]:
    """Find the metric names a PromQL expression (or Grafana variable query) reads."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\$\{?\w+\}?", "", text)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"label_values\(\s*([A-Za-z_:][\w:]*)\s*,\s*\w+\s*\)", r"\1", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][\w:]*", text):
        before = text[match.start() - 1] if match.start() else " "
        if before.isalnum() or before in "._":
            continue  # the exponent of a number such as 1e3
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group() not in _NOT_METRICS:
            names.add(match.group())
    return names


def rule_groups() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    groups: list[dict[str, Any]] = loaded["groups"]
    return groups


def recorded_names() -> set[str]:
    return {
        rule["record"] for group in rule_groups() for rule in group["rules"] if "record" in rule
    }


def known_names() -> set[str]:
    return set(Telemetry().metric_names()) | recorded_names() | {"up"}


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    exprs += [var["definition"] for var in dashboard["templating"]["list"]]
    return exprs


def test_the_name_finder_sees_names_and_skips_the_rest() -> None:
    """If the finder missed names, the checks below would pass on a broken dashboard."""
    expr = (
        'sum by (stage, outcome) (rate(palaute_nope_total{stage=~"$stage"}[$__rate_interval]))'
        " / on (stage) group_left max by (stage) (other:rec) > 1e3 and time() - up"
    )
    assert metric_names_in(expr) == {"palaute_nope_total", "other:rec", "up"}
    assert metric_names_in("label_values(palaute_x, touchpoint)") == {"palaute_x"}


def test_rules_read_only_metrics_that_telemetry_defines() -> None:
    """A renamed metric must fail here, not silently blind an alert in production."""
    known = known_names()
    exprs = [rule["expr"] for group in rule_groups() for rule in group["rules"]]
    assert exprs
    for expr in exprs:
        assert metric_names_in(expr) <= known, expr


def test_dashboard_reads_only_metrics_that_telemetry_defines() -> None:
    """A renamed metric must fail here, not leave an empty panel on the ops screen."""
    known = known_names()
    exprs = dashboard_expressions()
    assert len(exprs) > 10
    for expr in exprs:
        names = metric_names_in(expr)
        assert names, expr
        assert names <= known, f"{expr} reads {sorted(names - known)}"


def test_dashboard_uses_the_provisioned_datasource() -> None:
    """A panel on another data source uid shows nothing in the provisioned Grafana."""
    provisioned = yaml.safe_load(
        (ROOT / "ops/grafana/provisioning/datasources/prometheus.yml").read_text(encoding="utf-8")
    )
    uid = provisioned["datasources"][0]["uid"]
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels
    assert all(p["datasource"]["uid"] == uid for p in panels)
    assert all(t["datasource"]["uid"] == uid for p in panels for t in p["targets"])


def test_every_alert_has_severity_annotations_and_a_runbook_section() -> None:
    """An alert without a runbook leaves the person on call guessing."""
    runbook = (ROOT / "docs/runbook.md").read_text(encoding="utf-8")
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in runbook.splitlines()
        if line.startswith("## ")
    }
    alerts = [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]
    assert len(alerts) == 7
    for rule in alerts:
        severity = rule.get("labels", {}).get("severity")
        assert severity in {"info", "warning", "critical"} or "severity" in rule["expr"]
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]
        anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
        assert anchor == rule["alert"].lower()
        assert anchor in anchors, f"docs/runbook.md has no section {rule['alert']}"
