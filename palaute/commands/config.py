"""``palaute config check FILE`` and ``palaute config example``.

``check`` loads a configuration exactly as a worker does at start-up (the
file plus ``PALAUTE_`` variables), so a file that passes here starts there.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.sms_budget import sms_over_budget
from schemas.config import ENV_PREFIX, ConfigError, Settings, load_settings
from schemas.config_reference import reference_markdown

if TYPE_CHECKING:
    import argparse
    from datetime import timedelta

#: Development-only keys of the example; ``check`` warns when a file still uses them.
EXAMPLE_PSEUDONYMISATION_KEY = "dev-only-pseudonymisation-key-change-me-0001"
EXAMPLE_LINK_SIGNING_KEY = "dev-only-link-signing-key-change-me-00000002"
# SHA-256 of "dev-only-ingress-key-crm-helsinki-change-me-0003", the example's ingress key.
EXAMPLE_INGRESS_KEY_SHA256 = "2d48a0efdd8ba07d6237e1e1903cabeebd1d1d39594bbc754b07826ab58e7245"

EXAMPLE_TOML = f"""\
# Palaute configuration. Check it with:  palaute config check palaute.toml
#
# Every setting can also come from the environment, which wins over this file:
# PALAUTE_<SECTION>__<KEY>, e.g. PALAUTE_SMTP__PASSWORD or
# PALAUTE_SECRETS__LINK_SIGNING_KEY. Keep secrets there in production.
# Durations: "90s", "15m", "2h", "30d", "1w" or ISO 8601 ("PT15M").

[kafka]
bootstrap_servers = ["127.0.0.1:9092"]
client_id = "palaute"
# Production clusters: TLS, usually with SASL.
security_protocol = "PLAINTEXT"   # PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
# ssl_cafile = "/etc/palaute/kafka-ca.pem"
# sasl_mechanism = "SCRAM-SHA-512"  # PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 | OAUTHBEARER
# sasl_username = "palaute"
# sasl_password: set PALAUTE_KAFKA__SASL_PASSWORD

[twilio]
# The local Twilio simulator; in production use your account and leave out api_base_url.
account_sid = "AC00000000000000000000000000000000"
auth_token = "dev-only-simulator-token"   # production: PALAUTE_TWILIO__AUTH_TOKEN
messaging_service_sid = "MG00000000000000000000000000000000"   # or from_number = "+358..."
api_base_url = "http://127.0.0.1:8081"

[smtp]
host = "127.0.0.1"
port = 8025
security = "none"        # starttls | tls | none (none only without credentials, or on localhost)
sender = "palaute@example.com"
sender_name = "Palaute"
# username = "palaute"
# password: set PALAUTE_SMTP__PASSWORD

[web]
# Links in messages and Twilio callbacks point here; https outside localhost.
public_base_url = "http://127.0.0.1:8080"

[ingress]
# HTTP event ingress (POST /v1/contacts of `palaute web`) for systems that cannot
# speak Kafka. One entry per source system: the SHA-256 of its API key (make one
# with `palaute web new-key SYSTEM`; the key itself is shown once and never stored)
# and the CloudEvents source values it may send. revoked = true refuses the key.
max_body_bytes = 1048576
max_batch_events = 500
requests_per_second = 20          # per source system, with bursts of up to ...
burst = 100

# DEVELOPMENT ONLY: the key is "dev-only-ingress-key-crm-helsinki-change-me-0003".
[ingress.sources.crm-helsinki]
key_sha256 = "2d48a0efdd8ba07d6237e1e1903cabeebd1d1d39594bbc754b07826ab58e7245"
event_sources = ["/crm/helsinki-contact-centre"]
revoked = false

[secrets]
# DEVELOPMENT ONLY. Production: random keys of 32+ characters in
# PALAUTE_SECRETS__PSEUDONYMISATION_KEY and PALAUTE_SECRETS__LINK_SIGNING_KEY.
pseudonymisation_key = "{EXAMPLE_PSEUDONYMISATION_KEY}"
link_signing_key = "{EXAMPLE_LINK_SIGNING_KEY}"

[streams]
app_id = "palaute"                # the consumer group; workers with one app_id share the work
data_dir = "palaute-data"         # table stores; a persistent volume in production
partitions = 8                    # of internal topics and changelogs: the most workers that help
replication_factor = 1            # 3 on a production cluster

