"""The touchpoint console's chart, drawn as SVG by matplotlib on the server.

One image of three panels over the same time axis: the headline figure
(mean, NPS on ``nps-11``, CES on ``ces-7``) with its 95 % interval band,
the previous period as a dashed line and the KPI target; the share (CSAT,
or the easy share on ``ces-7``) likewise, with the CSAT target; and the
answer volume as bars with the response rate on a second axis. Each
alert's start, acknowledgement and end are vertical lines on all three.

matplotlib's SVG carries its styling in ``style`` attributes, which the
dashboard's Content-Security-Policy forbids inline, so the chart is served
as an image of its own (``/dashboard/touchpoints/{id}/chart.svg``, with a
policy that allows its styles and no script at all) and the page gives the
same figures as a table. Rendering takes tens of milliseconds, so the
result is cached by its data (:func:`render`), and the handler renders in a
thread, off the event loop that serves the live updates.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

import matplotlib as mpl

mpl.use("svg")
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes

mpl.rcParams.update(
    {
        "date.epoch": "1970-01-01T00:00:00",
        "svg.fonttype": "none",  # text stays text: selectable, scalable, small
        "svg.hashsalt": "palaute",  # the same data gives the same bytes
        "font.family": "sans-serif",
        "font.size": 10,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)

#: Colours with at least 3:1 contrast on white (WCAG 1.4.11), told apart by line style too.
INK: Final = "#0b3d6e"
BAND: Final = "#9ec5e8"
PREVIOUS: Final = "#595959"
TARGET: Final = "#b34700"
MARKERS: Final = {"start": ("#b00020", "-"), "ack": ("#6a1b9a", "-."), "end": ("#1b5e20", ":")}
CACHED: Final = 256
#: Series longer than this are drawn as lines only: a dot per day of a year is noise.
DOTS_UP_TO: Final = 60


@dataclass(frozen=True, slots=True)
class Band:
    """One panel's series: values with their bounds, the previous period, a target."""

    label: str
    values: tuple[float | None, ...]
    lows: tuple[float | None, ...]
    highs: tuple[float | None, ...]
    previous: tuple[float | None, ...]
    target: float | None
    limits: tuple[float, float]


@dataclass(frozen=True, slots=True)
class ChartData:
    """Everything one chart shows; frozen and hashable, so that it is its own cache key."""

    times: tuple[datetime, ...]
    headline: Band
    share: Band
    volume: tuple[int, ...]
    response_rate: tuple[float | None, ...]
    #: (when, kind) with kind one of :data:`MARKERS`.
    markers: tuple[tuple[datetime, str], ...]
    #: Legend and axis words in the page's language.
    words: tuple[tuple[str, str], ...]
    hourly: bool


#: matplotlib's date numbers count days from its epoch (``date.epoch``, 1970 by default).
_EPOCH: Final = datetime(1970, 1, 1)  # noqa: DTZ001 - the chart's times are naive local times


def _day_number(at: datetime) -> float:
    """Give matplotlib's date number of a naive local time, as ``dates.date2num`` does."""
    return (at - _EPOCH).total_seconds() / 86_400


def _nan(values: tuple[float | None, ...]) -> list[float]:
    return [float("nan") if value is None else value for value in values]


def _band(axes: Axes, times: list[float], band: Band, words: dict[str, str]) -> None:
    axes.fill_between(
        times, _nan(band.lows), _nan(band.highs), color=BAND, linewidth=0, label=words["band"]
    )
    dots = "." if len(times) <= DOTS_UP_TO else None
    axes.plot(times, _nan(band.values), color=INK, linewidth=2, marker=dots, label=band.label)
    if any(value is not None for value in band.previous):
        axes.plot(
            times,
            _nan(band.previous),
            color=PREVIOUS,
            linewidth=1.2,
            linestyle="--",
            label=words["previous"],
        )
    if band.target is not None:
        axes.axhline(band.target, color=TARGET, linewidth=1.5, linestyle=(0, (6, 2)))
        axes.plot([], [], color=TARGET, linestyle=(0, (6, 2)), label=words["target"])
    axes.set_ylim(*band.limits)
    axes.set_ylabel(band.label)
    axes.grid(visible=True, axis="y", color="#d0d0d0", linewidth=0.6)


@functools.lru_cache(maxsize=CACHED)
def render(data: ChartData) -> bytes:
    """Draw the chart as SVG bytes (cached: the same data is drawn once)."""
    words = dict(data.words)
    times = [_day_number(at) for at in data.times]
    # Fixed margins: a layout engine would draw the figure twice to measure it.
    figure = Figure(figsize=(8.0, 7.0), dpi=100)
    figure.subplots_adjust(left=0.1, right=0.9, top=0.86, bottom=0.1, hspace=0.12)
    top, middle, bottom = figure.subplots(3, 1, sharex=True, height_ratios=(3, 3, 2))
    _band(top, times, data.headline, words)
    _band(middle, times, data.share, words)
    # The volume as one filled step outline: a bar per day of a year is hundreds of shapes.
    bottom.fill_between(
        times, list(data.volume), step="mid", color="#5b7fa6", linewidth=0, label=words["volume"]
    )
    bottom.set_ylim(bottom=0)
    bottom.set_ylabel(words["volume"])
    rate = bottom.twinx()
    rate.plot(times, _nan(data.response_rate), color=TARGET, linewidth=1.5, label=words["rate"])
    rate.set_ylim(0, 1)
    rate.set_ylabel(words["rate"])
    rate.yaxis.set_major_formatter(lambda value, _pos: f"{value * 100:.0f} %")
    middle.yaxis.set_major_formatter(lambda value, _pos: f"{value * 100:.0f} %")
    for when, kind in data.markers:
        colour, style = MARKERS[kind]
        for axes in (top, middle, bottom):
            axes.axvline(_day_number(when), color=colour, linestyle=style, linewidth=1.6)
    for kind in sorted({kind for _, kind in data.markers}):
        colour, style = MARKERS[kind]
        top.plot([], [], color=colour, linestyle=style, label=words[kind])
    # One legend for all three panels, above them, where it hides no data.
    handles = [
        *top.get_legend_handles_labels()[0],
        *bottom.get_legend_handles_labels()[0],
        *rate.get_legend_handles_labels()[0],
    ]
    figure.legend(handles=handles, loc="upper left", ncols=3, frameon=False, fontsize=9)
    bottom.xaxis_date()
    figure.autofmt_xdate()
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    return out.getvalue().encode()
