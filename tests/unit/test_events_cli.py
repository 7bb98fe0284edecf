"""``palaute events sample | palaute events validate -``: the integrator's pre-flight check."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

HETU = "131052-308T"
TEXT_FIELDS = [
    ("subject",),
    ("source",),
    ("data", "contact", "context", "team"),
    ("data", "contact", "context", "case_type"),
    ("data", "citizen", "id"),
    ("data", "touchpoint", "name"),
    ("data", "touchpoint", "service"),
    ("data", "touchpoint", "location"),
]


def palaute(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "palaute", *args],
        input=stdin,
        capture_output=True,
        check=False,
        timeout=60,
    )


@pytest.fixture(scope="module")
def sample() -> bytes:
    result = palaute("events", "sample", "contact-completed")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_sample_validates(sample: bytes) -> None:
    """The documented pipe must succeed, or integrators start from a broken example."""
    result = palaute("events", "validate", "-", stdin=sample)
    assert result.returncode == 0, result.stdout
    assert b"ok (fi.palaute.contact.completed.v1)" in result.stdout


@pytest.mark.parametrize("path", TEXT_FIELDS, ids=".".join)
def test_identity_code_in_any_text_field_fails_names_the_field_and_hides_the_code(
    sample: bytes, path: tuple[str, ...]
) -> None:
    """A code anywhere is refused; the error must not spread it further."""
    event = orjson.loads(sample)
    node = event
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = f"x{HETU.replace('-', 'A')}" if path[-1] == "id" else f"x {HETU} y"
    result = palaute("events", "validate", "-", stdin=orjson.dumps(event))
    assert result.returncode == 1
    output = result.stdout.decode()
    assert f"{'.'.join(path)}: contains a Finnish personal identity code" in output
    assert "308T" not in output + result.stderr.decode()


def test_json_lines_report_each_line(sample: bytes) -> None:
    """A file of many events says which lines are bad and exits non-zero."""
    good = orjson.dumps(orjson.loads(sample))
    bad = good.replace(b'"specversion":"1.0"', b'"specversion":"0.3"')
    result = palaute("events", "validate", "-", stdin=good + b"\n" + bad + b"\n" + good + b"\n")
    assert result.returncode == 1
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "line 1: ok (fi.palaute.contact.completed.v1)"
    assert lines[1].startswith("line 2: specversion:")
    assert lines[-1] == "2 valid, 1 invalid"


def test_unreadable_file_is_a_usage_error() -> None:
    """A typo in a path should not look like an invalid event."""
    result = palaute("events", "validate", "/nonexistent/events.jsonl")
    assert result.returncode == 2
    assert b"cannot read" in result.stderr


@pytest.mark.parametrize(
    "name", ["contact-completed", "survey-scheduled", "rating", "score-drop-alert", "dead-letter"]
)
def test_every_sample_type_validates(name: str) -> None:
    """Each sample type printed by the tool passes the same tool."""
    printed = palaute("events", "sample", name)
    assert printed.returncode == 0
    result = palaute("events", "validate", "-", stdin=printed.stdout)
    assert result.returncode == 0, result.stdout
