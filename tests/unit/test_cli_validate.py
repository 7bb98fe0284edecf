"""Bad input on the command line gets an answer that says where, what and how to fix it.

``palaute events validate`` once reported a JSON Lines file with one broken
line as one error, with no line number and no word about the good lines;
``palaute config check`` said "(misspelt?)" without the right key, and an
invalid duration gave pydantic's "invalid character in hour".
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from unittest import mock

import orjson
import pytest

from palaute.cli import main
from schemas.samples import SAMPLES

if TYPE_CHECKING:
    from pathlib import Path

SECRETS = """
[secrets]
pseudonymisation_key = "cli-validate-pseudonymisation-key-0123456789"
link_signing_key = "cli-validate-link-signing-key-9876543210abcdef"
"""


def palaute(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run the command line in this process (a fresh interpreter costs seconds a call)."""
    out, err = io.StringIO(), io.StringIO()
    given = io.TextIOWrapper(io.BytesIO(stdin or b""), encoding="utf-8")
    with (
        mock.patch.object(sys, "stdin", given),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        status = main(list(args))
    return subprocess.CompletedProcess(list(args), status, out.getvalue(), err.getvalue())


def test_the_installed_command_reports_json_lines_by_line() -> None:
    """Once through a real process: what an integrator runs in a shell."""
    good = _event()
    completed = subprocess.run(
        [sys.executable, "-m", "palaute", "events", "validate", "-"],
        input=good + b"\n{broken\n",
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 1
    lines = completed.stdout.decode().splitlines()
    assert lines[0] == "line 1: ok (fi.palaute.contact.completed.v1)"
    assert lines[1].startswith("line 2: $: not valid JSON: ")
    assert lines[1].endswith(" [invalid_json]")
    assert lines[2:] == ["1 valid, 1 invalid"]


def _event() -> bytes:
    return orjson.dumps(
        orjson.loads(SAMPLES["contact-completed"](datetime.now(UTC)).model_dump_json())
    )


@pytest.mark.parametrize(
    "broken",
    [
        b'{"specversion": "1.0", "id": "evt-1", "source": "/crm/x", "ty',  # cut short
        b"not json at all",
        b'{"type": "a", "type": "b"}',
    ],
    ids=["truncated", "text", "repeated-member"],
)
def test_json_lines_with_one_broken_line_report_every_line_by_number(broken: bytes) -> None:
    """The good lines are confirmed and the broken one is named, so one fix is enough."""
    good = _event()
    result = palaute("events", "validate", "-", stdin=b"\n".join([good, broken, b"", good]) + b"\n")
    assert result.returncode == 1, result.stdout
    lines = result.stdout.splitlines()
    assert lines[0] == "line 1: ok (fi.palaute.contact.completed.v1)"
    assert lines[1].startswith("line 2: $: ")
    assert lines[-2] == "line 4: ok (fi.palaute.contact.completed.v1)"
    assert lines[-1] == "2 valid, 1 invalid"


def test_a_jsonl_file_of_one_line_is_reported_by_line(tmp_path: Path) -> None:
    """A .jsonl file is JSON Lines whatever its length: the answer names the line."""
    path = tmp_path / "contacts.jsonl"
    path.write_bytes(b"\n\n{oops\n")
    result = palaute("events", "validate", str(path))
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].startswith("line 3: $: not valid JSON")
    assert result.stdout.splitlines()[-1] == "0 valid, 1 invalid"


def test_a_pretty_printed_event_is_still_one_document() -> None:
    """A multi-line event is one event, valid or broken, not a line-by-line mess."""
    pretty = orjson.dumps(orjson.loads(_event()), option=orjson.OPT_INDENT_2)
    assert (
        palaute("events", "validate", "-", stdin=pretty).stdout
        == "-: ok (fi.palaute.contact.completed.v1)\n"
    )
    broken = palaute("events", "validate", "-", stdin=pretty[:-3])
    assert broken.returncode == 1
    assert broken.stdout.startswith("-: $: not valid JSON")
    assert "line" not in broken.stdout


def _check(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "palaute.toml"
    path.write_text(SECRETS + body, encoding="utf-8")
    return palaute("config", "check", str(path))


@pytest.mark.parametrize(
    ("body", "path", "suggestion"),
    [
        ("[policy]\nfrequency_capp = 2\n", "policy.frequency_capp", "frequency_cap"),
        ('[streams]\nstaled_after = "5m"\n', "streams.staled_after", "stalled_after"),
        ("[plicy]\nmin_age = 18\n", "plicy", "policy"),
        (
            "[touchpoints.a]\nsampling_rte = 0.5\n",
            "touchpoints.a.sampling_rte",
            "sampling_rate",
        ),
    ],
)
def test_a_misspelt_key_gets_the_closest_known_key(
    tmp_path: Path, body: str, path: str, suggestion: str
) -> None:
    """A bare "(misspelt?)" sends the operator to the reference; the right key saves the trip."""
    result = _check(tmp_path, body)
    assert result.returncode == 1
    assert f"{path}: unknown setting; did you mean {suggestion}?" in result.stderr, result.stderr


def test_a_key_like_no_other_gets_no_guess(tmp_path: Path) -> None:
    """A wrong guess is worse than none."""
    result = _check(tmp_path, "[policy]\nzzzzzz = 1\n")
    assert "policy.zzzzzz: unknown setting (see palaute config reference)" in result.stderr


@pytest.mark.parametrize("value", ['"15 minutes"', '"1h30m"', '"fortnight"', '"-5m"'])
def test_an_invalid_duration_names_the_accepted_forms(tmp_path: Path, value: str) -> None:
    """Pydantic's "invalid character in hour" does not say what to write instead."""
    result = _check(tmp_path, f"[policy]\nmax_contact_age = {value}\n")
    assert result.returncode == 1
    problem = next(line for line in result.stderr.splitlines() if "policy.max_contact_age" in line)
    assert '"90s", "15m", "2h", "30d", "1w"' in problem, problem
    assert "PT15M" in problem
    assert "hour" not in problem


def test_the_accepted_duration_forms_all_pass(tmp_path: Path) -> None:
    """What the message offers must work."""
    for value in ('"90s"', '"15m"', '"2h"', '"30d"', '"1w"', '"PT15M"', "900"):
        result = _check(tmp_path, f"[policy]\nmax_contact_age = {value}\n")
        assert result.returncode == 0, (value, result.stderr)


def test_a_duration_below_its_bound_says_the_bound_as_operators_write_it(tmp_path: Path) -> None:
    """A bound written as "datetime.timedelta(seconds=1)" is Python, not configuration."""
    result = _check(tmp_path, '[streams]\nstalled_after = "0s"\n')
    assert result.returncode == 1
    assert "streams.stalled_after: must be at least 1s" in result.stderr, result.stderr
    assert "timedelta" not in result.stderr
