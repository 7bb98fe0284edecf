"""Every Kafka client of Palaute reaches the cluster through ``client_options``.

The web service's survey index once built its consumer by hand and left the
TLS context out: with ``security_protocol = "SASL_SSL"`` (the shipped
Kubernetes configuration) it failed at start and every answer page answered
503. These tests read the source so that no module can construct an aiokafka
client any other way, and check that faust's credentials come from the same
function.
"""

from __future__ import annotations

import ast
import ssl
from pathlib import Path

import faust
import pytest

from connectors.kafka_client import client_options, local_broker
from schemas.config import KafkaConfig

ROOT = Path(__file__).resolve().parents[2]
#: Every package that runs in a Palaute process (the tests' own clients are left out).
PACKAGES = ("connectors", "streams", "palaute", "ops", "schemas", "engine")
#: aiokafka's client classes: each opens connections to the cluster.
CLIENT_CLASSES = frozenset(
    {"AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient", "AIOKafkaClient"}
)
#: Names that build a connection's security by hand; only the one function may use them.
SECURITY_BUILDERS = frozenset({"create_ssl_context", "SSLCredentials", "SASLCredentials"})
#: Where security is built: the one function, and faust's credentials derived from it.
SECURITY_HOMES = {
    "connectors/kafka_client.py": frozenset({"create_ssl_context"}),
    "streams/app.py": frozenset({"SSLCredentials", "SASLCredentials"}),
}


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _client_aliases(tree: ast.Module) -> set[str]:
    """Names under which a module imports aiokafka's client classes."""
    names = set(CLIENT_CLASSES)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aiokafka"):
            names.update(
                alias.asname or alias.name for alias in node.names if alias.name in CLIENT_CLASSES
            )
    return names


def _through_client_options(call: ast.Call) -> bool:
    return any(
        keyword.arg is None
        and isinstance(keyword.value, ast.Call)
        and _called_name(keyword.value) == "client_options"
        for keyword in call.keywords
    )


def violations(source: str, path: str) -> list[str]:
    """Find aiokafka clients built without ``**client_options(...)``, and security by hand."""
    tree = ast.parse(source, filename=path)
    clients = _client_aliases(tree)
    allowed = SECURITY_HOMES.get(path, frozenset())
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = {base.id if isinstance(base, ast.Name) else "" for base in node.bases}
            bases |= {base.attr for base in node.bases if isinstance(base, ast.Attribute)}
            if bases & clients:
                found.append(f"{path}:{node.lineno}: subclasses an aiokafka client")
        if not isinstance(node, ast.Call):
            continue
        name = _called_name(node)
        if name in clients and not _through_client_options(node):
            found.append(f"{path}:{node.lineno}: {name}(...) without **client_options(...)")
        if name in SECURITY_BUILDERS and name not in allowed:
            found.append(f"{path}:{node.lineno}: {name}(...) outside connectors/kafka_client.py")
    return found


def _sources() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def test_no_module_builds_a_kafka_client_without_client_options() -> None:
    """One mapping of [kafka]: a client built by hand is how the web service lost TLS."""
    sources = _sources()
    assert len(sources) > 50  # the scan really reads the tree
    found = [
        problem
        for path in sources
        for problem in violations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert found == []


def test_the_scan_sees_clients_built_by_hand() -> None:
    """The architecture check must catch what once broke, in every spelling."""
    by_hand = """
from aiokafka import AIOKafkaConsumer as Reader
import aiokafka
from aiokafka.helpers import create_ssl_context

def options(kafka):
    return {"bootstrap_servers": kafka.bootstrap_servers, "security_protocol": "SSL"}

a = Reader(**options(kafka), group_id=None)
b = aiokafka.AIOKafkaProducer(bootstrap_servers="127.0.0.1:9092")
c = create_ssl_context(cafile="ca.pem")

class Mine(Reader):
    pass
"""
    found = violations(by_hand, "connectors/web/example.py")
    assert len(found) == 4, found
    through = "from aiokafka import AIOKafkaConsumer\nAIOKafkaConsumer(**client_options(k), x=1)\n"
    assert violations(through, "connectors/web/example.py") == []


def test_tls_and_scram_settings_reach_the_client_options() -> None:
    """Every client gets the TLS context and the SCRAM login from [kafka]."""
    kafka = KafkaConfig.model_validate(
        {
            "bootstrap_servers": ["kafka-0.kafka:9093"],
            "security_protocol": "SASL_SSL",
            "ssl_check_hostname": False,
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": "palaute",
            "sasl_password": "s3cret-password",
        }
    )
    options = client_options(kafka, client_id_suffix="-web-index")
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is False
    assert options["security_protocol"] == "SASL_SSL"
    assert options["client_id"] == "palaute-web-index"
    assert (options["sasl_mechanism"], options["sasl_plain_username"]) == (
        "SCRAM-SHA-512",
        "palaute",
    )
    assert options["sasl_plain_password"] == "s3cret-password"


def test_a_plaintext_cluster_gets_no_security_options() -> None:
    """The local broker speaks plaintext; a TLS context there would fail the handshake."""
    options = client_options(local_broker("127.0.0.1:39092,127.0.0.1:39093"))
    assert options == {
        "bootstrap_servers": ["127.0.0.1:39092", "127.0.0.1:39093"],
        "client_id": "palaute",
        "security_protocol": "PLAINTEXT",
    }


def test_oauthbearer_is_refused_for_every_client() -> None:
    """Without a token provider a client would fail later with an obscure error."""
    kafka = KafkaConfig.model_validate(
        {"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER"}
    )
    with pytest.raises(ValueError, match="OAUTHBEARER"):
        client_options(kafka)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"security_protocol": "SSL"}, faust.SSLCredentials),
        (
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_username": "palaute",
                "sasl_password": "s3cret-password",
            },
            faust.SASLCredentials,
        ),
    ],
)
def test_faust_credentials_come_from_client_options(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, str], expected: type
) -> None:
    """Workers and web service reach the cluster alike: faust's login is derived, not redone."""
    from streams import app  # noqa: PLC0415 - the worker's module is heavy to import

    kafka = KafkaConfig.model_validate(settings)
    context = ssl.create_default_context()
    seen: list[KafkaConfig] = []

    def options(given: KafkaConfig) -> dict[str, object]:
        seen.append(given)
        return {**client_options(given), "ssl_context": context}

    monkeypatch.setattr(app, "client_options", options)
    credentials = app.broker_credentials(kafka)
    assert seen == [kafka]
    assert isinstance(credentials, expected)
    if isinstance(credentials, faust.SSLCredentials):
        assert credentials.context is context
    else:
        assert isinstance(credentials, faust.SASLCredentials)
        assert credentials.ssl_context is context
        assert (credentials.mechanism.value, credentials.password) == (
            "SCRAM-SHA-512",
            "s3cret-password",
        )
