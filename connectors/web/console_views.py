"""HTML of a touchpoint's breakdowns and follow-up statements, in Finnish, Swedish and English.

Both pages are plain tables with a caption and header cells, server-rendered
and without script: they read the same for a screen reader as on screen, and
they stack into one column at 390 px. A suppressed group or statement says
so in words instead of showing a blank.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Final

from connectors.web.dashboard_views import number, percent
from engine.breakdowns import OTHER

if TYPE_CHECKING:
    from collections.abc import Sequence

    from engine.group_figures import GroupFigures, StatementFigures

LANGUAGES: Final = ("fi", "sv", "en")
LANGUAGE_NAMES: Final = {"fi": "Suomeksi", "sv": "På svenska", "en": "In English"}
TEXT: Final[dict[str, dict[str, str]]] = {
    "fi": {
        "breakdowns": "Erittely: {name}",
        "statements": "Väittämät: {name}",
        "back": "Kosketuspisteen näkymä",
        "period": "Jakso",
        "window": "viimeiset {window}",
        "group": "Ryhmä",
        "answers": "Vastauksia",
        "mean": "Keskiarvo",
        "satisfied": "Tyytyväisiä (95 %:n väli)",
        "suppressed": "alle {n} vastausta, ei näytetä",
        "no_answers": "Ei vastauksia tällä jaksolla.",
        "no_statements": "Tällä kosketuspisteellä ei ole väittämiä.",
        "statement": "Väittämä",
        "agree": "Samaa mieltä (4\N{EN DASH}5)",
        "scale": "1 = täysin eri mieltä, 5 = täysin samaa mieltä",
        "other": "muut",
        "all": "Koko kosketuspiste",
        "channel": "Vastauskanava",
        "team": "Tiimi",
        "case_type": "Asiatyyppi",
        "queue_wait": "Jonotusaika",
        "sms": "tekstiviesti",
        "email": "sähköposti",
        "under": "alle {to} min",
        "between": "{low}\N{EN DASH}{to} min",
        "over": "yli {low} min",
        "downloads": "Lataa luvut",
        "csv": "Päivittäiset luvut (CSV)",
        "xlsx": "Päivittäiset luvut (Excel)",
        "comments_csv": "Kommentit (CSV)",
        "more": "Lisää tästä kosketuspisteestä",
        "breakdowns_link": "Erittely tiimeittäin, asiatyypeittäin, kanavittain "
        "ja jonotusajan mukaan",
        "statements_link": "Väittämien vastaukset",
        "small_rule": "Ryhmä, jossa on alle {n} vastausta, näytetään ilman lukuja, "
        "jottei yksittäistä vastaajaa voi tunnistaa.",
    },
    "sv": {
        "breakdowns": "Fördelning: {name}",
        "statements": "Påståenden: {name}",
        "back": "Kontaktpunktens vy",
        "period": "Period",
        "window": "senaste {window}",
        "group": "Grupp",
        "answers": "Svar",
        "mean": "Medelvärde",
        "satisfied": "Nöjda (95 % intervall)",
        "suppressed": "färre än {n} svar, visas inte",
        "no_answers": "Inga svar under perioden.",
        "no_statements": "Kontaktpunkten har inga påståenden.",
        "statement": "Påstående",
        "agree": "Instämmer (4\N{EN DASH}5)",
        "scale": "1 = instämmer inte alls, 5 = instämmer helt",
        "other": "övriga",
        "all": "Hela kontaktpunkten",
        "channel": "Svarskanal",
        "team": "Team",
        "case_type": "Ärendetyp",
        "queue_wait": "Kötid",
        "sms": "sms",
        "email": "e-post",
        "under": "under {to} min",
        "between": "{low}\N{EN DASH}{to} min",
        "over": "över {low} min",
        "downloads": "Ladda ner siffrorna",
        "csv": "Dagliga siffror (CSV)",
        "xlsx": "Dagliga siffror (Excel)",
        "comments_csv": "Kommentarer (CSV)",
        "more": "Mer om kontaktpunkten",
        "breakdowns_link": "Fördelning per team, ärendetyp, kanal och kötid",
        "statements_link": "Svar på påståendena",
        "small_rule": "En grupp med färre än {n} svar visas utan siffror, så att ingen "
        "enskild svarande kan identifieras.",
    },
    "en": {
        "breakdowns": "Breakdowns: {name}",
        "statements": "Statements: {name}",
        "back": "Touchpoint view",
        "period": "Period",
        "window": "last {window}",
        "group": "Group",
        "answers": "Answers",
        "mean": "Mean",
        "satisfied": "Satisfied (95% interval)",
        "suppressed": "fewer than {n} answers, not shown",
        "no_answers": "No answers in this period.",
        "no_statements": "This touchpoint has no follow-up statements.",
        "statement": "Statement",
        "agree": "Agree (4\N{EN DASH}5)",
        "scale": "1 = strongly disagree, 5 = strongly agree",
        "other": "other",
        "all": "Whole touchpoint",
        "channel": "Answer channel",
        "team": "Team",
        "case_type": "Case type",
        "queue_wait": "Queue wait",
        "sms": "SMS",
        "email": "email",
        "under": "under {to} min",
        "between": "{low}\N{EN DASH}{to} min",
        "over": "over {low} min",
        "downloads": "Download the figures",
        "csv": "Daily figures (CSV)",
        "xlsx": "Daily figures (Excel)",
        "comments_csv": "Comments (CSV)",
        "more": "More on this touchpoint",
        "breakdowns_link": "Breakdowns by team, case type, channel and queue wait",
        "statements_link": "Answers to the statements",
        "small_rule": "A group with fewer than {n} answers is shown without figures, so "
        "that no single respondent can be singled out.",
    },
}


def group_label(dimension: str, value: str, language: str) -> str:  # noqa: PLR0911 - a label per kind
    """Name a group's value for people: channels and bands in words, 'other' translated."""
    text = TEXT[language]
    if dimension == "all":
        return text["all"]
    if value == OTHER:
        return text["other"]
    if dimension == "channel":
        return text.get(value, value)
    if dimension == "queue_wait":
        low, _, to = value.partition("-")
        if value.endswith("+"):
            return text["over"].format(low=value[:-1])
        if low == "0":
            return text["under"].format(to=to)
        return text["between"].format(low=low, to=to)
    return value


