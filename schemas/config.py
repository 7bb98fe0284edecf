"""Configuration: one TOML file plus ``PALAUTE_``-prefixed environment variables.

Environment variables win over the file (``PALAUTE_SMTP__PASSWORD`` sets
``[smtp] password``), so secrets can stay out of the file. Everything is
validated once at start-up and every problem is reported together, each with
its TOML path, because an operator fixing a file one error per restart loses
an afternoon. Secrets are ``SecretStr``: they never appear in a repr, a log
line or an error message.

The touchpoint catalogue is here too. A touchpoint that is not in the
catalogue is still surveyed, with ``[defaults]``, and reported: a front-office
system that starts sending a new touchpoint must not lose its feedback.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import tomllib
import typing
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, time, timedelta
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import gsm0338  # noqa: F401 - registers the "gsm03.38" codec
import holidays
from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FilePath,
    HttpUrl,
    IPvAnyNetwork,
    PrivateAttr,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from schemas.accounts import OidcConfig
from schemas.base import Identifier, Language, Scale, ShortText, SurveyChannel
from schemas.catalogue import Catalogue, LiveCatalogue
from schemas.config_console import BreakdownsConfig, DigestConfig
from schemas.contacts import EmailAddress, PhoneNumber
from schemas.topics import TopicNames

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

ENV_PREFIX = "PALAUTE_"
ENV_NESTED_DELIMITER = "__"

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_ISO_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)


#: What an operator may write for a duration; said whenever one is refused.
DURATION_FORMS = (
    'write a duration such as "90s", "15m", "2h", "30d", "1w" (one number and one unit), '
    'ISO 8601 such as "PT15M" or "P1DT12H", or a number of seconds'
)


def _parse_duration(value: Any) -> Any:
    """Accept ``15m``, ``2h``, ``30d`` besides ISO 8601 (``PT15M``) and seconds.

    TOML has no duration type; the short form is what operators write (and
    what the metrics windows already use). Anything else is refused with the
    accepted forms: pydantic's own message ("invalid character in hour")
    names neither the field's forms nor the short ones.
    """
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})
    if isinstance(value, timedelta | int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return _ISO_DURATION.validate_python(value)
        except ValidationError:
            pass
    raise PydanticCustomError("duration", DURATION_FORMS)


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("must not be negative")
    return value


#: A non-negative length of time: ``90s``, ``15m``, ``2h``, ``30d``, ``1w`` or ISO 8601.
Duration = Annotated[timedelta, BeforeValidator(_parse_duration), AfterValidator(_not_negative)]


def _clock_time(value: Any) -> Any:
    """Refuse numbers: pydantic would read ``21`` as 00:00:21, not as 21:00."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise PydanticCustomError("clock_time", 'write a time of day, such as 21:00:00 or "21:00"')
    return value


#: A wall-clock time of day in the citizen's time zone.
ClockTime = Annotated[time, BeforeValidator(_clock_time)]


def _list_from_text(value: Any) -> Any:
    """Let ``a:9092,b:9092`` (an environment variable) stand for a list."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            return json.loads(stripped)
        return [part.strip() for part in stripped.split(",") if part.strip()]
    return value


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Section(BaseModel):
    """Base of every configuration section: immutable, misspelt keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaConfig(Section):
    """How to reach the cluster; production clusters need TLS and usually SASL."""

    bootstrap_servers: Annotated[
        list[Annotated[str, Field(pattern=r"^[^\s:,]+:\d{1,5}$")]],
        NoDecode,
        BeforeValidator(_list_from_text),
        Field(min_length=1),
    ] = Field(default_factory=lambda: ["127.0.0.1:9092"])
    client_id: Identifier = "palaute"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    ssl_cafile: FilePath | None = None
    ssl_certfile: FilePath | None = None
    ssl_keyfile: FilePath | None = None
    ssl_check_hostname: bool = True
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

    @model_validator(mode="after")
    def _consistent_security(self) -> Self:
        uses_tls = self.security_protocol in {"SSL", "SASL_SSL"}
        uses_sasl = self.security_protocol.startswith("SASL_")
        tls_files = [self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile]
        if not uses_tls and any(file is not None for file in tls_files):
            raise ValueError("ssl_* files are set but security_protocol does not use TLS")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together (client certificate)")
        if uses_sasl and self.sasl_mechanism is None:
            raise ValueError(f"security_protocol {self.security_protocol} needs sasl_mechanism")
        if not uses_sasl and self.sasl_mechanism is not None:
            raise ValueError("sasl_mechanism is set but security_protocol does not use SASL")
        needs_password = self.sasl_mechanism not in {None, "OAUTHBEARER"}
        if needs_password and (self.sasl_username is None or self.sasl_password is None):
            raise ValueError(
                f"sasl_mechanism {self.sasl_mechanism} needs sasl_username and sasl_password"
            )
        return self


class StreamsConfig(Section):
    """How the stream workers run: consumer group, local state, internal topics.

    Several workers with the same ``app_id`` form one consumer group. The
    defaults suit the local single-broker Kafka; production clusters want
    ``replication_factor = 3`` and a ``data_dir`` on a persistent volume (the
    tables are rebuilt from their changelogs without it, only more slowly).
    """

    app_id: Identifier = Field(
        default="palaute",
        description="Consumer group id, and the prefix of internal and changelog topics.",
    )
    topic_suffix: Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9._-]*$")] = Field(
        default="",
        description="Appended to every topic name and to app_id: separate test runs or "
        "environments sharing one cluster.",
    )
    data_dir: Path = Field(
        default_factory=lambda: Path("palaute-data"),
        description="Where the local table stores (RocksDB) live.",
    )
    partitions: Annotated[int, Field(ge=1, le=1024)] = Field(
        default=8, description="Partitions of the internal topics and table changelogs."
    )
    replication_factor: Annotated[int, Field(ge=1, le=16)] = Field(
        default=1, description="Replicas of the internal topics (3 in production clusters)."
    )
    web_port: Annotated[int, Field(ge=1, le=65535)] | None = Field(
        default=None, description="Port of the worker's web server; none turns it off."
    )
    web_host: Annotated[str, Field(min_length=1, max_length=253)] = Field(
        default="127.0.0.1",
        description="Address the worker's web server (/metrics, /healthz) listens on; "
        "0.0.0.0 in a container, so that Prometheus and probes reach it.",
    )
    stalled_after: Annotated[Duration, Field(ge=timedelta(seconds=1))] = Field(
        default=timedelta(minutes=5),
        description="An agent with records waiting and no progress for this long, or a "
        "stage whose handler failed on every record for this long, makes the worker's "
        "/healthz answer 503.",
    )


