"""The progress display: its formatting, its rate, and exactly what it writes.

Time is a fake clock, the terminal a StringIO: nothing here sleeps or depends
on the speed of the machine.
"""

from __future__ import annotations

import io
import math

import pytest

from pypoolparty import progress
from pypoolparty.progress import Counts, Progress, RateMeter


class FakeClock:
    """A clock that moves only when the test says so."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    # COLUMNS decides the width of a terminal that is a StringIO; without it,
    # the width would be that of whatever terminal runs the tests.
    monkeypatch.setenv("COLUMNS", "200")


def make(total_tasks=100, is_terminal=True, line_interval=60.0):
    clock = FakeClock()
    stream = io.StringIO()
    display = Progress(
        total_tasks,
        stream=stream,
        is_terminal=is_terminal,
        clock=clock,
        line_interval=line_interval,
    )
    return display, clock, stream


def frames(stream: io.StringIO) -> list[str]:
    """What a terminal showed, one entry per carriage return."""
    text = stream.getvalue()
    assert text.startswith("\r")
    return text[1:].split("\r")


# -- formatting ---------------------------------------------------------------


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "0s"),
        (0.4, "0s"),
        (45.2, "45s"),
        (59.4, "59s"),
        (59.6, "1m00s"),
        (60, "1m00s"),
        (723, "12m03s"),
        (3599, "59m59s"),
        (3600, "1h00m"),
        (2 * 3600 + 13 * 60 + 59, "2h13m"),
        (86399, "23h59m"),
        (86400, "1d00h"),
        (3 * 86400 + 4 * 3600 + 59 * 60, "3d04h"),
        (400 * 86400, "400d00h"),
        (-5, "0s"),
        (None, "?"),
        (math.inf, "?"),
        (math.nan, "?"),
    ],
)
def test_durations_read_as_at_most_two_units(seconds, text):
    assert progress.format_duration(seconds) == text


@pytest.mark.parametrize(
    "rate, text",
    [
        (None, "? tasks/s"),
        (math.nan, "? tasks/s"),
        (0.0, "0 tasks/s"),
        (12.34, "12.3 tasks/s"),
        (1.0, "1.0 tasks/s"),
        (123.4, "123 tasks/s"),
        (0.5, "30.0 tasks/min"),
        (0.05, "3.0 tasks/min"),
        (2 / 3600, "2.0 tasks/h"),
    ],
)
def test_rates_use_the_unit_that_makes_the_number_at_least_one(rate, text):
    assert progress.format_rate(rate) == text


@pytest.mark.parametrize(
    "rate, previous, unit",
    [
        (1.4, None, "s"),
        (0.92, None, "min"),
        (0.92, "s", "s"),  # near the border: the unit shown so far stays
        (0.5, "s", "s"),
        (0.49, "s", "min"),  # far below it: the natural unit
        (1.4, "min", "min"),  # 84 tasks/min
        (2.0, "min", "s"),  # 120 tasks/min
        (1000.0, "s", "s"),
        (0.9 / 60, "min", "min"),
        (0.4 / 60, "min", "h"),
        (5 / 3600, "h", "h"),
        (1.9 / 60, "h", "h"),  # 114 tasks/h
        (3 / 60, "h", "min"),
        (0.0, "min", "min"),  # no rate to choose by: keep the unit
        (None, "s", "s"),
        (None, None, None),
    ],
)
def test_a_rate_keeps_its_unit_until_it_leaves_the_band_around_it(rate, previous, unit):
    assert progress.choose_rate_unit(rate, previous) == unit


def test_remaining_time_is_remaining_tasks_over_rate_and_unknown_without_a_rate():
    assert progress.estimate_remaining(100, 40, 2.0) == 30.0
    assert progress.estimate_remaining(100, 40, None) is None
    assert progress.estimate_remaining(100, 40, 0.0) is None
    assert progress.estimate_remaining(100, 100, None) == 0.0
    assert progress.estimate_remaining(100, 120, 1.0) == 0.0


def test_line_shows_every_count_with_the_estimate_first():
    counts = Counts(
        done=1234, running=40, pending=98000, in_error=3, held=2, resubmissions=5, failed_tasks=7
    )
    line = progress.format_line(counts, 100000, 12.3, elapsed=300.0, with_elapsed=False)
    assert line == (
        "pypoolparty 1234/100000 tasks done | ETA 2h13m | 12.3 tasks/s | 40 running"
        " | 98000 pending | 3 in error | 2 held | 5 resubmitted | 7 failed"
    )


def test_line_leaves_out_rare_counts_that_are_zero_and_says_when_unknown():
    counts = Counts(0, 0, 100, 0, 0, 0, 0)
    line = progress.format_line(counts, 100, None, elapsed=0.0, with_elapsed=False)
    assert line == "pypoolparty 0/100 tasks done | ETA ? | ? tasks/s | 0 running | 100 pending"


def test_plain_line_carries_the_elapsed_time():
    counts = Counts(50, 10, 40, 0, 0, 0, 0)
    line = progress.format_line(counts, 100, 0.5, elapsed=723.0, with_elapsed=True)
    assert line == (
        "pypoolparty 50/100 tasks done | ETA 1m40s | 30.0 tasks/min | 10 running | 40 pending"
        " | elapsed 12m03s"
    )


def test_finished_line_says_how_long_the_map_took_instead_of_an_estimate():
    counts = Counts(100, 0, 0, 0, 0, 1, 2)
    for with_elapsed in (False, True):
        line = progress.format_line(counts, 100, 2.0, elapsed=65.0, with_elapsed=with_elapsed)
        assert line == (
            "pypoolparty 100/100 tasks done | took 1m05s | 2.0 tasks/s | 0 running | 0 pending"
            " | 1 resubmitted | 2 failed"
        )


def test_truncate_cuts_at_the_width_and_keeps_at_least_one_character():
    assert progress.truncate("pypoolparty 3/10 tasks done", 16) == "pypoolparty 3/10"
    assert progress.truncate("short", 80) == "short"
    assert progress.truncate("short", 0) == "s"


def test_terminal_width_follows_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "57")
    assert progress.terminal_width(io.StringIO()) == 57


# -- rate ---------------------------------------------------------------------


def test_rate_is_unknown_until_time_has_passed():
    meter = RateMeter()
    assert meter.rate(5.0) is None
    meter.add(5.0, 10)
    assert meter.rate(5.0) is None
    assert meter.rate(7.0) == 0.0


def test_rate_counts_from_the_first_sample_until_the_window_is_full():
    meter = RateMeter(window=60.0)
    meter.add(0.0, 100)  # a resumed map: tasks done before do not count
    meter.add(10.0, 120)
    assert meter.rate(10.0) == 2.0
    meter.add(20.0, 160)
    assert meter.rate(20.0) == 3.0


def test_rate_covers_only_the_last_window_of_steady_progress():
    meter = RateMeter(window=60.0, min_changes=3)
    # 1 task/s for two minutes, then 5 tasks/s.
    for second in range(121):
        meter.add(float(second), second)
    for second in range(121, 181):
        meter.add(float(second), 120 + 5 * (second - 120))
    assert meter.rate(180.0) == 5.0
    # Old samples are forgotten: the window and a few changes, not the whole history.
    assert len(meter._samples) <= 62


def test_rate_reaches_back_over_chunks_that_finish_minutes_apart():
    meter = RateMeter(window=60.0, min_changes=3)
    meter.add(0.0, 0)
    for minute in range(1, 6):
        meter.add(minute * 300.0, minute * 1000)  # 1000 tasks every 5 minutes
    # A one-minute window would see no change and say 0; the last three
    # changes span 3 * 300 s since the change before them.
    assert meter.rate(1550.0) == 3000 / 950
    meter.add(1550.0, 5000)
    assert meter.rate(1550.0) == 3000 / 950


def test_rate_never_goes_negative():
    meter = RateMeter()
    meter.add(0.0, 10)
    meter.add(1.0, 5)
    assert meter.rate(2.0) == 0.0


# -- on a terminal ------------------------------------------------------------


def test_terminal_line_is_redrawn_in_place_and_ends_with_a_newline_on_close():
    display, clock, stream = make()
    display.update(0, 4, 96, 0, 0, 0, 0)
    clock.now = 1.0
    display.update(10, 4, 86, 0, 0, 0, 0)
    display.close()
    assert stream.getvalue() == (
        "\rpypoolparty 0/100 tasks done | ETA ? | ? tasks/s | 4 running | 96 pending"
        "\rpypoolparty 10/100 tasks done | ETA 9s | 10.0 tasks/s | 4 running | 86 pending"
        "\n"
    )


def test_a_rate_near_a_units_border_does_not_flip_units_between_redraws():
    display, clock, stream = make()
    # The rate over the first sample: 1.4, 0.9, 1.4, 0.95 tasks/s.
    for now, done in ((0.0, 0), (10.0, 14), (20.0, 18), (30.0, 42), (40.0, 38)):
        clock.now = now
        display.update(done, 4, 100 - done, 0, 0, 0, 0)
    rates = [frame.split(" | ")[2] for frame in frames(stream)]
    assert rates == ["? tasks/s", "1.4 tasks/s", "0.9 tasks/s", "1.4 tasks/s", "0.9 tasks/s"]


def test_a_rate_that_falls_far_gets_a_coarser_unit():
    display, clock, stream = make()
    for now, done in ((0.0, 0), (10.0, 14), (1000.0, 20)):
        clock.now = now
        display.update(done, 4, 100 - done, 0, 0, 0, 0)
    rates = [frame.split(" | ")[2] for frame in frames(stream)]
    assert rates == ["? tasks/s", "1.4 tasks/s", "1.2 tasks/min"]


def test_terminal_redraws_at_most_ten_times_a_second():
    display, clock, stream = make()
    for now, done in ((1.0, 0), (1.03, 1), (1.06, 2), (1.09, 3)):
        clock.now = now
        display.update(done, 4, 96 - done, 0, 0, 0, 0)
    assert len(frames(stream)) == 1
    clock.now = 1.1
    display.update(4, 4, 92, 0, 0, 0, 0)
    shown = frames(stream)
    assert len(shown) == 2
    # The rate counts from the first sample: 4 tasks in 0.1 s.
    assert shown[1].startswith("pypoolparty 4/100 tasks done | ETA 2s | 40.0 tasks/s |")


def test_terminal_draws_the_last_task_at_once_despite_the_throttle():
    display, clock, stream = make(total_tasks=10)
    display.update(9, 1, 0, 0, 0, 0, 0)
    clock.now = 0.01
    display.update(10, 0, 0, 0, 0, 0, 0)
    assert frames(stream)[-1] == (
        "pypoolparty 10/10 tasks done | took 0s | 100 tasks/s | 0 running | 0 pending"
    )
    clock.now = 0.02
    display.update(10, 0, 0, 0, 0, 0, 0)
    assert len(frames(stream)) == 2


def test_close_shows_the_last_throttled_update():
    display, clock, stream = make()
    display.update(0, 4, 96, 0, 0, 0, 0)
    clock.now = 0.05
    display.update(5, 4, 91, 0, 0, 0, 0)
    display.close()
    assert frames(stream)[-1] == (
        "pypoolparty 5/100 tasks done | ETA 1s | 100 tasks/s | 4 running | 91 pending\n"
    )


def test_a_shorter_line_blanks_the_rest_of_the_longer_one():
    display, clock, stream = make()
    display.update(0, 4, 96, 2, 0, 3, 0)
    clock.now = 1.0
    display.update(0, 4, 96, 0, 0, 0, 0)
    first, second = frames(stream)
    assert first.endswith("| 2 in error | 3 resubmitted")
    assert second == (
        "pypoolparty 0/100 tasks done | ETA ? | 0 tasks/s | 4 running | 96 pending"
    ) + " " * (len(first) - len(second.rstrip(" ")))
    assert len(second) == len(first)


def test_terminal_line_is_cut_to_one_column_less_than_the_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    display, clock, stream = make()
    display.update(0, 4, 96, 0, 0, 0, 0)
    display.close()
    assert stream.getvalue() == "\rpypoolparty 0/100 tasks done | ETA ? | \n"
    assert len(stream.getvalue().strip("\r\n")) == 39


def test_unchanged_text_is_not_written_again():
    display, clock, stream = make()
    display.update(0, 4, 96, 0, 0, 0, 0)
    clock.now = 1.0
    display.update(0, 4, 96, 0, 0, 0, 0)
    clock.now = 2.0
    display.update(0, 4, 96, 0, 0, 0, 0)
    assert len(frames(stream)) == 2  # "? tasks/s", then "0 tasks/s" twice


def test_clear_blanks_the_line_and_the_next_update_draws_it_at_once():
    display, clock, stream = make()
    display.update(0, 4, 96, 0, 0, 0, 0)
    drawn = frames(stream)[0]
    display.clear()
    assert stream.getvalue() == "\r" + drawn + "\r" + " " * len(drawn) + "\r"
    clock.now = 0.01
    display.update(0, 4, 96, 0, 0, 0, 0)
    assert stream.getvalue().endswith("\r" + drawn.replace("? tasks/s", "0 tasks/s"))


def test_close_is_idempotent_and_updates_after_close_are_ignored():
    display, clock, stream = make()
    display.update(1, 4, 95, 0, 0, 0, 0)
    display.close()
    written = stream.getvalue()
    display.close()
    clock.now = 10.0
    display.update(50, 4, 46, 0, 0, 0, 0)
    display.close()
    assert stream.getvalue() == written
    assert written.count("\n") == 1


def test_close_without_any_update_writes_nothing():
    for is_terminal in (True, False):
        display, _, stream = make(is_terminal=is_terminal)
        display.close()
        assert stream.getvalue() == ""


# -- not on a terminal --------------------------------------------------------


def test_plain_lines_at_the_first_update_then_every_interval_then_a_final_one():
    display, clock, stream = make(is_terminal=False, line_interval=60.0)
    clock.now = 2.0
    display.update(0, 4, 96, 0, 0, 0, 0)
    for now in range(3, 62):
        clock.now = float(now)
        display.update(now - 2, 4, 96 - (now - 2), 0, 0, 0, 0)
    clock.now = 62.0
    display.update(60, 4, 36, 0, 0, 0, 0)
    clock.now = 70.0
    display.update(68, 4, 28, 1, 0, 1, 0)
    display.close()
    assert stream.getvalue() == (
        "pypoolparty 0/100 tasks done | ETA ? | ? tasks/s | 4 running | 96 pending"
        " | elapsed 2s\n"
        "pypoolparty 60/100 tasks done | ETA 40s | 1.0 tasks/s | 4 running | 36 pending"
        " | elapsed 1m02s\n"
        "pypoolparty 68/100 tasks done | ETA 32s | 1.0 tasks/s | 4 running | 28 pending"
        " | 1 in error | 1 resubmitted | elapsed 1m10s\n"
    )
    assert "\r" not in stream.getvalue()


def test_plain_final_line_says_how_long_the_map_took():
    display, clock, stream = make(total_tasks=10, is_terminal=False)
    display.update(0, 2, 8, 0, 0, 0, 0)
    clock.now = 5.0
    display.update(10, 0, 0, 0, 0, 0, 0)
    clock.now = 5.5
    display.close()
    assert stream.getvalue().splitlines()[-1] == (
        "pypoolparty 10/10 tasks done | took 6s | 1.8 tasks/s | 0 running | 0 pending"
    )


def test_plain_final_line_is_not_repeated_when_nothing_changed_since():
    display, clock, stream = make(is_terminal=False)
    display.update(3, 4, 93, 0, 0, 0, 0)
    clock.now = 1.0
    display.update(3, 4, 93, 0, 0, 0, 0)
    display.close()
    assert len(stream.getvalue().splitlines()) == 1


# -- the stream ---------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_is_terminal_defaults_to_whether_the_stream_is_one():
    assert Progress(10, stream=FakeTerminal()).is_terminal is True
    assert Progress(10, stream=io.StringIO()).is_terminal is False


class BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError("the reader went away")


def test_a_broken_stream_silences_the_display_instead_of_failing_the_map():
    display = Progress(10, stream=BrokenStream(), is_terminal=True, clock=FakeClock())
    display.update(1, 1, 8, 0, 0, 0, 0)
    display.clear()
    display.close()
