"""The local broker's optional TLS and SASL_SSL/SCRAM listeners, without a JVM.

Clients are tried against these listeners in tests/integration/test_kafka_security.py;
here the configuration they rest on is checked: what the broker is told, and
the mistakes that would otherwise surface as an obscure JVM error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ops.kafka import KafkaSettingsError, load_settings, render_server_properties
from ops.kafka.settings import listener_port

if TYPE_CHECKING:
    from pathlib import Path

CHAIN = "-----BEGIN CERTIFICATE-----\nMIIBchain\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIBkey\n-----END PRIVATE KEY-----\n"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("PORT", "CONTROLLER_PORT", "SSL_PORT", "SASL_SSL_PORT", "SCRAM_PASSWORD"):
        monkeypatch.delenv(f"PALAUTE_KAFKA_{name}", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def pem_files(tmp_path: Path) -> tuple[Path, Path]:
    chain, key = tmp_path / "broker.pem", tmp_path / "broker.key"
    chain.write_text(CHAIN, encoding="ascii")
    key.write_text(KEY, encoding="ascii")
    return chain, key


def _properties(text: str) -> dict[str, str]:
    lines = (line for line in text.splitlines() if line and not line.startswith("#"))
    return dict(line.split("=", 1) for line in lines)


def test_secured_listeners_are_configured_with_inline_pem_and_scram(
    tmp_path: Path, pem_files: tuple[Path, Path]
) -> None:
    """Clients can be tried against TLS and SCRAM as production clusters offer them."""
    chain, key = pem_files
    settings = load_settings(
        port=19700,
        ssl_port=19702,
        sasl_ssl_port=19703,
        state_dir=tmp_path / "state",
        tls_certificate_chain=chain,
        tls_private_key=key,
        scram_password="pw-123",
    )
    properties = _properties(render_server_properties(settings))
    advertised = "PLAINTEXT://127.0.0.1:19700,SSL://127.0.0.1:19702,SASL_SSL://127.0.0.1:19703"
    assert properties["advertised.listeners"] == advertised
    assert properties["listeners"] == advertised + ",CONTROLLER://127.0.0.1:19701"
    assert properties["listener.security.protocol.map"] == (
        "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"
    )
    assert properties["ssl.keystore.type"] == "PEM"
    # One line each in the file; Java's properties format turns \n back into line breaks.
    assert properties["ssl.keystore.certificate.chain"] == CHAIN.strip().replace("\n", "\\n")
    assert properties["ssl.keystore.key"] == KEY.strip().replace("\n", "\\n")
    assert properties["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    jaas = properties["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    assert jaas == "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    assert settings.scram_credential == "SCRAM-SHA-512=[name=palaute,password=pw-123]"
    # Status probes the plaintext listener, wherever it stands among the others.
    assert listener_port(render_server_properties(settings)) == 19700


def test_a_plain_broker_has_no_security_settings(tmp_path: Path) -> None:
    """The development broker stays as it was: plaintext only, no SCRAM user."""
    settings = load_settings(port=19700, state_dir=tmp_path / "state")
    properties = _properties(render_server_properties(settings))
    assert not [name for name in properties if name.startswith(("ssl.", "sasl.", "listener.name"))]
    assert settings.scram_credential is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ssl_port": 19702}, "needs tls_certificate_chain and tls_private_key"),
        ({"sasl_ssl_port": 19703, "with_pem": True}, "needs scram_password"),
        ({"ssl_port": 19701, "with_pem": True}, "a port of its own"),
        (
            {"sasl_ssl_port": 19703, "with_pem": True, "scram_password": "a,b]"},
            "only letters, digits",
        ),
    ],
)
def test_secured_listener_mistakes_are_named_before_the_jvm_starts(
    tmp_path: Path, pem_files: tuple[Path, Path], overrides: dict[str, object], message: str
) -> None:
    """A missing certificate or password would otherwise end in a Java stack trace."""
    given = dict(overrides)
    if given.pop("with_pem", False):
        given["tls_certificate_chain"], given["tls_private_key"] = pem_files
    with pytest.raises(KafkaSettingsError, match=message):
        load_settings(port=19700, state_dir=tmp_path / "state", **given)