#: A Twilio Messaging Service SID: the service picks the sender from its pool.
MessagingServiceSid = Annotated[str, Field(pattern=r"^MG[0-9a-fA-F]{32}$")]
#: A Twilio alphanumeric sender ID: 1-11 letters, digits and spaces, at least one letter.
#: Finnish operators show it in place of a number, so the citizen sees who is asking.
AlphanumericSenderId = Annotated[
    str, Field(min_length=1, max_length=11, pattern=r"^[A-Za-z0-9 ]*[A-Za-z][A-Za-z0-9 ]*$")
]


class TwilioConfig(Section):
    """The Twilio account that sends SMS (or the local simulator in tests)."""

    account_sid: Annotated[str, Field(pattern=r"^AC[0-9a-fA-F]{32}$")]
    auth_token: Annotated[SecretStr, Field(min_length=8)]
    from_number: PhoneNumber | None = Field(
        default=None,
        description="Sender number in E.164; or use sender_id or messaging_service_sid.",
    )
    sender_id: AlphanumericSenderId | None = Field(
        default=None,
        description="Alphanumeric sender ID (up to 11 letters, digits and spaces), shown "
        "instead of a number; citizens cannot reply to it by SMS.",
    )
    messaging_service_sid: MessagingServiceSid | None = None
    api_base_url: AnyHttpUrl | None = Field(
        default=None,
        description="Only for the local simulator; production uses Twilio's own address.",
    )

    @model_validator(mode="after")
    def _one_sender(self) -> Self:
        senders = (self.from_number, self.sender_id, self.messaging_service_sid)
        if sum(sender is not None for sender in senders) != 1:
            raise ValueError("set exactly one of from_number, sender_id and messaging_service_sid")
        return self


class SmtpConfig(Section):
    """The mail relay for email surveys."""

    host: Annotated[str, Field(min_length=1, max_length=253)]
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: EmailAddress
    sender_name: ShortText | None = None
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 30.0

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if self.password is not None and self.security == "none" and not _is_loopback(self.host):
            raise ValueError("credentials over an unencrypted connection; use starttls or tls")
        return self


class WebConfig(Section):
    """Where citizens and Twilio reach the web service."""

    public_base_url: HttpUrl = HttpUrl("http://127.0.0.1:8080")
    bind_host: str = "127.0.0.1"
    bind_port: Annotated[int, Field(ge=1, le=65535)] = 8080
    ops_token_sha256: list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field(
        default_factory=list,
        description="SHA-256 (hex) of each operator's bearer token for acknowledging alerts; "
        "the tokens themselves are never stored.",
    )
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode, BeforeValidator(_list_from_text)] = (
        Field(
            default_factory=list,
            description="Networks (CIDR) of the proxies in front of the web service, such as the "
            "ingress controller. X-Forwarded-For is believed from these only: the client, for rate "
            "limits, is the rightmost address of the chain that is not one of them. Empty: the TCP "
            "peer is the client.",
        )
    )

    oidc: OidcConfig | None = Field(
        default=None,
        description="Sign-in with an OpenID Connect identity provider, and the staff's roles "
        "(docs/administration.md). Unset: the operator tokens only.",
    )

    @field_validator("public_base_url")
    @classmethod
    def _https_outside_loopback(cls, url: HttpUrl) -> HttpUrl:
        """Signed links and Twilio signatures are worthless over plain HTTP in public."""
        if url.scheme != "https" and not _is_loopback(url.host):
            raise ValueError("must use https (plain http is allowed for localhost only)")
        return url


#: An API key's SHA-256 in hex: what the configuration stores instead of the key.
KeyDigest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class IngressSource(Section):
    """One front-office system allowed to post events over HTTP.

    Only the key's SHA-256 is stored. API keys are random strings of 256 bits
    (``palaute web new-key``), so a fast unsalted hash is enough: nothing can
    be guessed from it, unlike a password, and checking costs microseconds.
    """

    key_sha256: KeyDigest
    event_sources: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=512, pattern=r"^\S+$")]],
        Field(min_length=1),
    ] = Field(
        description="CloudEvents source values this system may send; any other is refused (403)."
    )
    revoked: bool = Field(default=False, description="A revoked key is refused (401).")


class IngressConfig(Section):
    """The HTTP event ingress for front-office systems that cannot speak Kafka."""

    sources: dict[Identifier, IngressSource] = Field(default_factory=dict)
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    max_batch_events: Annotated[int, Field(ge=1, le=10_000)] = 500
    requests_per_second: Annotated[float, Field(gt=0)] = 20.0
    burst: Annotated[int, Field(ge=1)] = 100
    remembered_event_ids: Annotated[int, Field(ge=0, le=10_000_000)] = Field(
        default=100_000,
        description="Event ids kept per process to answer a repeat without producing it "
        "again; the intake's per-contact de-duplication is the real guarantee.",
    )
    produce_timeout: Duration = Field(
        default=timedelta(seconds=15),
        description="How long to wait for Kafka before answering 503.",
    )

    @model_validator(mode="after")
    def _distinct_keys(self) -> Self:
        digests = [source.key_sha256 for source in self.sources.values()]
        if len(set(digests)) != len(digests):
            raise ValueError("two sources share one API key; give each its own")
        return self


MIN_KEY_LENGTH = 32


def _long_enough(key: SecretStr) -> SecretStr:
    if len(key.get_secret_value()) < MIN_KEY_LENGTH:
        raise ValueError(f"must be at least {MIN_KEY_LENGTH} characters (use a random key)")
    return key


#: A key for HMAC: long enough to resist guessing, never shown.
Key = Annotated[SecretStr, AfterValidator(_long_enough)]


