"""One time parser and one duration syntax (attestation/times.py), the same everywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from teelog.attestation.times import (
    TimeFormatError,
    format_duration,
    parse_duration,
    parse_rfc3339,
    parse_time,
    rfc3339,
)

AT = datetime.fromtimestamp(1751624191, UTC)  # 2025-07-04T10:16:31Z


def test_time_formats():
    assert parse_time("1751624191").timestamp() == 1751624191
    assert parse_time("2025-07-04T10:16:31Z").timestamp() == 1751624191
    assert parse_time("2025-07-04T10:16:31").timestamp() == 1751624191


def test_times_are_rfc3339_utc_seconds():
    assert rfc3339(datetime(2026, 1, 2, 3, 4, 5, 999999)) == "2026-01-02T03:04:05Z"
    assert parse_time("2026-03-11T03:33:20Z") == datetime.fromtimestamp(1773200000, UTC)
    assert parse_time("2026-03-11T05:33:20+02:00") == datetime.fromtimestamp(1773200000, UTC)
    with pytest.raises(ValueError):
        parse_time("yesterday")


def test_every_spelling_of_one_moment_is_the_same_utc_time():
    spellings = [
        "1751624191",
        " 1751624191 ",
        "2025-07-04T10:16:31Z",
        "2025-07-04t10:16:31z",
        "2025-07-04T12:16:31+02:00",
        "2025-07-04T10:16:31",
    ]
    for text in spellings:
        parsed = parse_time(text)
        assert parsed == AT and parsed.utcoffset() == timedelta(0), text
    assert parse_time("1751624191.5") == AT + timedelta(seconds=0.5)


def test_an_offset_is_converted_to_utc_not_kept():
    """The copies disagreed: ``teelog verify`` kept the offset, the importer converted to UTC."""
    parsed = parse_time("2025-07-04T12:16:31+02:00")
    assert parsed.tzinfo == UTC and parsed.hour == 10


def test_what_is_no_time_is_refused_with_both_spellings_named():
    for text in ("", "  ", "soon", "2025-13-01T00:00:00Z", "1e9", "-5", "99999999999999999999"):
        with pytest.raises(TimeFormatError):
            parse_time(text)
    with pytest.raises(TimeFormatError, match=r"neither RFC 3339.*nor Unix seconds"):
        parse_time("yesterday")


def test_a_file_format_time_is_rfc3339_only():
    assert parse_rfc3339("2025-07-04T10:16:31Z") == AT
    with pytest.raises(TimeFormatError, match="not RFC 3339"):
        parse_rfc3339("1751624191")


def test_written_times_are_utc_seconds_with_z():
    assert rfc3339(AT + timedelta(microseconds=999999)) == "2025-07-04T10:16:31Z"
    assert rfc3339(AT.astimezone(timezone(timedelta(hours=-7)))) == "2025-07-04T10:16:31Z"
    assert rfc3339(1751624191.9) == "2025-07-04T10:16:31Z"
    assert parse_time(rfc3339(AT)) == AT


def test_one_duration_syntax():
    assert parse_duration("30s") == 30
    assert parse_duration("5m") == 300
    assert parse_duration("1h") == 3600
    assert parse_duration("1d") == 86400
    assert parse_duration("90") == 90
    assert parse_duration("2.5") == 2.5
    assert parse_duration("250ms") == 0.25
    assert parse_duration(" 10 s ") == 10
    assert parse_duration(15) == 15
    assert parse_duration("0", zero=True) == 0


def test_durations_that_are_not_positive_or_not_numbers_are_refused():
    for bad in ("", "0", "0s", "-5s", "5x", "5S", "1h30m", "soon", 0, -1, True, float("inf")):
        with pytest.raises(TimeFormatError):
            parse_duration(bad)
    with pytest.raises(TimeFormatError, match='expected a duration like "30s", got "fast"'):
        parse_duration("fast")
    with pytest.raises(TimeFormatError, match="must be a positive duration"):
        parse_duration("0s")


def test_formatted_durations_read_back():
    for seconds in (30, 300, 3600, 86400, 90, 2.5, 7200):
        assert parse_duration(format_duration(seconds)) == seconds
    assert format_duration(300) == "5m" and format_duration(90) == "90s"
