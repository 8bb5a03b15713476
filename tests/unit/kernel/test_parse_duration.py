"""Reading durations as people write them: in cluster specs (`at`, `for`) and on the CLI."""

from __future__ import annotations

import math

import pytest

from kizuna.kernel.units import parse_duration


@pytest.mark.parametrize(
    ("given", "seconds"),
    [
        pytest.param(3600, 3600.0, id="int"),
        pytest.param(90.5, 90.5, id="float"),
        pytest.param(0, 0.0, id="zero"),
        pytest.param("3600", 3600.0, id="bare-number-text"),
        pytest.param(" 1.5 ", 1.5, id="number-text-stripped"),
        pytest.param("1e3", 1000.0, id="exponent"),
    ],
)
def test_numbers_are_seconds(given: str | float, seconds: float) -> None:
    result = parse_duration(given)
    assert result == seconds
    assert isinstance(result, float)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("90s", 90.0, id="seconds"),
        pytest.param("45m", 45 * 60.0, id="minutes"),  # 2700
        pytest.param("12h", 12 * 3600.0, id="hours"),  # 43200
        pytest.param("30d", 30 * 86400.0, id="days"),  # 2592000
        pytest.param("2w", 2 * 7 * 86400.0, id="weeks"),  # 1209600
        pytest.param("1.5h", 5400.0, id="fraction"),  # 1.5 x 3600
        pytest.param("1d12h", 86400.0 + 12 * 3600, id="sum-days-hours"),  # 129600
        pytest.param("1h30m15s", 3600.0 + 1800 + 15, id="sum-three-units"),  # 5415
        pytest.param("12H", 43200.0, id="upper-case"),
        pytest.param("  45m\n", 2700.0, id="surrounding-space"),
    ],
)
def test_unit_suffixes_and_sums(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("30", 30.0, id="bare-number-is-seconds-not-slurm-minutes"),
        pytest.param("05:30", 5 * 60.0 + 30, id="MM:SS"),  # 330
        pytest.param("2:03:04", 2 * 3600.0 + 3 * 60 + 4, id="HH:MM:SS"),  # 7384
        pytest.param("1-12", 86400.0 + 12 * 3600, id="D-HH"),  # 129600
        pytest.param("2-03:30", 2 * 86400.0 + 3 * 3600 + 30 * 60, id="D-HH:MM"),  # 185400
        pytest.param("1-00:00:10", 86400.0 + 10, id="D-HH:MM:SS"),  # 86410
        pytest.param("0-12:00:00", 12 * 3600.0, id="zero-days-HH:MM:SS"),  # 43200
    ],
)
def test_slurm_time_format(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("0-12", 12 * 3600.0, id="zero-days-D-HH"),  # 43200, got 720
        pytest.param("0-12:30", 12 * 3600.0 + 30 * 60, id="zero-days-D-HH:MM"),  # 45000, got 750
    ],
)
def test_a_zero_days_prefix_still_means_hours(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("1h-", id="dash-after-units"),
        pytest.param("1:2:3:4", id="four-clock-parts"),
        pytest.param("1-2:3:4:5", id="days-and-four-clock-parts"),
        pytest.param("h", id="unit-without-number"),
        pytest.param("x", id="word"),
        pytest.param("1x", id="unknown-unit"),
        pytest.param("1h30", id="trailing-number-after-units"),
        pytest.param("1..5h", id="two-dots"),
        pytest.param("10:", id="empty-clock-part"),
        pytest.param("-", id="lone-dash"),
        pytest.param("1-", id="days-without-hours"),
        pytest.param("1d 12h", id="space-inside-sum"),
    ],
)
def test_refuses_what_is_not_a_duration_naming_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration") as caught:
        parse_duration(text)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        pytest.param(-1, "-1", id="negative-int"),
        pytest.param(-0.5, "-0.5", id="negative-float"),
        pytest.param("-30", "-30", id="negative-text"),
        pytest.param(math.nan, "nan", id="nan"),
        pytest.param("nan", "nan", id="nan-text"),
        pytest.param(math.inf, "inf", id="inf"),
        pytest.param("inf", "inf", id="inf-text"),
    ],
)
def test_refuses_negative_and_non_finite(given: str | float, shown: str) -> None:
    with pytest.raises(ValueError, match="must be finite and not negative") as caught:
        parse_duration(given)
    assert shown in str(caught.value)