def window_links(base: str, windows: Sequence[str], chosen: str, language: str) -> str:
    """Render the period choice as links; the chosen one is marked as the current page."""
    text = TEXT[language]
    current = ' aria-current="page"'
    items = "".join(
        f'<li><a href="{html.escape(base)}?lang={language}&amp;window={w}"'
        f"{current if w == chosen else ''}>"
        f"{html.escape(text['window'].format(window=w))}</a></li>"
        for w in windows
    )
    return f'<nav aria-label="{text["period"]}"><ul class="periods">{items}</ul></nav>'


def breakdown_tables(lines: Sequence[GroupFigures], language: str, min_answers: int) -> str:
    """Render one table per dimension, each row a group with its figures or the reason none."""
    text = TEXT[language]
    if not lines:
        return f"<p>{text['no_answers']}</p>"
    tables = []
    for dimension in dict.fromkeys(line.dimension for line in lines):
        rows = "".join(
            _group_row(line, language, min_answers) for line in lines if line.dimension == dimension
        )
        tables.append(
            f'<table class="groups" data-dimension="{dimension}">'
            f"<caption>{text[dimension]}</caption><thead><tr>"
            f'<th scope="col">{text["group"]}</th><th scope="col">{text["answers"]}</th>'
            f'<th scope="col">{text["mean"]}</th><th scope="col">{text["satisfied"]}</th>'
            f"</tr></thead><tbody>{rows}</tbody></table>"
        )
    rule = text["small_rule"].format(n=min_answers)
    return "".join(tables) + f'<p class="muted">{html.escape(rule)}</p>'


