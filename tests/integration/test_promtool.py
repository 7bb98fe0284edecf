"""Prometheus config, rules and rule tests pass promtool; the Alertmanager example, amtool.

promtool comes with the Debian package ``prometheus`` and amtool with
``prometheus-alertmanager``; .ci/run installs both. A missing tool fails the
test: a skipped check would let broken alert rules ship.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "ops/prometheus"
CONFIG = PROMETHEUS / "prometheus.yml"
RULES = PROMETHEUS / "rules/palaute.rules.yml"
RULE_TESTS = PROMETHEUS / "tests/palaute.rules.test.yml"
ALERTMANAGER = ROOT / "ops/alertmanager/alertmanager.yml"


def tool(name: str, package: str) -> str:
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
    )
    if found is None:
        pytest.fail(
            f"{name} is not installed: apt-get install {package} (Debian package {package})",
            pytrace=False,
        )
    return found


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in args], capture_output=True, text=True, timeout=120, check=False
    )


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run(tool("promtool", "prometheus"), *args)


def amtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run(tool("amtool", "prometheus-alertmanager"), *args)


def test_prometheus_config_is_valid() -> None:
    """A config Prometheus refuses would leave Palaute unwatched."""
    result = promtool("check", "config", CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rules_are_valid() -> None:
    """A rule file with a syntax error is dropped whole by Prometheus."""
    result = promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 13 rules found" in result.stdout


def test_rule_unit_tests_pass() -> None:
    """Each alert fires on its series and stays quiet on the ones that must not fire it."""
    result = promtool("test", "rules", RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def copy_prometheus_dir(tmp_path: Path) -> Path:
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS, copy)
    return copy


def test_rule_unit_tests_fail_on_a_wrong_expectation(tmp_path: Path) -> None:
    """Proves the rule tests can fail: expecting the wrong touchpoint must not pass."""
    copy = copy_prometheus_dir(tmp_path)
    tests = copy / "tests/palaute.rules.test.yml"
    text = tests.read_text(encoding="utf-8")
    wrong = text.replace("              touchpoint: tp-low\n", "              touchpoint: tp-few\n")
    assert wrong != text
    tests.write_text(wrong, encoding="utf-8")
    result = promtool("test", "rules", tests)
    assert result.returncode != 0
    assert "TouchpointScoreBelowTarget" in result.stdout + result.stderr


def test_rule_unit_tests_fail_when_the_minimum_count_guard_is_removed(tmp_path: Path) -> None:
    """Proves the must-not-fire series bite: without the guard, 10 ratings would page."""
    copy = copy_prometheus_dir(tmp_path)
    rules = copy / "rules/palaute.rules.yml"
    text = rules.read_text(encoding="utf-8")
    unguarded = text.replace(":freshest >= 30)", ":freshest >= 0)")
    assert unguarded != text
    rules.write_text(unguarded, encoding="utf-8")
    result = promtool("test", "rules", copy / "tests/palaute.rules.test.yml")
    assert result.returncode != 0
    assert "tp-few" in result.stdout + result.stderr


def test_rule_check_fails_on_broken_promql(tmp_path: Path) -> None:
    """Proves the syntax check can fail, so its success above means something."""
    broken = tmp_path / "broken.rules.yml"
    broken.write_text(
        "groups:\n  - name: x\n    rules:\n      - alert: Broken\n"
        "        expr: sum by (touchpoint (palaute_alert_firing)\n",
        encoding="utf-8",
    )
    result = promtool("check", "rules", broken)
    assert result.returncode != 0


def test_alertmanager_example_is_valid() -> None:
    """The example must load in Alertmanager as shipped."""
    result = amtool("check-config", ALERTMANAGER)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alertmanager_check_fails_on_an_unknown_receiver(tmp_path: Path) -> None:
    """Proves amtool rejects a broken config, so its success above means something."""
    broken = tmp_path / "alertmanager.yml"
    text = ALERTMANAGER.read_text(encoding="utf-8")
    broken.write_text(text.replace("receiver: ops-webhook", "receiver: nobody"), encoding="utf-8")
    result = amtool("check-config", broken)
    assert result.returncode != 0


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["severity=critical", "alertname=PalauteAgentStalled"], "ops-webhook,ops-email"),
        (["severity=warning", "alertname=PalauteConsumerLagHigh"], "ops-email"),
        (["severity=info", "alertname=PalauteAlertFiring"], "ops-email"),
    ],
)
def test_alerts_route_by_severity(labels: list[str], receivers: str) -> None:
    """Critical alerts must reach the on-call webhook as well as the ops mailbox."""
    result = amtool("config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers


def test_a_missing_tool_fails_with_the_package_to_install() -> None:
    """A missing promtool must fail the suite, never skip it, and say how to get it."""
    with pytest.raises(pytest.fail.Exception, match="apt-get install prometheus"):
        tool("promtool-that-is-not-installed", "prometheus")
