"""The HTML report: the scenario, the comparison with its limits, and inline SVG charts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kizuna.kernel.errors import InvalidRequest
from kizuna.planning import Study, StudyResult
from kizuna.planning.report import render_html, write_report
from kizuna.scheduling import make_policy
from kizuna.simulation.cluster import ClusterSpec
from kizuna.traces import Trace, TraceRecord

CHARTS = 4
"""Per cluster size: utilisation, queue length, JCT distribution, fairness."""


@pytest.fixture(scope="module")
def result() -> StudyResult:
    records = tuple(
        TraceRecord(f"j{k}", f"vc{k % 3}", k * 600.0, 8 if k % 4 == 0 else 2, 1800.0 + 60 * k)
        for k in range(12)
    )
    policies = (make_policy("fifo", budgets=False), make_policy("las", budgets=False))
    trace = Trace(records, "kizuna-csv")
    return Study("jobs.csv", trace, ClusterSpec.uniform(2), policies, scales=(0.5, 1.0)).run()


@pytest.fixture(scope="module")
def page(result: StudyResult) -> str:
    return render_html(result, "Plan <A & B>")


def test_the_page_names_the_scenario(page: str) -> None:
    assert "<title>Plan &lt;A &amp; B&gt;</title>" in page
    assert "jobs.csv: 12 jobs (kizuna-csv)" in page
    assert "2 x 8 V100: 2 nodes, 16 V100 GPUs" in page
    assert "x0.5, x1" in page


def test_the_table_has_a_row_per_replay_with_the_limits(page: str) -> None:
    table = page[page.index("<table>") : page.index("</table>")]
    assert table.count("<tr>") == 1 + 4
    assert "JCT mean bound" in table and "makespan bound" in table
    assert re.search(r"<td>8 \(x0\.5\)</td><td>las</td><td>12/12</td>", table)


def test_there_is_an_svg_per_chart_and_size(page: str) -> None:
    assert page.count("<svg") == page.count("</svg>") == CHARTS * 2
    for heading in ("GPU utilisation over time", "Queue length over time", "JCT distribution"):
        assert f"<h2>{heading}</h2>" in page


def test_the_page_needs_no_network(page: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert "<?xml" not in page


def test_chart_text_stays_text_without_embedded_fonts(page: str) -> None:
    assert "<text" in page
    assert "font-family" in page and "@font-face" not in page
    assert "DejaVuSans-" not in page  # glyphs as paths would carry such ids


def test_charts_are_small(page: str) -> None:
    assert len(page.encode()) < 400_000


def test_the_report_is_written(result: StudyResult, tmp_path: Path) -> None:
    path = write_report(result, tmp_path / "study.html")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>")
    assert "<title>Kizuna planning study: jobs.csv</title>" in text


def test_an_unwritable_path_is_refused(result: StudyResult, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="cannot write"):
        write_report(result, tmp_path / "missing" / "study.html")
