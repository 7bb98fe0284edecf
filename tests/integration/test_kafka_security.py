"""Worker and web service against the local broker's TLS and SASL_SSL/SCRAM listeners.

Production clusters speak TLS, usually with SCRAM on top (the shipped
Kubernetes configuration uses ``SASL_SSL``). The web service's survey index
once built its consumer without the TLS context and failed at start, so every
answer page answered 503. Here one broker of this module's own (the session's
shared broker stays plaintext) gets an ``SSL`` and a ``SASL_SSL`` listener
with a certificate signed by a throw-away CA that the test makes with the
``openssl`` command line. For each protocol a real ``palaute worker`` and the
web service, configured for that listener only, take a contact to a sent
email; the one-tap page answers 200 and the vote is recorded. The harness's
own reads and topic admin use the broker's plaintext listener.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from connectors.kafka_client import client_options
from ops.kafka import LocalKafka, LocalKafkaError, load_settings
from schemas.config import KafkaConfig
from schemas.topics import RESPONSES
from tests.fixtures import free_ports, start_worker, stop_process
from tests.integration.citizen_harness import read_topic, running_citizen_web
from tests.integration.smtp_server import running_smtp_sink
from tests.integration.test_answer_end_to_end import (
    _config,
    _delivered_links,
    _produce_contact,
    _score_link,
    _tail,
    _wait_until_sent,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.integration.citizen_harness import CitizenEnv

pytestmark = pytest.mark.integration

SCRAM_USERNAME = "palaute"
SCORE = 4


@dataclass(frozen=True)
class SecuredBroker:
    """A broker with plaintext, TLS and SASL_SSL/SCRAM listeners, and how to reach each."""

    plaintext: str
    ssl: str
    sasl_ssl: str
    ca_file: Path
    scram_password: str

    def kafka(self, protocol: str, *, password: str | None = None) -> dict[str, Any]:
        """Give the ``[kafka]`` section of a client that uses one secured listener."""
        section: dict[str, Any] = {
            "bootstrap_servers": [self.ssl if protocol == "SSL" else self.sasl_ssl],
            "security_protocol": protocol,
            "ssl_cafile": str(self.ca_file),
        }
        if protocol == "SASL_SSL":
            section["sasl_mechanism"] = "SCRAM-SHA-512"
            section["sasl_username"] = SCRAM_USERNAME
            section["sasl_password"] = password or self.scram_password
        return section


def _openssl(directory: Path, *arguments: str) -> None:
    result = subprocess.run(
        ["openssl", *arguments], cwd=directory, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"openssl {arguments[0]} failed:\n{result.stderr}"


def _throwaway_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """Make a CA and a broker certificate for 127.0.0.1 it signed: (CA, chain, key)."""
    _openssl(
        directory,
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
        *("-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=Palaute test CA"),
        *("-addext", "basicConstraints=critical,CA:TRUE"),
        *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
    )
    _openssl(
        directory,
        *("req", "-newkey", "rsa:2048", "-nodes"),
        *("-keyout", "broker.key", "-out", "broker.csr", "-subj", "/CN=127.0.0.1"),
    )
    (directory / "broker.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n",
        encoding="ascii",
    )
    _openssl(
        directory,
        *("x509", "-req", "-in", "broker.csr", "-days", "1", "-out", "broker.pem"),
        *("-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-extfile", "broker.ext"),
    )
    return directory / "ca.pem", directory / "broker.pem", directory / "broker.key"


@pytest.fixture(scope="module")
def secured_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    """Start this module's broker with its secured listeners; stop and wipe it afterwards."""
    directory = tmp_path_factory.mktemp("secured-kafka")
    ca_file, chain, key = _throwaway_certificates(directory)
    password = secrets.token_hex(16)
    # Ports the system gives: a fixed offset from the session broker's port would
    # meet another pytest-xdist process's broker.
    port, controller_port, ssl_port, sasl_ssl_port = free_ports(4)
    settings = load_settings(
        port=port,
        controller_port=controller_port,
        ssl_port=ssl_port,
        sasl_ssl_port=sasl_ssl_port,
        state_dir=directory / "state",
        tls_certificate_chain=chain,
        tls_private_key=key,
        scram_username=SCRAM_USERNAME,
        scram_password=password,
    )
    broker = LocalKafka(settings)
    try:
        status = broker.up()
    except LocalKafkaError as error:
        # The message carries the broker log's last lines: the reason is on screen.
        pytest.fail(f"could not start the secured Kafka broker: {error}", pytrace=False)
    try:
        yield SecuredBroker(
            plaintext=status.bootstrap_servers,
            ssl=f"127.0.0.1:{ssl_port}",
            sasl_ssl=f"127.0.0.1:{sasl_ssl_port}",
            ca_file=ca_file,
            scram_password=password,
        )
    finally:
        broker.down(wipe=True)


