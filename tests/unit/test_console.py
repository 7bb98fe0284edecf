"""The breakdowns and statements pages and the downloads, served from a board in memory."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from connectors.web import console, console_views
from connectors.web.app import _errors as error_middleware  # the service's own error shape
from connectors.web.board import Board
from engine.history import recount
from schemas.base import Language, Scale, SurveyChannel
from schemas.config import Settings
from schemas.contacts import TouchpointChannel
from schemas.responses import CommentReceived, Rating, StatementAnswered
from schemas.topics import comment_key

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
STATEMENT = {"fi": "Asiani hoitui", "sv": "Mitt ärende sköttes", "en": "My matter was handled"}


def _settings() -> Settings:
    return Settings.model_validate(
        {
            "secrets": {"pseudonymisation_key": "d" * 40, "link_signing_key": "e" * 40},
            "touchpoints": {"desk": {"name": "Palvelutiski", "follow_up_statements": [STATEMENT]}},
            "breakdowns": {"teams": ["Neuvonta A", "Neuvonta B"]},
            "opendata": {"min_answers": 3},
        }
    )


def _rating(survey: str, score: int, team: str, *, hours: float = 1, wait: int = 30) -> Rating:
    return Rating(
        rating_id=survey,
        survey_id=survey,
        touchpoint_id="desk",
        service="library",
        touchpoint_channel=TouchpointChannel.FACE_TO_FACE,
        survey_channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=Scale.CSAT_5,
        score=score,
        normalised=(score - 1) / 4,
        answered_after_seconds=30.0,
        answered_at=NOW - timedelta(hours=hours),
        team=team,
        queue_wait_seconds=wait,
    )


def _board(settings: Settings) -> Board:
    board = Board(period=timedelta(days=30))
    ratings = [
        *(_rating(f"a{n}", score, "neuvonta a") for n, score in enumerate([5, 5, 4, 4])),
        *(_rating(f"b{n}", score, "Neuvonta B") for n, score in enumerate([1, 2])),
        _rating("old", 1, "Neuvonta A", hours=24 * 10),
    ]
    for rating in ratings:
        board.apply(rating)
    # The history topic's counts, as the history stage counts these ratings.
    counts = recount(
        ratings,
        [],
        ZoneInfo(settings.policy.time_zone),
        lambda _touchpoint: Scale.CSAT_5,
        now=NOW,
        breakdowns=settings.breakdowns,
    )
    for key, bucket in counts.items():
        board.apply(bucket.record(key))
    for n, score in enumerate([5, 4, 4, 2]):
        board.apply(
            StatementAnswered(
                answer_id=f"st{n}",
                survey_id=f"a{n}",
                statement_index=0,
                score=score,
                received_at=NOW - timedelta(hours=1),
            )
        )
    return board


def _comment(answer_id: str, text: str, hours: float, survey: str = "a0") -> CommentReceived:
    return CommentReceived(
        answer_id=answer_id, survey_id=survey, text=text, received_at=NOW - timedelta(hours=hours)
    )


#: The comments topic as the export reads it: one erased by a tombstone, one old, one elsewhere.
COMMENTS = [
    _comment("c1", "=SUM(A1) kiitos", 1),
    _comment("c2", "vanha", 24 * 10),
    _comment("c3", "soittakaa minulle", 2),
    _comment("c4", "toisen kosketuspisteen", 1, survey="elsewhere"),
]


async def _comments_since(_since: datetime) -> list[tuple[bytes | None, bytes | None]]:
    records: list[tuple[bytes | None, bytes | None]] = [
        (comment_key(c.survey_id, c.answer_id).encode(), c.model_dump_json().encode())
        for c in COMMENTS
    ]
    return [*records, (comment_key("a0", "c3").encode(), None)]


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    settings = _settings()
    app = web.Application(middlewares=[error_middleware])
    console.setup(
        app,
        console.Console(
            settings,
            _board(settings),
            authorise=lambda _request: None,
            known=lambda touchpoint: touchpoint == "desk",
            clock=lambda: NOW,
            comments_since=_comments_since,
        ),
    )
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _text(client: TestClient[Any, Any], path: str) -> str:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    return await response.text()


async def test_the_breakdowns_page_shows_each_team_and_hides_a_small_one(
    client: TestClient[Any, Any],
) -> None:
    """Team A's four answers are shown; team B's two could be told apart and are not."""
    page = await _text(client, "/dashboard/touchpoints/desk/breakdowns?lang=sv&window=7d")
    assert '<html lang="sv">' in page
    assert 'data-group="Neuvonta A" data-count="4" data-mean="4.5"' in page
    assert 'data-group="Neuvonta B" data-suppressed="true"' in page
    assert "färre än 3 svar" in page
    assert 'data-group="all" data-count="6"' in page  # the ten-day-old answer is out
    assert "under 1 min" in page


async def test_the_statements_page_shows_the_statement_in_the_page_language(
    client: TestClient[Any, Any],
) -> None:
    """The statement's own text per language, with how many agreed at each step."""
    for language, text in STATEMENT.items():
        page = await _text(client, f"/dashboard/touchpoints/desk/statements?lang={language}")
        assert text in page
        assert f'lang="{language}"' in page
    page = await _text(client, "/dashboard/touchpoints/desk/statements?lang=en")
    assert "<td>0</td><td>1</td><td>0</td><td>2</td><td>1</td>" in page
    assert "Agree (4\N{EN DASH}5) 75%" in page