[policy]
frequency_cap = 1                 # surveys per citizen ...
frequency_cap_window = "30d"      # ... within this time, across all touchpoints
max_contact_age = "24h"           # later events (after an outage) are skipped, not sent late
quiet_hours_start = 21:00:00      # in the citizen's time zone
quiet_hours_end = 08:00:00
time_zone = "Europe/Helsinki"
# Public holidays (from the holidays package): "quiet-all-day" moves a send to the
# next day that is not a holiday; "next-working-day" also skips weekends; "ignore".
holiday_handling = "quiet-all-day"
holiday_country = "FI"
respect_non_disclosure = true     # turvakielto: never contacted
min_age = 18                      # 0 turns the age limit off
survey_unknown_age = true
skip_sensitive_touchpoints = true
episode_window = "30d"            # a follow-up of a surveyed contact is not surveyed again
episode_scope = "service"         # service | touchpoint
supersede_pending = true          # a newer contact replaces a survey not yet sent

[opendata]
# The public feed /open/v1/scores.json, .csv and embed.html of `palaute web`.
# A touchpoint with fewer answers in the period is listed without figures.
min_answers = 10
days = 30
publisher = "Palaute"

[defaults]
# For touchpoints missing from the catalogue below (they are surveyed and reported),
# and for every field a catalogue entry leaves out.
scale = "csat-5"                  # csat-5 | nps-11 | ces-7 | smiley-4
channel_preference = ["sms", "email"]
send_delay = "10m"
sampling_rate = 1.0
expiry = "3d"

[defaults.questions]
fi = "Kuinka tyytyväinen olit saamaasi palveluun?"
sv = "Hur nöjd var du med servicen du fick?"
en = "How satisfied were you with the service?"

[defaults.organisation]
# Who asks: named first in every SMS and in every email and answer page, so that
# a survey is not taken for phishing. A touchpoint may have its own organisation.
# Every SMS must fit one segment (palaute config check counts): a long name can have
# a shorter one for the SMS, e.g. sms_name = {{ fi = "Helsinki", sv = "Helsingfors" ... }}.
name = {{ fi = "Helsingin kaupunki", sv = "Helsingfors stad", en = "City of Helsinki" }}
# The privacy notice: one address, or {{ fi = "...", sv = "...", en = "..." }}.
privacy_url = "https://palaute.example.fi/tietosuoja"
# logo_url = "https://palaute.example.fi/logo.svg"      # email and answer page
# End each SMS with how to stop: "Lopetus: LOPETA", "Avsluta: SLUTA", "To stop: STOP".
stop_word_in_sms = true
# sms_sender_id = "Helsinki"      # Twilio alphanumeric sender ID (no SMS replies), or
# messaging_service_sid = "MG..." # a Messaging Service of its own

[touchpoints.phone-service-helsinki]
name = "Puhelinpalvelu"
# The service as every SMS, email and answer page names it, in the citizen's language.
service = {{ fi = "Puhelinpalvelu", sv = "Telefontjänsten", en = "Phone service" }}
send_delay = "5m"
sampling_rate = 0.5
reminder_delay = "1d"
kpi_target = 4.2

[touchpoints.phone-service-helsinki.questions]
fi = "Miten onnistuimme puhelussa?"
sv = "Hur lyckades vi under samtalet?"
en = "How did we do on the call?"

[touchpoints.health-centre-visit]
name = "Terveysaseman vastaanotto"
# A shorter name of the service for the SMS (at most 30 characters), so that it fits
# one segment; the email and the answer page name the [...service] below.
sms_name = {{ fi = "Terveysasema", sv = "Hälsostation", en = "Health centre" }}
scale = "nps-11"
# As wellbeing services areas do: the next day after 12:00.
send_window = {{ days_after = 1, not_before = 12:00:00 }}
kpi_target = 30                   # NPS
follow_up_statements = ["Sain ajan riittävän nopeasti."]

[touchpoints.health-centre-visit.questions]
fi = "Kuinka todennäköisesti suosittelisit meitä?"
sv = "Hur troligt är det att du rekommenderar oss?"
en = "How likely are you to recommend us?"

[touchpoints.health-centre-visit.service]
fi = "Terveysaseman vastaanotto"
sv = "Mottagning vid hälsostationen"
en = "Health centre appointment"