class SecretsConfig(Section):
    """Keys of the keyed hashes: pseudonyms of citizens and signed one-tap links."""

    pseudonymisation_key: Key
    link_signing_key: Key
    csrf_key: Key | None = Field(
        default=None,
        description="Signs the operators' form tokens against cross-site request forgery. "
        "Unset: each web process draws its own at start, so open forms fail after a restart "
        "and several web processes behind one address need this set to one shared key.",
    )

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        # One leaked key must not give away the other.
        if self.pseudonymisation_key.get_secret_value() == self.link_signing_key.get_secret_value():
            raise ValueError("pseudonymisation_key and link_signing_key must differ")
        if self.csrf_key is not None and self.csrf_key.get_secret_value() in {
            self.pseudonymisation_key.get_secret_value(),
            self.link_signing_key.get_secret_value(),
        }:
            raise ValueError("csrf_key must differ from the other keys")
        return self


class SendWindow(Section):
    """A send window such as "the next day after 12:00" (days_after=1, not_before=12:00)."""

    days_after: Annotated[int, Field(ge=0, le=14)] = 1
    not_before: ClockTime = time(12, 0)
    not_after: ClockTime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.not_after is not None and self.not_after <= self.not_before:
            raise ValueError("not_after must be later than not_before on the same day")
        return self


#: Default questions; ``{low}`` and ``{high}`` are filled in from the scale.
DEFAULT_QUESTIONS: dict[Language, str] = {
    Language.FI: "Kuinka tyytyväinen olit saamaasi palveluun?",
    Language.SV: "Hur nöjd var du med servicen du fick?",
    Language.EN: "How satisfied were you with the service?",
}

REQUIRED_LANGUAGES = (Language.FI, Language.SV, Language.EN)
#: The GSM 03.38 codec's name (the gsm0338 package): the alphabet of a one-segment SMS.
_GSM_CODEC = "gsm03.38"


def _in_language(texts: str | dict[Language, str], language: Language) -> str:
    """Pick a text in ``language``, else Finnish: one text serves every language."""
    if isinstance(texts, str):
        return texts
    return texts.get(language) or texts[Language.FI]


#: Phrases of the survey SMS and email that the catalogue may replace per language
#: (``texts.<language>.<key>``); engine.messages has the built-in wording of each.
MESSAGE_TEXT_KEYS: tuple[str, ...] = (
    "sms",
    "sms_large",
    "sms_reminder",
    "sms_link_only",
    "sms_link_only_reminder",
    "sms_stop",
    "sms_unknown_service",
    "subject",
    "reminder_subject",
    "greeting",
    "intro",
    "reminder_intro",
    "service",
    "privacy",
    "choose",
    "confirm",
    "page",
    "voluntary",
    "unsubscribe",
    "low_end",
    "high_end",
)


#: Phrases of the answer page (engine.pages_text), under their names with ``page_``.
PAGE_TEXT_KEYS: tuple[str, ...] = (
    "page_title",
    "page_question",
    "page_score_label",
    "page_chosen",
    "page_confirm",
    "page_saved",
    "page_tap_to_send",
    "page_change_hint",
    "page_comment_label",
    "page_comment_hint",
    "page_comment_send",
    "page_comment_saved",
    "page_closed_title",
    "page_closed_body",
    "page_invalid_title",
    "page_invalid_body",
    "page_unknown_title",
    "page_unknown_body",
    "page_unsubscribe_title",
    "page_unsubscribe_body",
    "page_unsubscribe_button",
    "page_unsubscribed_title",
    "page_unsubscribed_body",
    "page_too_many",
    "page_statements_title",
    "page_statements_hint",
    "page_statements_send",
    "page_statements_saved",
    "page_statements_need_vote",
    "page_agreement_1",
    "page_agreement_2",
    "page_agreement_3",
    "page_agreement_4",
    "page_agreement_5",
)
#: The answers to SMS replies (engine.replies); ``{low}`` and ``{high}`` are the scale's ends.
REPLY_TEXT_KEYS: tuple[str, ...] = (
    "reply_thanks",
    "reply_opted_out",
    "reply_opted_in",
    "reply_help",
    "reply_ask_again",
    "reply_no_open_survey",
)
#: The placeholders any phrase may use (each phrase fills only its own; see docs/messages.md).
_TEXT_PLACEHOLDERS: dict[str, object] = dict.fromkeys(
    ("organisation", "question", "link", "dash", "service"), ""
) | dict.fromkeys(("low", "high", "score"), 0)
#: Every citizen-visible phrase the catalogue's ``texts`` may replace.
TEXT_KEYS: tuple[str, ...] = MESSAGE_TEXT_KEYS + PAGE_TEXT_KEYS + REPLY_TEXT_KEYS


#: The most characters of an ``sms_name``: what the SMS budget can spare for a name.
SMS_NAME_MAX = 30


def _gsm7_only(value: str) -> str:
    """Refuse a name the SMS could not carry in GSM-7: one such letter makes it UCS-2.

    UCS-2 holds 70 characters a segment instead of 160, so a name meant to
    keep the SMS short must not be the thing that doubles its price.
    """
    if not value.isprintable():
        raise PydanticCustomError(
            "control_characters", "contains control characters (line breaks, tabs or similar)"
        )
    try:
        value.encode(_GSM_CODEC)
    except UnicodeEncodeError as error:
        raise PydanticCustomError(
            "not_gsm7",
            "contains '{culprit}', outside the SMS alphabet (GSM 03.38): the SMS would go out "
            "in UCS-2, 70 characters a segment",
            {"culprit": value[error.start : error.end]},
        ) from None
    return value


#: A short name for the SMS, in GSM-7 (Sámi names may be given under ``se`` in any letters).
SmsName = Annotated[str, Field(min_length=1, max_length=SMS_NAME_MAX)]


def _check_sms_name(value: str | dict[Language, str] | None) -> None:
    """Every SMS name but a Sámi one must be GSM-7 (Sámi letters are outside it anyway)."""
    if isinstance(value, str):
        _gsm7_only(value)
    elif isinstance(value, dict):
        missing = [language.value for language in REQUIRED_LANGUAGES if language not in value]
        if missing:
            raise ValueError(f"missing in {', '.join(missing)} (fi, sv and en needed)")
        for language, name in value.items():
            if language is not Language.SE:
                _gsm7_only(name)
            elif not name.isprintable():
                raise PydanticCustomError("control_characters", "contains control characters")


