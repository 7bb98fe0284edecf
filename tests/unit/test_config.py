"""Configuration: the TOML file, PALAUTE_ variables, the catalogue and `palaute config`."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, time, timedelta
from pathlib import Path

import pytest

from palaute.commands.config import EXAMPLE_TOML
from schemas.base import Language, Scale, SurveyChannel
from schemas.config import (
    ConfigError,
    PolicyConfig,
    Settings,
    TouchpointConfig,
    load_settings,
    toml_path,
)

ROOT = Path(__file__).resolve().parents[2]
KEY_A = "a" * 40
KEY_B = "b" * 40
SECRETS = f'[secrets]\npseudonymisation_key = "{KEY_A}"\nlink_signing_key = "{KEY_B}"\n'


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in os.environ:
        if name.upper().startswith("PALAUTE_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "palaute.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> Settings:
    return load_settings(write(tmp_path, text))


def problems(tmp_path: Path, text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return {problem.path: problem.message for problem in caught.value.problems}


def test_the_example_configuration_loads() -> None:
    """The example is what new operators start from; it must work as shipped."""
    settings = load_settings(ROOT / "examples" / "palaute.toml")
    assert set(settings.touchpoints) == {
        "phone-service-helsinki",
        "health-centre-visit",
        "child-protection-meeting",
    }
    visit = settings.touchpoints["health-centre-visit"]
    assert visit.scale is Scale.NPS_11
    assert visit.send_window is not None
    assert visit.send_window.not_before == time(12, 0)
    assert settings.touchpoints["child-protection-meeting"].sensitive


def test_the_example_file_is_what_config_example_prints() -> None:
    """Two copies of the example would drift apart."""
    assert (ROOT / "examples" / "palaute.toml").read_text(encoding="utf-8") == EXAMPLE_TOML


def test_catalogue_entries_inherit_what_they_leave_out_from_defaults(tmp_path: Path) -> None:
    """Lowering defaults.sampling_rate must reach every touchpoint that does not override it."""
    settings = load(
        tmp_path,
        SECRETS + '[defaults]\nsampling_rate = 0.25\nexpiry = "2d"\n'
        '[touchpoints.a]\nexpiry = "1d"\n',
    )
    entry = settings.touchpoints["a"]
    assert entry.sampling_rate == 0.25
    assert entry.expiry == timedelta(days=1)


def test_unknown_touchpoint_gets_defaults_and_is_flagged(tmp_path: Path) -> None:
    """A new touchpoint must be surveyed (not dropped) and reported to the operator."""
    settings = load(tmp_path, SECRETS + "[defaults]\nsampling_rate = 0.5\n[touchpoints.known]\n")
    config, known = settings.touchpoint("never-configured")
    assert not known
    assert config.sampling_rate == 0.5
    assert settings.touchpoint("known")[1]


def test_environment_variables_override_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Secrets and per-host values come from the environment in production."""
    monkeypatch.setenv("PALAUTE_SECRETS__LINK_SIGNING_KEY", "c" * 40)
    monkeypatch.setenv("PALAUTE_KAFKA__BOOTSTRAP_SERVERS", "k1:9093, k2:9093")
    monkeypatch.setenv("PALAUTE_POLICY__MIN_AGE", "16")
    settings = load(tmp_path, SECRETS + "[policy]\nmin_age = 18\n")
    assert settings.secrets.link_signing_key.get_secret_value() == "c" * 40
    assert settings.kafka.bootstrap_servers == ["k1:9093", "k2:9093"]
    assert settings.policy.min_age == 16