[touchpoints.child-protection-meeting]
name = "Lastensuojelun tapaaminen"
sensitive = true                  # never surveyed; the questions come from [defaults]
"""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``config`` and its subcommands."""
    config = subparsers.add_parser("config", help="check and show configuration")
    actions = config.add_subparsers(dest="action", metavar="ACTION", required=True)

    check = actions.add_parser(
        "check",
        help="validate a configuration file",
        description="Validate a TOML configuration together with the PALAUTE_ environment "
        "variables, as a worker would at start-up. Prints every problem with its path; "
        "exits 1 when there is one.",
    )
    check.add_argument("file", metavar="FILE", type=Path, help="TOML configuration file")
    check.set_defaults(handler=_check)

    example = actions.add_parser("example", help="print a commented example configuration")
    example.set_defaults(handler=_example)

    reference = actions.add_parser(
        "reference", help="print the reference of every setting (docs/configuration.md)"
    )
    reference.set_defaults(handler=_reference)


def _reference(_args: argparse.Namespace) -> int:
    sys.stdout.write(reference_markdown())
    return 0


def _example(_args: argparse.Namespace) -> int:
    sys.stdout.write(EXAMPLE_TOML)
    return 0


def _warnings(settings: Settings) -> list[str]:
    warnings = []
    keys = settings.secrets
    if keys.pseudonymisation_key.get_secret_value() == EXAMPLE_PSEUDONYMISATION_KEY:
        warnings.append(
            "secrets.pseudonymisation_key is the example's development key; set "
            f"{ENV_PREFIX}SECRETS__PSEUDONYMISATION_KEY in production"
        )
    if keys.link_signing_key.get_secret_value() == EXAMPLE_LINK_SIGNING_KEY:
        warnings.append(
            "secrets.link_signing_key is the example's development key; set "
            f"{ENV_PREFIX}SECRETS__LINK_SIGNING_KEY in production"
        )
    for system, source in settings.ingress.sources.items():
        if source.key_sha256 == EXAMPLE_INGRESS_KEY_SHA256 and not source.revoked:
            warnings.append(
                f"ingress.sources.{system} accepts the example's development key; "
                "make a new one with `palaute web new-key`"
            )
    if settings.twilio is None:
        warnings.append("no [twilio] section: surveys go by email only")
    if settings.smtp is None:
        warnings.append("no [smtp] section: surveys go by SMS only")
    if settings.twilio is None and settings.smtp is None:
        warnings.append("neither [twilio] nor [smtp]: no survey can be sent")
    if settings.twilio is not None:
        warnings.extend(sms_over_budget(settings))
    entries = {"defaults": settings.defaults} | {
        f"touchpoints.{key}": entry for key, entry in settings.touchpoints.items()
    }
    unnamed = [where for where, entry in entries.items() if entry.organisation is None]
    if unnamed:
        warnings.append(
            f"no organisation for {', '.join(unnamed)}: messages name only [dispatch] "
            "organisation and link no privacy notice; set [defaults.organisation]"
        )
    return warnings


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _summary(settings: Settings) -> list[str]:
    policy = settings.policy
    defaults = settings.defaults
    kafka = settings.kafka
    catalogue = ", ".join(sorted(settings.touchpoints)) or "-"
    sensitive = sorted(tid for tid, tp in settings.touchpoints.items() if tp.sensitive)
    channels = [
        name
        for name, section in (("sms", settings.twilio), ("email", settings.smtp))
        if section is not None
    ]
    quiet = f"{policy.quiet_hours_start:%H:%M}-{policy.quiet_hours_end:%H:%M}"
    return [
        f"touchpoints in the catalogue: {len(settings.touchpoints)} ({catalogue})",
        (
            f"unknown touchpoints: surveyed with [defaults] (scale {defaults.scale.value}, "
            f"sampling {defaults.sampling_rate:g}) and reported"
        ),
        f"sensitive, never surveyed: {', '.join(sensitive) or '-'}",
        f"kafka: {', '.join(kafka.bootstrap_servers)} ({kafka.security_protocol})",
        f"channels: {', '.join(channels) or '-'}",
        (
            f"quiet hours: {quiet} {policy.time_zone}; holidays: {policy.holiday_handling} "
            f"({policy.holiday_country})"
        ),
        f"frequency cap: {policy.frequency_cap} per {_duration(policy.frequency_cap_window)}",
    ]


def _check(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.file)
    except ConfigError as error:
        print(f"{error.source}: {len(error.problems)} problem(s)", file=sys.stderr)
        for problem in error.problems:
            print(f"  error: {problem}", file=sys.stderr)
        return 1
    print(f"{args.file}: ok")
    for line in _summary(settings):
        print(f"  {line}")
    for warning in _warnings(settings):
        print(f"  warning: {warning}")
    return 0