class OrganisationConfig(Section):
    """Who asks: named in every SMS, email and page, so that a survey is not taken for phishing.

    Set it for all touchpoints in ``[defaults.organisation]``, or per touchpoint
    in ``[touchpoints.<id>.organisation]`` (which replaces it as a whole).
    """

    name: ShortText | dict[Language, ShortText] = Field(
        description="The organisation's name: one text, or per language (fi, sv, en; se "
        "optional). Keep it short: it starts every SMS."
    )
    privacy_url: HttpUrl | dict[Language, HttpUrl] = Field(
        description="The privacy notice (tietosuojaseloste) the email and the answer page link "
        "to: one address, or one per language."
    )
    logo_url: HttpUrl | None = Field(
        default=None,
        description="A logo for the email and the answer page (https; its origin is allowed "
        "in the page's Content-Security-Policy). The name is its text alternative.",
    )
    sms_sender_id: AlphanumericSenderId | None = Field(
        default=None,
        description="Alphanumeric sender ID for this organisation's SMS, instead of [twilio]'s "
        "sender (registered with Twilio and the operators).",
    )
    messaging_service_sid: MessagingServiceSid | None = Field(
        default=None,
        description="Twilio Messaging Service for this organisation's SMS, instead of "
        "[twilio]'s sender.",
    )
    stop_word_in_sms: bool = Field(
        default=False,
        description='End every survey SMS with how to stop the surveys ("Lopetus: LOPETA"); '
        "palaute config check tells whether the messages still fit one segment.",
    )
    sms_name: SmsName | dict[Language, SmsName] | None = Field(
        default=None,
        description=f"A shorter name for the SMS (at most {SMS_NAME_MAX} characters, GSM-7): "
        "one text, or per language. Without it, the SMS names the organisation by its name.",
    )

    @field_validator("sms_name")
    @classmethod
    def _sms_name_gsm7(
        cls, value: str | dict[Language, str] | None
    ) -> str | dict[Language, str] | None:
        _check_sms_name(value)
        return value

    @field_validator("name", "privacy_url")
    @classmethod
    def _finnish_at_least(cls, value: Any) -> Any:
        if isinstance(value, dict):
            missing = [lang.value for lang in REQUIRED_LANGUAGES if lang not in value]
            if missing:
                raise ValueError(f"missing in {', '.join(missing)} (fi, sv and en needed)")
        return value

    @model_validator(mode="after")
    def _one_sender(self) -> Self:
        if self.sms_sender_id is not None and self.messaging_service_sid is not None:
            raise ValueError("set at most one of sms_sender_id and messaging_service_sid")
        return self

    def name_in(self, language: Language) -> str:
        """Give the name in ``language`` (else Finnish)."""
        return _in_language(self.name, language)

    def sms_name_in(self, language: Language) -> str:
        """Give the name the SMS uses in ``language``: the short one, else the name."""
        if self.sms_name is None:
            return self.name_in(language)
        return _in_language(self.sms_name, language)

    def privacy_in(self, language: Language) -> str:
        """Give the privacy notice's address in ``language`` (else Finnish)."""
        url = self.privacy_url
        return str(url if not isinstance(url, dict) else url.get(language) or url[Language.FI])


#: The THL model's most: a recommendation question and up to seven statements.
MAX_FOLLOW_UP_STATEMENTS = 7