def test_secrets_can_come_from_the_environment_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A container may have no file at all."""
    monkeypatch.setenv("PALAUTE_SECRETS__PSEUDONYMISATION_KEY", KEY_A)
    monkeypatch.setenv("PALAUTE_SECRETS__LINK_SIGNING_KEY", KEY_B)
    settings = load_settings(None)
    assert settings.policy.time_zone == "Europe/Helsinki"


def test_secrets_never_appear_in_repr_or_errors(tmp_path: Path) -> None:
    """Settings get logged at start-up; keys in a log are keys leaked."""
    secret_smtp = "smtp-password-value-123"
    settings = load(
        tmp_path,
        SECRETS + f'[smtp]\nhost = "mail.example.com"\nsender = "p@example.com"\n'
        f'username = "u"\npassword = "{secret_smtp}"\n',
    )
    shown = repr(settings) + str(settings)
    for secret in (KEY_A, KEY_B, secret_smtp):
        assert secret not in shown
    short = "short-secret-value"
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, f'[secrets]\npseudonymisation_key = "{short}"\nlink_signing_key = "x"\n')
    assert short not in str(caught.value)


@pytest.mark.parametrize(
    ("snippet", "path", "fragment"),
    [
        ('[kafka]\nsecurity_protocol = "SASL_SSL"\n', "kafka", "sasl_mechanism"),
        (
            '[kafka]\nsecurity_protocol = "SASL_SSL"\nsasl_mechanism = "SCRAM-SHA-512"\n',
            "kafka",
            "sasl_username",
        ),
        ('[kafka]\nbootstrap_servers = ["no-port"]\n', "kafka.bootstrap_servers[0]", "pattern"),
        ('[twilio]\naccount_sid = "AC1"\nauth_token = "abcdefgh"\n', "twilio.account_sid", ""),
        (
            '[twilio]\naccount_sid = "AC' + "0" * 32 + '"\nauth_token = "abcdefgh"\n',
            "twilio",
            "exactly one",
        ),
        ('[smtp]\nhost = "h"\nsender = "not an address"\n', "smtp.sender", "not valid"),
        (
            (
                '[smtp]\nhost = "mail.example.com"\nsender = "p@example.com"\n'
                'security = "none"\nusername = "u"\npassword = "p"\n'
            ),
            "smtp",
            "unencrypted",
        ),
        ('[web]\npublic_base_url = "http://palaute.example.fi"\n', "web.public_base_url", "https"),
        ("[policy]\nquiet_hours_start = 21\n", "policy.quiet_hours_start", "21:00"),
        ('[policy]\ntime_zone = "Europe/Helsingfors-not"\n', "policy.time_zone", "time zone"),
        ('[policy]\nholiday_country = "ZZ"\n', "policy", "holiday calendar"),
        ('[policy]\nmax_contact_age = "-5m"\n', "policy.max_contact_age", ""),
        ("[policy]\nfrequency_cap = 0\n", "policy.frequency_cap", ""),
        ("[defaults]\nsampling_rate = 1.5\n", "defaults.sampling_rate", ""),
        ('[touchpoints."tp.1"]\nscale = "stars-10"\n', 'touchpoints."tp.1".scale', ""),
        ('[touchpoints.a]\nquestions = { fi = "Hei" }\n', "touchpoints.a.questions", "sv, en"),
        (
            '[touchpoints.a.questions]\nfi = "{x}"\nsv = "s"\nen = "e"\n',
            "touchpoints.a.questions",
            "placeholders",
        ),
        ('[touchpoints.a]\nexpiry = "1h"\nreminder_delay = "2h"\n', "touchpoints.a", "reminder"),
        ('[touchpoints.a]\nscale = "csat-5"\nkpi_target = 6\n', "touchpoints.a", "1..5"),
        (
            '[touchpoints.a]\nchannel_preference = ["sms", "sms"]\n',
            "touchpoints.a.channel_preference",
            "twice",
        ),
        (
            "[touchpoints.a]\nsend_window = { not_before = 12:00:00, not_after = 11:00:00 }\n",
            "touchpoints.a.send_window",
            "not_after",
        ),
        (
            "[touchpoints.a]\nsend_window = { not_before = 22:00:00 }\n",
            "",
            "touchpoints.a",
        ),
        ("[touchpoints.a]\nsampling = 0.5\n", "touchpoints.a.sampling", "unknown setting"),
        ("[kafka]\nbootstrap = 1\n", "kafka.bootstrap", "unknown setting"),
    ],
)
def test_each_problem_is_reported_with_its_toml_path(
    tmp_path: Path, snippet: str, path: str, fragment: str
) -> None:
    """An operator must find the line to fix from the message alone."""
    found = problems(tmp_path, SECRETS + snippet)
    assert path in found, found
    assert fragment in found[path]


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    """One error per restart makes fixing a file an afternoon's work."""
    found = problems(
        tmp_path,
        "[policy]\nmin_age = -1\n[touchpoints.a]\nsampling_rate = 2\n",
    )
    assert {"secrets", "policy.min_age", "touchpoints.a.sampling_rate"} <= set(found)
    assert "required" in found["secrets"]


def test_identical_keys_are_refused(tmp_path: Path) -> None:
    """One leaked key must not give away both pseudonyms and link signatures."""
    found = problems(
        tmp_path, f'[secrets]\npseudonymisation_key = "{KEY_A}"\nlink_signing_key = "{KEY_A}"\n'
    )
    assert "must differ" in found["secrets"]


