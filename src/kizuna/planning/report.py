"""A study's HTML report: one self-contained page that opens with no network.

The page holds the scenario, a table comparing every replay with the limits beside it, and
charts drawn by matplotlib as inline SVG (text kept as text, no embedded fonts): GPU
utilisation and queue length over time (one line per policy, one chart per cluster size,
timelines resampled to `POINTS` buckets), the JCT distribution per policy, and GPU-hours
received against entitled per project. Jinja2 escapes everything but the charts.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, StrictUndefined
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from kizuna.kernel.errors import InvalidRequest
from kizuna.kernel.units import HOUR, format_duration
from kizuna.planning.study import Row, StudyResult
from kizuna.simulation.replay import ReplayResult
from kizuna.simulation.timeline import Series, Timeline, resample

POINTS = 400
"""Buckets a timeline is resampled to, and points a JCT distribution is drawn with."""
PROJECTS_SHOWN = 20
"""Projects in a fairness chart: those asking for the most GPU-hours."""
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")
DAY = 24 * HOUR

_PROLOGUE = re.compile(r"\A.*?(?=<svg)", re.DOTALL)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
_PATH_DATA = re.compile(r' d="([^"]*)"')
_DIGITS = re.compile(r"(\.\d\d)\d+")


@dataclass(frozen=True, slots=True)
class Chart:
    caption: str
    svg: str


@dataclass(frozen=True, slots=True)
class Section:
    heading: str
    note: str
    charts: tuple[Chart, ...]


def write_report(result: StudyResult, path: Path, title: str | None = None) -> Path:
    """Write the report of `result` to `path`; returns the path."""
    page = render_html(result, title or f"Kizuna planning study: {result.study.name}")
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as error:
        raise InvalidRequest([f"cannot write {path}: {error.strerror or error}"]) from None
    return path


def render_html(result: StudyResult, title: str) -> str:
    """The report of `result` as one HTML page."""
    template = Environment(autoescape=True, undefined=StrictUndefined).from_string(TEMPLATE)
    return template.render(
        title=title,
        scenario=_scenario(result),
        columns=COLUMNS,
        limits={k for k, column in enumerate(COLUMNS) if column.endswith("bound")},
        rows=[_cells(row) for row in result.rows],
        sections=_sections(result),
    )


# -- the scenario and the table ---------------------------------------------------------------

COLUMNS = (
    "GPUs", "policy", "finished", "JCT mean", "JCT p50", "JCT p95", "JCT p99", "wait mean",
    "slowdown mean", "slowdown p95", "makespan", "utilisation", "preemptions", "lost GPU-h",
    "Jain", "JCT mean bound", "makespan bound", "wall",
)  # fmt: skip


def _cells(row: Row) -> list[str]:
    m = row.metrics
    return [
        f"{row.total_gpus:,} (x{row.scale:g})",
        row.label,
        f"{m.finished:,}/{m.jobs:,}",
        *(format_duration(v) for v in (m.jct.mean, m.jct.p50, m.jct.p95, m.jct.p99)),
        format_duration(m.wait.mean),
        f"{m.slowdown.mean:,.2f}",
        f"{m.slowdown.p95:,.2f}",
        format_duration(m.makespan),
        f"{m.utilisation:.1%}",
        f"{m.preemptions:,}",
        f"{m.lost_gpu_seconds / HOUR:,.1f}",
        f"{m.jain:.3f}",
        format_duration(m.jct_mean_bound),
        format_duration(m.makespan_bound),
        f"{row.wall_seconds:.2f} s",
    ]


def _scenario(result: StudyResult) -> list[tuple[str, str]]:
    study, trace = result.study, result.study.trace
    jobs = f"{len(trace.records):,} jobs ({trace.source})"
    if trace.problems:
        jobs += f"; {len(trace.problems):,} bad rows skipped"
    if trace.filtered:
        jobs += f"; {trace.filtered:,} CPU-only jobs left out"
    gpus = ", ".join(f"{n:,} {t}" for t, n in study.cluster.gpus().items())
    d, o = study.defaults, study.options
    items = [
        ("Trace", f"{study.name}: {jobs}"),
        ("Cluster", f"{study.cluster.name}: {len(study.cluster.nodes()):,} nodes, {gpus} GPUs"),
        ("Cluster sizes", ", ".join(f"x{s:g}" for s in dict.fromkeys(study.scales))),
        ("Awards", study.awards_label),
        ("Policies", ", ".join(dict.fromkeys(row.label for row in result.rows))),
        (
            "Jobs",
            f"checkpoint every {format_duration(o.checkpoint_interval)}, restart overhead "
            f"{format_duration(o.restart_overhead)}, grace {format_duration(d.grace)}, "
            f"minimum runtime {format_duration(d.min_runtime)}, walltime = runtime x "
            f"{d.walltime_factor:g} where the trace gives none",
        ),
    ]
    if study.cluster.changes:
        items.insert(2, ("Capacity changes", f"{len(study.cluster.changes)} in the spec"))
    refused = {row.scale: row.refused for row in result.rows if row.refused}
    if refused:
        shown = ", ".join(f"{n:,} at x{s:g}" for s, n in refused.items())
        items.append(("Refused", f"jobs larger than the cluster, not replayed: {shown}"))
    return items


# -- charts -------------------------------------------------------------------------------------


def _sections(result: StudyResult) -> list[Section]:
    groups = result.by_scale()
    policies = list(dict.fromkeys(row.label for row in result.rows))
    color = {label: COLORS[k % len(COLORS)] for k, label in enumerate(policies)}
    charts: dict[str, list[Chart]] = {"util": [], "queue": [], "jct": [], "fair": []}
    for scale, runs in groups:
        size = f"{runs[0][0].total_gpus:,} GPUs (x{scale:g})"
        charts["util"].append(Chart(size, _svg(_utilisation(runs, color), f"u{scale}")))
        charts["queue"].append(Chart(size, _svg(_queue(runs, color), f"q{scale}")))
        charts["jct"].append(Chart(size, _svg(_jct_cdf(runs, color), f"j{scale}")))
        charts["fair"].append(Chart(size, _svg(_fairness(runs, color), f"f{scale}")))
    return [
        Section(
            "GPU utilisation over time",
            "GPUs held by jobs over GPUs in service, averaged over equal time buckets.",
            tuple(charts["util"]),
        ),
        Section(
            "Queue length over time",
            "Jobs pending, averaged over time buckets.",
            tuple(charts["queue"]),
        ),
        Section(
            "JCT distribution",
            "Fraction of finished jobs whose JCT (submit to end) is at most x; log scale.",
            tuple(charts["jct"]),
        ),
        Section(
            "GPU-hours received and entitled per project",
            "Entitlement: the GPU-hours delivered, water-filled over shares and capped by each "
            "project's demand (M8). A bar short of its outline: the project got less than "
            "its fair share.",
            tuple(charts["fair"]),
        ),
    ]


Runs = Sequence[tuple[Row, ReplayResult]]


def _utilisation(runs: Runs, color: dict[str, str]) -> Figure:
    figure, ax = _figure()
    start, end, unit, unit_name = _span([r.timeline for _, r in runs])
    for row, result in runs:
        tl = result.timeline
        busy = _resampled(tl, _total(tl.busy.values()), start, end)
        capacity = _resampled(tl, _total(tl.capacity.values()), start, end)
        share = np.divide(busy, capacity, out=np.zeros_like(busy), where=capacity > 0)
        ax.plot(_hours(start, end, unit), share * 100, color=color[row.label], label=row.label)
    ax.set_ylim(0, 105)
    ax.set_ylabel("GPUs busy (%)")
    _finish(ax, f"time since the first submit ({unit_name})")
    return figure


def _queue(runs: Runs, color: dict[str, str]) -> Figure:
    figure, ax = _figure()
    start, end, unit, unit_name = _span([r.timeline for _, r in runs])
    for row, result in runs:
        tl = result.timeline
        waiting = _resampled(tl, tl.waiting.tolist(), start, end)
        ax.plot(_hours(start, end, unit), waiting, color=color[row.label], label=row.label)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("jobs pending")
    _finish(ax, f"time since the first submit ({unit_name})")
    return figure


def _jct_cdf(runs: Runs, color: dict[str, str]) -> Figure:
    figure, ax = _figure()
    drawn = False
    for row, result in runs:
        jct = np.sort([h.runs[-1].end - h.job.submit_time for h in result.histories if h.finished])
        if not len(jct):
            continue
        if len(jct) > POINTS:
            fraction = np.linspace(0.0, 1.0, POINTS)
            jct = np.quantile(jct, fraction)
        else:
            fraction = np.arange(1, len(jct) + 1) / len(jct)
        ax.plot(np.maximum(jct, 1.0), fraction, color=color[row.label], label=row.label)
        drawn = True
    if not drawn:
        ax.text(0.5, 0.5, "no job finished", ha="center", va="center", transform=ax.transAxes)
        return figure
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("fraction of jobs")
    _finish(ax, "JCT (seconds, log scale)")
    return figure


def _fairness(runs: Runs, color: dict[str, str]) -> Figure:
    first = runs[0][0].metrics.projects
    ranked = sorted(first, key=lambda p: (-p.demand, p.project))[:PROJECTS_SHOWN]
    names = [p.project for p in ranked]
    height = 1.2 + 0.28 * len(names)
    figure = Figure(figsize=(min(3.2 * len(runs), 12), height), layout="constrained")
    axes = figure.subplots(1, len(runs), sharey=True, squeeze=False)[0]
    for ax, (row, result) in zip(axes, runs, strict=True):
        shares = {p.project: p for p in result.metrics.projects}
        at = np.arange(len(names))
        entitled = [shares[n].entitled if n in shares else 0.0 for n in names]
        received = [shares[n].received if n in shares else 0.0 for n in names]
        ax.barh(at, entitled, 0.8, color="none", edgecolor="#555", label="entitled")
        ax.barh(at, received, 0.5, color=color[row.label], label="received")
        ax.set_yticks(at, names, fontsize=8)
        ax.set_title(row.label, fontsize=9)
        ax.set_xlabel("GPU-hours", fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
    axes[0].invert_yaxis()
    axes[0].legend(fontsize=8, loc="lower right")
    if len(first) > len(names):
        figure.suptitle(f"the {len(names)} projects asking most, of {len(first)}", fontsize=8)
    return figure


def _figure() -> tuple[Figure, Axes]:
    figure = Figure(figsize=(8, 2.8), layout="constrained")
    return figure, figure.add_subplot()


def _finish(ax: Axes, xlabel: str) -> None:
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def _span(timelines: Sequence[Timeline]) -> tuple[float, float, float, str]:
    """Common start and end of some timelines, and the unit (seconds per, name) to show."""
    start = min((tl.times[0] for tl in timelines if tl.times), default=0.0)
    end = max((tl.times[-1] for tl in timelines if tl.times), default=start)
    end = max(end, start + 1.0)
    unit, name = (DAY, "days") if end - start > 3 * DAY else (HOUR, "hours")
    return start, end, unit, name


def _hours(start: float, end: float, unit: float) -> Any:
    width = (end - start) / POINTS
    return (np.arange(POINTS) + 0.5) * width / unit


def _total(arrays: Any) -> list[float]:
    columns = [np.frombuffer(a, dtype=np.float64) for a in arrays]
    total: list[float] = np.sum(columns, axis=0).tolist() if columns else []
    return total


def _resampled(tl: Timeline, values: list[float], start: float, end: float) -> Any:
    points = resample(Series(tl.times.tolist(), values), start, end, POINTS)
    return np.array([value for _, value in points])


def _svg(figure: Figure, salt: str) -> str:
    """The figure as an inline `<svg>` element: no XML prologue, no metadata, text as text,
    path coordinates to a hundredth of a point."""
    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = _METADATA.sub("", _PROLOGUE.sub("", buffer.getvalue(), count=1))
    return _PATH_DATA.sub(_rounded, svg)


def _rounded(path: re.Match[str]) -> str:
    return ' d="' + _DIGITS.sub(r"\1", path.group(1)) + '"'


TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1280px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
dl { display: grid; grid-template-columns: max-content auto; gap: .2rem 1rem; }
dt { font-weight: 600; } dd { margin: 0; }
.wide { overflow-x: auto; }
table { border-collapse: collapse; font-size: .8rem; font-variant-numeric: tabular-nums; }
th, td { padding: .25rem .5rem; border-bottom: 1px solid #ddd; text-align: right;
         white-space: nowrap; }
th { background: #f4f4f4; } td:nth-child(2), th:nth-child(2) { text-align: left; }
th.limit, td.limit { background: #f6f9fc; color: #345; }
figure { margin: 1rem 0; } figcaption { font-size: .85rem; color: #555; }
figure svg { max-width: 100%; height: auto; }
.note { font-size: .85rem; color: #555; max-width: 60rem; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<dl>
{% for label, value in scenario %}<dt>{{ label }}</dt><dd>{{ value }}</dd>
{% endfor %}</dl>

<h2>Policies compared</h2>
<div class="wide">
<table>
{% macro kind(k) %}{% if k in limits %} class="limit"{% endif %}{% endmacro -%}
<thead><tr>
{%- for column in columns %}<th{{ kind(loop.index0) }}>{{ column }}</th>{% endfor -%}
</tr></thead>
<tbody>
{% for row in rows %}<tr>
{%- for cell in row %}<td{{ kind(loop.index0) }}>{{ cell }}</td>{% endfor -%}
</tr>
{% endfor %}</tbody>
</table>
</div>
<p class="note">JCT: submit to end of finished jobs. Wait: time pending. Bounded slowdown:
JCT over max(runtime, 10 s). Utilisation: GPU-time held over GPU-time in service. Lost GPU-h:
work since the last checkpoint, thrown away by preemptions. Jain: fairness of received over
entitled GPU-hours (1 = perfectly fair). Limits, shaded: the mean JCT if every job started on
arrival, and the makespan no schedule can beat.</p>
{% for section in sections %}
<h2>{{ section.heading }}</h2>
<p class="note">{{ section.note }}</p>
{% for chart in section.charts %}<figure>
{{ chart.svg | safe }}
<figcaption>{{ chart.caption }}</figcaption>
</figure>
{% endfor %}{% endfor %}
</body>
</html>
"""