class TouchpointConfig(Section):
    """How one touchpoint is surveyed; ``[defaults]`` has the same shape."""

    name: ShortText | None = None
    questions: dict[Language, Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default_factory=lambda: dict(DEFAULT_QUESTIONS),
        description="The question in fi, sv and en (se optional); {low} and {high} are "
        "replaced with the ends of the scale.",
    )
    scale: Scale = Scale.CSAT_5
    channel_preference: Annotated[list[SurveyChannel], Field(min_length=1, max_length=2)] = Field(
        default_factory=lambda: [SurveyChannel.SMS, SurveyChannel.EMAIL]
    )
    send_delay: Duration = timedelta(minutes=10)
    send_window: SendWindow | None = None
    sampling_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    reminder_delay: Duration | None = None
    expiry: Duration = timedelta(days=3)
    kpi_target: float | None = Field(
        default=None,
        description="Target mean score on the touchpoint's scale; for nps-11 the target "
        "NPS (-100..100).",
    )
    sensitive: bool = Field(default=False, description="Never survey this touchpoint.")
    organisation: OrganisationConfig | None = Field(
        default=None,
        description="Who asks (see [defaults.organisation]); without one, messages name "
        "[dispatch] organisation and link no privacy notice.",
    )
    texts: dict[Language, dict[str, Annotated[str, Field(min_length=1, max_length=500)]]] = Field(
        default_factory=dict,
        description="Replacements of the built-in wording per language and key (see "
        "docs/messages.md). A language without built-in wording (se) is used only when "
        "every key and the question are given in it; otherwise the message is Finnish.",
    )
    service: dict[Language, ShortText] | None = Field(
        default=None,
        description="The service's name per language as the email and the page show it; "
        "without it, the contact's service (as the front office sent it), else the "
        "touchpoint's name.",
    )
    sms_name: SmsName | dict[Language, SmsName] | None = Field(
        default=None,
        description=f"The service's name in the SMS (at most {SMS_NAME_MAX} characters, "
        "GSM-7): one text, or per language. Without it, the SMS names the service by "
        "`service`, else `name`, else the contact's service.",
    )
    follow_up_statements: list[ShortText | dict[Language, ShortText]] = Field(
        default_factory=list,
        max_length=MAX_FOLLOW_UP_STATEMENTS,
        description="Statements shown after the one-tap answer, each answered (optionally) "
        "on an agreement scale: a text, or the text per language (fi, sv, en; se optional).",
    )

    @field_validator("questions")
    @classmethod
    def _languages(cls, questions: dict[Language, str]) -> dict[Language, str]:
        missing = [language.value for language in REQUIRED_LANGUAGES if language not in questions]
        if missing:
            raise ValueError(f"question missing in {', '.join(missing)} (fi, sv and en needed)")
        for language, text in questions.items():
            try:
                text.format(low=0, high=0)
            except (KeyError, IndexError, ValueError):
                raise ValueError(
                    f"question in {language.value} may use only the placeholders {{low}} and "
                    "{high} (double the braces for a literal one)"
                ) from None
        return questions

    @field_validator("texts")
    @classmethod
    def _known_text_keys(
        cls, texts: dict[Language, dict[str, str]]
    ) -> dict[Language, dict[str, str]]:
        for language, phrases in texts.items():
            unknown = sorted(set(phrases) - set(TEXT_KEYS))
            if unknown:
                raise ValueError(
                    f"texts.{language.value}: unknown key {', '.join(unknown)} "
                    "(see docs/messages.md for the keys)"
                )
            for key, text in phrases.items():
                try:
                    text.format(**_TEXT_PLACEHOLDERS)
                except (KeyError, IndexError, ValueError):
                    raise ValueError(
                        f"texts.{language.value}.{key} has a placeholder no message fills, or a "
                        "lone brace (double it for a literal one; see docs/messages.md)"
                    ) from None
        return texts

    @field_validator("sms_name")
    @classmethod
    def _sms_name_gsm7(
        cls, value: str | dict[Language, str] | None
    ) -> str | dict[Language, str] | None:
        _check_sms_name(value)
        return value

    @field_validator("follow_up_statements")
    @classmethod
    def _statement_languages(
        cls, statements: list[str | dict[Language, str]]
    ) -> list[str | dict[Language, str]]:
        for number, statement in enumerate(statements, start=1):
            if isinstance(statement, dict):
                missing = [lang.value for lang in REQUIRED_LANGUAGES if lang not in statement]
                if missing:
                    raise ValueError(
                        f"statement {number} missing in {', '.join(missing)} (fi, sv and en needed)"
                    )
        return statements

    @field_validator("channel_preference")
    @classmethod
    def _no_repeats(cls, channels: list[SurveyChannel]) -> list[SurveyChannel]:
        if len(set(channels)) != len(channels):
            raise ValueError("a channel is listed twice")
        return channels

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.expiry <= timedelta(0):
            raise ValueError("expiry must be longer than zero")
        if self.reminder_delay is not None and self.reminder_delay >= self.expiry:
            raise ValueError("reminder_delay must be shorter than expiry")
        if self.kpi_target is not None:
            low, high = (
                (-100, 100) if self.scale is Scale.NPS_11 else (self.scale.low, self.scale.high)
            )
            if not low <= self.kpi_target <= high:
                raise ValueError(f"kpi_target must lie within {low}..{high} for {self.scale.value}")
        return self

    def language_for(self, preferred: Language) -> Language:
        """Serve the citizen's language when the touchpoint has it, else Finnish."""
        return preferred if preferred in self.questions else Language.FI

    def sms_service_in(self, language: Language) -> str | None:
        """Name the service in an SMS of ``language`` from the catalogue, if it can.

        The short ``sms_name``, else the service's name in the language, else
        the touchpoint's name; None when the catalogue names no service.
        """
        if self.sms_name is not None:
            return _in_language(self.sms_name, language)
        return (self.service or {}).get(language) or self.name

    def statements(self, language: Language) -> tuple[str, ...]:
        """Give the follow-up statements in a language (else Finnish, else any given)."""
        chosen = []
        for statement in self.follow_up_statements:
            if isinstance(statement, str):
                chosen.append(statement)
                continue
            chosen.append(statement.get(language) or statement[Language.FI])
        return tuple(chosen)

    def question(self, language: Language) -> str:
        """Give the question text in a language, with the scale's ends filled in."""
        return self.questions[self.language_for(language)].format(
            low=self.scale.low, high=self.scale.high
        )


#: ``[defaults]``: what a touchpoint missing from the catalogue is surveyed with.
DefaultsConfig = TouchpointConfig

HolidayHandling = Literal["quiet-all-day", "next-working-day", "ignore"]


class PolicyConfig(Section):
    """Who is asked, how often and when: every rule of the policy, each adjustable.

    Holidays: by default (``quiet-all-day``) a public holiday is quiet hours from
    midnight to midnight, so a send falls on the next day that is not a holiday,
    at the end of quiet hours (or at the send window's start). Weekends are not
    quiet: services run on weekends and a question soon after the contact is
    remembered best. ``next-working-day`` also skips Saturdays and Sundays, for
    organisations that want surveys only on working days; ``ignore`` applies
    quiet hours only.
    """

    frequency_cap: Annotated[int, Field(ge=1)] = Field(
        default=1, description="Surveys per citizen within frequency_cap_window, all touchpoints."
    )
    frequency_cap_window: Duration = timedelta(days=30)
    max_contact_age: Duration = Field(
        default=timedelta(hours=24),
        description="Contacts that ended longer ago than this when their event is decided "
        "are skipped (too-old), e.g. after an outage.",
    )
    quiet_hours_start: ClockTime = time(21, 0)
    quiet_hours_end: ClockTime = time(8, 0)
    time_zone: str = "Europe/Helsinki"
    holiday_handling: HolidayHandling = "quiet-all-day"
    holiday_country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "FI"
    holiday_subdivision: str | None = None
    respect_non_disclosure: bool = Field(
        default=True, description="Never contact a citizen under turvakielto."
    )
    min_age: Annotated[int, Field(ge=0, le=130)] = Field(
        default=18, description="Youngest age surveyed; 0 turns the rule off."
    )
    survey_unknown_age: bool = Field(
        default=True,
        description="Survey a citizen whose contact carries neither age nor "
        "birth year (front-office systems serving minors must send one).",
    )
    skip_sensitive_touchpoints: bool = True
    episode_window: Duration = Field(
        default=timedelta(days=30),
        description="A contact within this time after a surveyed contact of the same episode "
        "is not surveyed; zero turns the rule off.",
    )
    episode_scope: Literal["service", "touchpoint"] = "service"
    supersede_pending: bool = Field(
        default=True,
        description="A newer contact replaces a survey still waiting for its send time.",
    )
    remembered_contacts: Annotated[int, Field(ge=1, le=100_000)] = Field(
        default=200,
        description="Decided contacts kept per citizen for de-duplication (by event source and "
        "id, and by contact id within its source).",
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {name!r} (use an IANA name such as Europe/Helsinki)"
            ) from None
        return name

    @model_validator(mode="after")
    def _known_calendar(self) -> Self:
        try:
            _calendar(self.holiday_country, self.holiday_subdivision)
        except NotImplementedError:
            raise ValueError(f"no holiday calendar for country {self.holiday_country}") from None
        return self

    def is_quiet(self, wall_clock: time) -> bool:
        """Tell whether a local wall-clock time lies in quiet hours (start inclusive).

        Equal start and end mean no quiet hours at all.
        """
        start, end = self.quiet_hours_start, self.quiet_hours_end
        wall_clock = wall_clock.replace(tzinfo=None, fold=0)
        if start == end:
            return False
        if start > end:  # crosses midnight, the usual case (21:00-08:00)
            return wall_clock >= start or wall_clock < end
        return start <= wall_clock < end

    def window_can_open(self, window: SendWindow) -> bool:
        """Tell whether some time in a send window lies outside quiet hours."""
        if not self.is_quiet(window.not_before):
            return True
        latest = window.not_after or time.max
        return window.not_before < self.quiet_hours_end <= latest

    @property
    def zone(self) -> ZoneInfo:
        """The citizens' time zone."""
        return ZoneInfo(self.time_zone)

    def holiday_calendar(self) -> Callable[[date], bool]:
        """Tell whether a local date is a public holiday, from the ``holidays`` package.

        This lives with the configuration, not in connectors/: it is computed
        from configured values and reads nothing from outside, and the engine
        takes it as a plain function so that it stays free of third-party imports.
        """
        calendar = _calendar(self.holiday_country, self.holiday_subdivision)
        return calendar.__contains__  # type: ignore[no-any-return]