def _worker_config(tmp_path: Path, env: CitizenEnv, smtp_port: int, kafka: dict[str, Any]) -> Path:
    """Write the end-to-end test's worker configuration with a secured ``[kafka]`` section."""
    path = _config(tmp_path, env, smtp_port)
    plaintext = f'[kafka]\nbootstrap_servers = ["{env.bootstrap}"]\n'
    secured = "[kafka]\n" + "".join(
        f"{key} = {json.dumps(value)}\n" for key, value in kafka.items()
    )
    text = path.read_text(encoding="utf-8")
    assert plaintext in text
    path.write_text(text.replace(plaintext, secured), encoding="utf-8")
    return path


async def _refused(kafka: dict[str, Any]) -> bool:
    producer = AIOKafkaProducer(**client_options(KafkaConfig.model_validate(kafka)))
    try:
        await producer.start()
    except KafkaConnectionError:
        return True
    finally:
        await producer.stop()
    return False


async def test_the_secured_listeners_refuse_clients_without_the_right_credentials(
    secured_broker: SecuredBroker,
) -> None:
    """The listeners really check: without the CA, or with a wrong password, nobody gets in."""
    untrusting = {**secured_broker.kafka("SSL"), "ssl_cafile": None}
    assert await _refused(untrusting)
    assert await _refused(secured_broker.kafka("SASL_SSL", password="not-the-password"))
    assert not await _refused(secured_broker.kafka("SASL_SSL"))


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
async def test_worker_and_web_take_a_contact_to_a_recorded_answer(
    secured_broker: SecuredBroker, protocol: str, tmp_path: Path
) -> None:
    """With TLS (and SCRAM) a contact is decided, its page answers 200 and the vote is kept."""
    kafka = secured_broker.kafka(protocol)
    log = tmp_path / "worker.log"
    async with (
        running_citizen_web(
            secured_broker.plaintext, str(tmp_path / "web-data"), kafka=kafka
        ) as env,
        running_smtp_sink() as sink,
    ):
        assert env.settings.kafka.security_protocol == protocol
        worker = start_worker(_worker_config(tmp_path, env, sink.port, kafka), log)
        try:
            await _produce_contact(env)
            links = await _delivered_links(sink, log)
            survey_id = await _wait_until_sent(env)
            score_link = _score_link(links, env, SCORE)
            async with aiohttp.ClientSession() as citizen:
                async with citizen.get(score_link) as page:
                    page_status, page_text = page.status, await page.text()
                async with citizen.post(score_link, data={"score": str(SCORE)}) as voted:
                    voted_status, voted_query = voted.status, voted.url.query
            answers = await read_topic(env.bootstrap, env.topic(RESPONSES), expect=1)
            worker_log = _tail(log)
        finally:
            stop_process(worker)

    assert page_status == 200, page_text[:500]
    assert (voted_status, voted_query.get("v")) == (200, "1")
    recorded = [answer for answer in answers if answer.get("survey_id") == survey_id]
    assert [answer.get("score") for answer in recorded] == [SCORE], (answers, worker_log)