async def test_the_spreadsheet_holds_the_pages_figures_and_the_comments(
    client: TestClient[Any, Any],
) -> None:
    """An exported XLSX opens with openpyxl and its figures are the page's figures."""
    response = await client.get("/dashboard/touchpoints/desk/export/figures.xlsx?window=7d")
    assert response.status == 200
    assert "attachment" in response.headers["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(await response.read()))
    figures = list(book["figures"].iter_rows(values_only=True))
    header = figures[0]
    rows = [dict(zip(header, row, strict=True)) for row in figures[1:]]
    today = [row for row in rows if row["answers"] is not None]
    team_a = next(row for row in today if row["group"] == "Neuvonta A")
    assert (team_a["answers"], team_a["mean"], team_a["csat_share"]) == (4, 4.5, 1.0)
    team_b = next(row for row in rows if row["group"] == "Neuvonta B")
    assert team_b["suppressed"] is True
    assert team_b["mean"] is None
    comments = list(book["comments"].iter_rows(values_only=True))
    assert [row[2:] for row in comments[1:]] == [(5, "'=SUM(A1) kiitos")]


async def test_the_csv_downloads_read_back_and_defuse_formulas(
    client: TestClient[Any, Any],
) -> None:
    """A comment starting with '=' must not run as a formula in a spreadsheet."""
    text = await _text(client, "/dashboard/touchpoints/desk/export/comments.csv")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == ["touchpoint_id", "received_at", "score", "text"]
    # The erased comment, the ten-day-old one and another touchpoint's are left out.
    assert [row[2:] for row in rows[1:]] == [["5", "'=SUM(A1) kiitos"]]
    figures = await _text(client, "/dashboard/touchpoints/desk/export/figures.csv?window=24h")
    parsed = list(csv.DictReader(io.StringIO(figures.lstrip("\ufeff"))))
    whole = next(row for row in parsed if row["dimension"] == "all" and row["answers"])
    assert (whole["answers"], whole["mean"]) == ("6", "3.5")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/dashboard/touchpoints/desk/breakdowns?window=5y", 400),
        ("/dashboard/touchpoints/desk/export/figures.csv?window=1w", 400),
        ("/dashboard/touchpoints/nowhere/statements", 404),
        ("/dashboard/touchpoints/nowhere/export/figures.csv", 404),
    ],
)
async def test_an_unknown_window_or_touchpoint_is_a_client_error(
    client: TestClient[Any, Any], path: str, status: int
) -> None:
    """Bad input gets a 4xx with a reason, never a 5xx."""
    response = await client.get(path)
    assert response.status == status
    assert "code" in await response.text() or "error" in await response.text()


@pytest.mark.parametrize("language", ["fi", "sv", "en"])
def test_the_touchpoint_page_links_to_its_breakdowns_and_statements(language: str) -> None:
    """Without a link the pages exist only for those who know their address."""
    links = console_views.touchpoint_links("/dashboard/touchpoints/desk", language)
    assert f'href="/dashboard/touchpoints/desk/breakdowns?lang={language}"' in links
    assert f'href="/dashboard/touchpoints/desk/statements?lang={language}"' in links