@lru_cache(maxsize=16)
def _calendar(country: str, subdivision: str | None) -> Any:
    # Years are filled in lazily by the package as dates are looked up.
    return holidays.country_holidays(country, subdiv=subdivision)


#: Longest window the metrics keep (the retention of their hourly buckets).
_LONGEST_WINDOW = timedelta(days=28)


def _servable_window(window: timedelta) -> timedelta:
    """Refuse windows the metrics' buckets cannot serve (5-minute up to 24 h, hourly beyond)."""
    seconds = int(window.total_seconds())
    fine = seconds <= 86_400 and seconds % 300 == 0  # noqa: PLR2004 - one day of 5-minute buckets
    if seconds <= 0 or window > _LONGEST_WINDOW or not (fine or seconds % 3_600 == 0):
        raise ValueError("a window is a multiple of 5 minutes up to 24h, or of 1 hour up to 28d")
    return window


class MetricsConfig(Section):
    """Rolling windows of the metrics stage and how often it publishes figures."""

    windows: Annotated[
        list[Annotated[Duration, AfterValidator(_servable_window)]],
        Field(min_length=1, max_length=12),
    ] = Field(
        default_factory=lambda: [
            timedelta(hours=1),
            timedelta(hours=24),
            timedelta(days=7),
            timedelta(days=28),
        ]
    )
    emit_interval: Duration = Field(
        default=timedelta(milliseconds=250),
        description="Figures of a key are published at most this often (and always after "
        "its last change); it bounds how stale a dashboard figure can be.",
    )


#: Target share of top-two answers per touchpoint (the catalogue's ``[alerts] csat_targets``).
CsatTargets = dict[Identifier, Annotated[float, Field(ge=0.0, le=1.0)]]


class AlertsConfig(Section):
    """Where alerts go, and per-touchpoint detector settings.

    Alerts name touchpoints and figures only; the addresses here are the
    operations team's, never a citizen's.
    """

    ops_email: EmailAddress | None = Field(
        default=None, description="Operations mailbox; needs [smtp]."
    )
    webhook_url: HttpUrl | None = None
    webhook_secret: Key | None = Field(
        default=None, description="Signs each webhook body (HMAC-SHA256)."
    )
    webhook_timeout: Duration = timedelta(seconds=10)
    webhook_attempts: Annotated[int, Field(ge=1, le=10)] = 5
    language: Literal["fi", "sv", "en"] = Field(
        default="fi",
        description="Language of the alert email and the webhook's text; times are in "
        "[policy] time_zone.",
    )
    dashboard_url: Annotated[str, Field(max_length=400)] | None = Field(
        default="/dashboard/touchpoints/{touchpoint_id}",
        description="Link in every alert; {touchpoint_id} is replaced.",
    )
    csat_targets: CsatTargets = Field(
        default_factory=dict,
        description="Target share of top-two answers per touchpoint, for target-breach alerts.",
    )
    kpi_min_sample: Annotated[int, Field(ge=2, le=100_000)] = Field(
        default=30,
        description="Answers in the last week before a touchpoint's kpi_target is judged.",
    )
    kpi_confidence: Annotated[float, Field(ge=0.5, lt=1.0)] = Field(
        default=0.95,
        description="One-sided confidence of the mean's upper bound in kpi-breach alerts.",
    )
    silence_window: Duration = Field(
        default=timedelta(hours=1),
        description="Recent window whose answers, deliveries and contacts are counted for "
        "silence alerts.",
    )
    silence_weeks: Annotated[int, Field(ge=1, le=8)] = Field(
        default=4,
        description="Earlier weeks whose counts at the same weekday and time give the "
        "expected count (at least two with history, or one if set to 1).",
    )
    silence_probability: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        default=1e-4,
        description="A silence alert fires when so few events have a Poisson probability "
        "below this (and fewer than half the expected came).",
    )
    silence_min_expected: Annotated[float, Field(gt=0.0)] = Field(
        default=10.0,
        description="Windows expecting fewer events than this (nights, closed offices) are "
        "never judged.",
    )
    silence_check_interval: Duration = Field(
        default=timedelta(minutes=1),
        description="How often each worker judges silence on its touchpoints (wall clock).",
    )

    @model_validator(mode="after")
    def _signed_webhook(self) -> Self:
        if self.webhook_url is not None and self.webhook_secret is None:
            raise ValueError("webhook_url needs webhook_secret (receivers verify the signature)")
        return self

    @model_validator(mode="after")
    def _silence_bounds(self) -> Self:
        # Twelve recent buckets per window, each at least a second long.
        if self.silence_window < timedelta(seconds=12):
            raise ValueError("silence_window must be at least 12s")
        if self.silence_check_interval < timedelta(seconds=1):
            raise ValueError("silence_check_interval must be at least 1s")
        return self