def _group_row(line: GroupFigures, language: str, min_answers: int) -> str:
    label = html.escape(group_label(line.dimension, line.value, language))
    head = f'<th scope="row">{label}</th>'
    value = html.escape(line.value)
    if line.suppressed:
        note = html.escape(TEXT[language]["suppressed"].format(n=min_answers))
        return (
            f'<tr data-group="{value}" data-suppressed="true">{head}'
            f'<td colspan="3" class="muted">{note}</td></tr>'
        )
    interval = f"{percent(line.csat_low, language)}\N{EN DASH}{percent(line.csat_high, language)}"
    return (
        f'<tr data-group="{value}" data-count="{line.count}" data-mean="{line.mean}">{head}'
        f"<td>{line.count}</td><td>{number(line.mean, language)}</td>"
        f"<td>{percent(line.csat_share, language)} ({interval})</td></tr>"
    )


def statement_tables(
    lines: Sequence[StatementFigures], texts: Sequence[str], language: str, min_answers: int
) -> str:
    """Render each statement in the page's language with its distribution of agreement."""
    text = TEXT[language]
    if not texts:
        return f"<p>{text['no_statements']}</p>"
    blocks = []
    for line in lines:
        statement = html.escape(texts[line.statement_index])
        if line.suppressed:
            note = html.escape(text["suppressed"].format(n=min_answers))
            blocks.append(
                f'<section class="statement" data-index="{line.statement_index}" '
                f'data-suppressed="true"><h2>{statement}</h2><p class="muted">{note} '
                f"(n={line.count})</p></section>"
            )
            continue
        head = "".join(f'<th scope="col">{score}</th>' for score in range(1, 6))
        cells = "".join(f"<td>{count}</td>" for count in line.distribution)
        blocks.append(
            f'<section class="statement" data-index="{line.statement_index}">'
            f"<h2>{statement}</h2><table><caption>{text['scale']}</caption>"
            f'<thead><tr><th scope="col">{text["answers"]}</th>{head}</tr></thead>'
            f'<tbody><tr><th scope="row">{line.count}</th>{cells}</tr></tbody></table>'
            f"<p>{text['mean']} {number(line.mean, language)}, {text['agree']} "
            f"{percent(line.agree_share, language)}</p></section>"
        )
    return "".join(blocks)


def touchpoint_links(base: str, language: str) -> str:
    """Render the touchpoint page's links to its breakdowns and statements pages."""
    text = TEXT[language]
    titles = {"breakdowns": text["breakdowns_link"], "statements": text["statements_link"]}
    items = "".join(
        f'<li><a href="{html.escape(base)}/{page}?lang={language}">{title}</a></li>'
        for page, title in titles.items()
    )
    return f'<nav aria-label="{text["more"]}"><ul class="periods">{items}</ul></nav>'


def downloads(base: str, window: str, language: str) -> str:
    """Render the links to the touchpoint's exports for the chosen period."""
    text = TEXT[language]
    query = f"?lang={language}&amp;window={window}"
    links = [
        ("figures.csv", text["csv"]),
        ("figures.xlsx", text["xlsx"]),
        ("comments.csv", text["comments_csv"]),
    ]
    items = "".join(
        f'<li><a href="{html.escape(base)}/export/{name}{query}" download>{label}</a></li>'
        for name, label in links
    )
    return f'<h2>{text["downloads"]}</h2><ul class="downloads">{items}</ul>'


def page(*, title: str, language: str, body: str, here: str, back: str) -> str:
    """Render a whole page: language links, a way back, the title and the body."""
    switches = " ".join(
        f'<a href="{html.escape(here)}?lang={other}" lang="{other}" hreflang="{other}">'
        f"{LANGUAGE_NAMES[other]}</a>"
        for other in LANGUAGES
        if other != language
    )
    return (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        '<link rel="stylesheet" href="/static/dashboard.css">'
        '<link rel="stylesheet" href="/static/console.css"></head>'
        f"<body><header><p>{switches}</p></header><main>"
        f'<p><a href="{html.escape(back)}">{TEXT[language]["back"]}</a></p>'
        f"<h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
