"""The demo tells the truth about itself: its port, and the surveys it did not send."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

from palaute.demo.run import Tally, _record_survey, _unsent_line, _web_port

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _time_wait_port() -> int:
    """Leave a port with a connection in TIME-WAIT on the listening side, as a Ctrl-C does."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = int(listener.getsockname()[1])
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # the server side closes first: its end waits in TIME-WAIT
        client.recv(1)
        client.close()
    return port


def test_a_rerun_keeps_its_web_port_while_the_last_runs_sockets_wait() -> None:
    """A rerun right after Ctrl-C used to lose 8080 to sockets in TIME-WAIT."""
    port = _time_wait_port()
    with socket.socket() as plain:
        try:
            plain.bind(("127.0.0.1", port))
            plain_bound = True
        except OSError:
            plain_bound = False
    assert not plain_bound, "the port should still hold a socket in TIME-WAIT"
    assert _web_port(port) == port


def test_a_port_in_use_is_still_given_up() -> None:
    """A port another server listens on is really taken."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = int(other.getsockname()[1])
        assert _web_port(taken) != taken


def _scheduled(survey_id: str, send_at: datetime) -> dict[str, str]:
    return {
        "type": "SurveyScheduled",
        "survey_id": survey_id,
        "channel": "sms",
        "send_at": send_at.isoformat(),
    }


def test_the_summary_says_how_many_surveys_were_not_sent_and_why() -> None:
    """On a loaded machine a third of the surveys were unsent at the end, and nothing said so."""
    tally = Tally()
    _record_survey(tally, _scheduled("a", NOW - timedelta(seconds=30)))
    _record_survey(tally, _scheduled("b", NOW - timedelta(seconds=20)))
    _record_survey(tally, _scheduled("c", NOW + timedelta(seconds=1)))
    _record_survey(tally, _scheduled("d", NOW - timedelta(seconds=40)))
    _record_survey(tally, {"type": "SurveySent", "survey_id": "a", "channel": "sms"})
    _record_survey(tally, {"type": "SurveyFailed", "survey_id": "d"})
    line = _unsent_line(tally, NOW)
    assert line.startswith("Not sent when the demo stopped: 2 scheduled surveys: ")
    assert "1 not yet due" in line
    assert "1 due but still queued" in line
    assert line.endswith("1 failed")
    _record_survey(tally, {"type": "SurveySent", "survey_id": "b", "channel": "sms"})
    _record_survey(tally, {"type": "SurveySkipped", "survey_id": "c", "reason": "superseded"})
    assert _unsent_line(tally, NOW) == "Every scheduled survey was sent or closed (1 failed)."