class OpenDataConfig(Section):
    """The public feed of per-touchpoint scores (``/open/v1/...`` of ``palaute web``).

    A touchpoint with fewer answers than ``min_answers`` in the period is
    listed without figures, so that no one's answer can be singled out.
    """

    min_answers: Annotated[int, Field(ge=1, le=10_000)] = 10
    days: Annotated[int, Field(ge=1, le=90)] = Field(
        default=30, description="The period the figures cover, ending now."
    )
    publisher: ShortText = Field(default="Palaute", description="Who the feed names as publisher.")


_TOML_FILE: ContextVar[Path | None] = ContextVar("palaute_toml_file", default=None)


class DispatchConfig(Section):
    """How the scheduler and dispatcher send: rate limits, retries, links and sender name.

    Transient provider errors (Twilio 429/503, a relay that is down) are retried
    with exponential backoff (``retry_base`` doubling up to ``retry_cap``, with
    jitter) until the survey expires, or until ``max_attempts`` when set.
    """

    sms_per_second: Annotated[float, Field(gt=0)] = 10.0
    email_per_second: Annotated[float, Field(gt=0)] = 10.0
    burst: Annotated[int, Field(ge=1, le=10_000)] = 20
    retry_base: Duration = timedelta(seconds=5)
    retry_cap: Duration = timedelta(minutes=15)
    max_attempts: Annotated[int, Field(ge=1)] | None = None
    tick: Duration = Field(
        default=timedelta(seconds=1), description="How often due surveys are looked for."
    )
    finished_retention: Duration = Field(
        default=timedelta(days=1),
        description="How long a finished survey's record (without contact details) is kept, "
        "so that a replayed SurveyScheduled cannot start it again.",
    )
    outcome_grace: Duration = Field(
        default=timedelta(seconds=30),
        description="After a crash, how long a send in flight waits for its outcome to be "
        "read back before it is recorded as failed with the reason outcome-unknown.",
    )
    last_call: Duration = Field(
        default=timedelta(minutes=1),
        description="No survey is sent this close to its expiry: its links would die as the "
        "citizen opens them; it expires unsent instead.",
    )
    organisation: ShortText = Field(
        default="Palaute", description="Who the survey email says it is from."
    )
    link_key_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,8}$")] = Field(
        default="k1", description="Key id written into link tokens signed with link_signing_key."
    )


#: What a touchpoint never inherits from ``[defaults]``: its own names would name every one.
NOT_INHERITED = frozenset({"name", "service", "sms_name"})


def inherit_defaults(data: Any) -> Any:
    """Fill each catalogue entry's missing fields from ``[defaults]``, as written in TOML.

    Shared by the configuration and the catalogue topic's changes, so that
    an entry means the same wherever it is written.
    """
    if not isinstance(data, dict):
        return data
    defaults = data.get("defaults")
    touchpoints = data.get("touchpoints")
    if not isinstance(defaults, dict) or not isinstance(touchpoints, dict):
        return data
    inherited = {key: value for key, value in defaults.items() if key not in NOT_INHERITED}
    merged = {
        touchpoint_id: {**inherited, **entry} if isinstance(entry, dict) else entry
        for touchpoint_id, entry in touchpoints.items()
    }
    return {**data, "touchpoints": merged}


def check_send_windows(
    defaults: TouchpointConfig, touchpoints: Mapping[str, TouchpointConfig], policy: PolicyConfig
) -> None:
    """Refuse send windows wholly in quiet hours: nothing in them would ever be sent."""
    entries = {"defaults": defaults} | {
        f"touchpoints.{toml_path((key,))}": entry for key, entry in touchpoints.items()
    }
    closed = [
        where
        for where, entry in entries.items()
        if entry.send_window is not None and not policy.window_can_open(entry.send_window)
    ]
    if closed:
        raise ValueError(
            f"send_window lies wholly in quiet hours, so nothing would ever be sent: "
            f"{', '.join(closed)}"
        )