def test_unreadable_and_malformed_files_give_a_clear_error(tmp_path: Path) -> None:
    """A typo in TOML syntax must point at the line, not raise a traceback."""
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 2"):
        load(tmp_path, "[policy]\nmin_age = = 3\n")


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ('"90s"', timedelta(seconds=90)),
        ('"15m"', timedelta(minutes=15)),
        ('"2h"', timedelta(hours=2)),
        ('"30d"', timedelta(days=30)),
        ('"1w"', timedelta(weeks=1)),
        ('"PT15M"', timedelta(minutes=15)),
        ("600", timedelta(minutes=10)),
    ],
)
def test_durations_accept_short_and_iso_forms(
    tmp_path: Path, written: str, expected: timedelta
) -> None:
    """TOML has no duration type; operators write 15m, tooling writes PT15M."""
    settings = load(tmp_path, SECRETS + f"[defaults]\nsend_delay = {written}\n")
    assert settings.defaults.send_delay == expected


def test_questions_fill_in_the_scale_and_fall_back_to_finnish() -> None:
    """Northern Sámi is optional: a citizen preferring it gets the Finnish question."""
    touchpoint = TouchpointConfig(
        scale=Scale.CES_7,
        questions={
            Language.FI: "Kuinka helppoa asiointi oli ({low}-{high})?",
            Language.SV: "Hur lätt var det ({low}-{high})?",
            Language.EN: "How easy was it ({low}-{high})?",
        },
    )
    assert touchpoint.question(Language.EN).endswith("(1-7)?")
    assert touchpoint.language_for(Language.SE) is Language.FI
    assert touchpoint.language_for(Language.SV) is Language.SV
    assert touchpoint.channel_preference == [SurveyChannel.SMS, SurveyChannel.EMAIL]


@pytest.mark.parametrize(
    ("day", "holiday"),
    [
        (date(2025, 12, 6), True),  # itsenäisyyspäivä
        (date(2025, 6, 20), True),  # juhannusaatto
        (date(2025, 6, 21), True),  # juhannuspäivä
        (date(2026, 6, 20), True),  # juhannuspäivä moves with the calendar
        (date(2025, 12, 24), True),
        (date(2025, 12, 8), False),
        (date(2025, 6, 23), False),
    ],
)
def test_holiday_calendar_comes_from_the_holidays_package(day: date, holiday: bool) -> None:
    """Midsummer moves every year; a hand-written list would be wrong next June."""
    is_holiday = PolicyConfig().holiday_calendar()
    assert is_holiday(day) is holiday


def test_toml_path_quotes_keys_that_need_it() -> None:
    """Touchpoint ids may contain dots; the path must still point at one table."""
    assert toml_path(("touchpoints", "a.b", "scale")) == 'touchpoints."a.b".scale'
    assert toml_path(("kafka", "bootstrap_servers", 0)) == "kafka.bootstrap_servers[0]"


def palaute(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("PALAUTE_")}
    return subprocess.run(
        [sys.executable, "-m", "palaute", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**clean, **(env or {})},
    )


def test_config_check_accepts_the_example_with_a_summary(tmp_path: Path) -> None:
    """`config example > file && config check file` is the documented first step."""
    printed = palaute("config", "example")
    assert printed.returncode == 0
    path = write(tmp_path, printed.stdout)
    checked = palaute("config", "check", str(path))
    assert checked.returncode == 0, checked.stderr
    assert "ok" in checked.stdout
    assert "touchpoints in the catalogue: 3" in checked.stdout
    assert "development key" in checked.stdout
    assert "ingress.sources.crm-helsinki accepts the example's development key" in checked.stdout


def test_config_check_is_quiet_about_a_revoked_example_ingress_key(tmp_path: Path) -> None:
    """A revoked key lets no one in, so warning about it would only be noise."""
    printed = palaute("config", "example")
    revoked = printed.stdout.replace("revoked = false", "revoked = true")
    assert revoked != printed.stdout
    checked = palaute("config", "check", str(write(tmp_path, revoked)))
    assert checked.returncode == 0, checked.stderr
    assert "ingress.sources.crm-helsinki" not in checked.stdout


def test_config_check_lists_every_error_and_exits_1(tmp_path: Path) -> None:
    """Scripts and CI gate deployments on the exit status."""
    path = write(tmp_path, SECRETS + "[policy]\nmin_age = -1\n[touchpoints.a]\nscale = 1\n")
    checked = palaute("config", "check", str(path))
    assert checked.returncode == 1
    assert "policy.min_age" in checked.stderr
    assert "touchpoints.a.scale" in checked.stderr
    assert KEY_A not in checked.stderr + checked.stdout