class Settings(BaseSettings):
    """Everything a Palaute process is configured with."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
        case_sensitive=False,
    )

    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    streams: StreamsConfig = Field(default_factory=StreamsConfig)
    twilio: TwilioConfig | None = None
    smtp: SmtpConfig | None = None
    web: WebConfig = Field(default_factory=WebConfig)
    ingress: IngressConfig = Field(default_factory=IngressConfig)
    secrets: SecretsConfig
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    defaults: DefaultsConfig = Field(default_factory=DefaultsConfig)
    touchpoints: dict[Identifier, TouchpointConfig] = Field(default_factory=dict)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    dispatch: DispatchConfig = Field(default_factory=DispatchConfig)
    opendata: OpenDataConfig = Field(default_factory=OpenDataConfig)
    breakdowns: BreakdownsConfig = Field(default_factory=BreakdownsConfig)
    digest: DigestConfig = Field(default_factory=DigestConfig)

    _catalogue: LiveCatalogue | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no .env files by design
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then environment, then the TOML file, then mounted secret files."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _TOML_FILE.get()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        sources.append(file_secret_settings)
        return tuple(sources)

    @model_validator(mode="before")
    @classmethod
    def _touchpoints_inherit_defaults(cls, data: Any) -> Any:
        """Fields a catalogue entry leaves out come from ``[defaults]``, not built-ins.

        An operator who lowers ``defaults.sampling_rate`` expects every
        touchpoint that does not say otherwise to follow.
        """
        return inherit_defaults(data)

    @model_validator(mode="after")
    def _windows_outside_quiet_hours(self) -> Self:
        check_send_windows(self.defaults, self.touchpoints, self.policy)
        return self

    @property
    def topics(self) -> TopicNames:
        """The topics of this deployment: every name with ``[streams] topic_suffix``."""
        return TopicNames.with_suffix(self.streams.topic_suffix)

    @property
    def catalogue(self) -> LiveCatalogue:
        """The catalogue this process runs on now: read it here, never from a copy.

        ``defaults``, ``touchpoints`` and ``alerts.csat_targets`` above are the
        file's catalogue, the seed; the catalogue topic's versions replace it
        in this holder while the process runs (:mod:`connectors.catalogue`).
        """
        live = self._catalogue
        if live is None:
            live = LiveCatalogue(
                Catalogue(
                    defaults=self.defaults,
                    touchpoints=MappingProxyType(dict(self.touchpoints)),
                    csat_targets=MappingProxyType(dict(self.alerts.csat_targets)),
                )
            )
            self._catalogue = live
        return live

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Copy the settings; the copy's catalogue is its own, seeded from its own fields."""
        copied = super().model_copy(update=update, deep=deep)
        copied._catalogue = None  # noqa: SLF001 - the copy's own private attribute
        return copied

    def touchpoint(self, touchpoint_id: str) -> tuple[TouchpointConfig, bool]:
        """Look up a touchpoint in the live catalogue, and tell whether it is in it.

        An unknown touchpoint gets ``[defaults]`` and ``False``: the caller counts
        and reports it instead of dropping the contact.
        """
        return self.catalogue.touchpoint(touchpoint_id)


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in a configuration, with where it is (a TOML path)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(ValueError):
    """A configuration that cannot be used; lists every problem found."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"invalid configuration in {source}:\n{lines}")


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_path(location: tuple[int | str, ...]) -> str:
    """Write a validation location the way it would be written in the TOML file."""
    parts: list[str] = []
    for part in location:
        if isinstance(part, int):
            parts.append(f"[{part}]")
            continue
        key = part if _BARE_KEY.match(part) else json.dumps(part, ensure_ascii=False)
        parts.append(f".{key}" if parts else key)
    return "".join(parts)


def _section_model(annotation: Any) -> tuple[type[BaseModel], bool] | None:
    """Find the section model a field holds, and whether it is a map of them (touchpoints)."""
    origin = typing.get_origin(annotation)
    if origin is dict:
        inner = _section_model(typing.get_args(annotation)[1])
        return (inner[0], True) if inner is not None else None
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate, False
    return None


def _known_keys(location: tuple[int | str, ...]) -> list[str]:
    """Give the keys the section holding ``location``'s last part accepts."""
    model: type[BaseModel] = Settings
    parts = list(location[:-1])
    while parts:
        part = parts.pop(0)
        field = model.model_fields.get(part) if isinstance(part, str) else None
        section = _section_model(field.annotation) if field is not None else None
        if section is None:
            return []
        model, is_map = section
        if is_map:
            if not parts:
                return []
            parts.pop(0)  # the entry's own name, such as a touchpoint id
    return list(model.model_fields)


def _unknown_setting(location: tuple[int | str, ...]) -> str:
    """Say that a key is unknown and, when one is close, which known key was meant."""
    name = location[-1] if location else None
    close = (
        difflib.get_close_matches(name, _known_keys(location), n=1, cutoff=0.6)
        if isinstance(name, str)
        else []
    )
    if close:
        return f"unknown setting; did you mean {close[0]}?"
    return "unknown setting (see palaute config reference)"


def config_problems(error: ValidationError) -> list[ConfigProblem]:
    """Say each validation error as a problem at its TOML path, in an operator's words."""
    problems = []
    for detail in error.errors(include_url=False, include_input=False):
        location = tuple(detail["loc"])
        message = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "missing":
            message = "required but not set (in the file or as a PALAUTE_ variable)"
        elif detail["type"] == "extra_forbidden":
            message = _unknown_setting(location)
        elif (bound := _duration_bound(detail.get("ctx", {}))) is not None:
            message = bound
        problems.append(ConfigProblem(toml_path(location), message))
    return problems


_BOUND_WORDS = {"ge": "at least", "gt": "longer than", "le": "at most", "lt": "shorter than"}


def _duration_bound(context: dict[str, Any]) -> str | None:
    """Say a duration's bound as it is written ("at least 1s"), not as a Python repr."""
    for key, words in _BOUND_WORDS.items():
        bound = _as_timedelta(context.get(key))
        if bound is not None:
            seconds = int(bound.total_seconds())
            unit = next(
                (f"{seconds // size}{unit}" for unit, size in _BOUND_UNITS if seconds % size == 0),
                f"{seconds}s",
            )
            return f"must be {words} {unit}" if seconds else f"must be {words} 0s"
    return None


_BOUND_UNITS = (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))
_TIMEDELTA_REPR = re.compile(r"^datetime\.timedelta\((?:\w+=-?\d+(?:, )?)*\)$")


def _as_timedelta(bound: Any) -> timedelta | None:
    """Read a bound of an error's context: pydantic gives its repr, not the timedelta."""
    if isinstance(bound, timedelta):
        return bound
    if isinstance(bound, str) and _TIMEDELTA_REPR.match(bound):
        parts = re.findall(r"(\w+)=(-?\d+)", bound)
        return timedelta(**{name: int(number) for name, number in parts})
    return None


def load_settings(path: Path | None) -> Settings:
    """Read a TOML file (if any) and the environment into validated settings.

    Raises :class:`ConfigError` naming every problem and where it is; values
    are never quoted, so a misplaced secret does not end up in a log.
    """
    source = str(path) if path is not None else "the environment"
    if path is not None:
        try:
            with path.open("rb") as file:
                tomllib.load(file)
        except OSError as exc:
            raise ConfigError(source, [ConfigProblem("", f"cannot read: {exc.strerror}")]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(source, [ConfigProblem("", f"not valid TOML: {exc}")]) from None
    token = _TOML_FILE.set(path)
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(source, config_problems(exc)) from None
    except SettingsError as exc:
        raise ConfigError(source, [ConfigProblem("environment", str(exc))]) from None
    finally:
        _TOML_FILE.reset(token)
