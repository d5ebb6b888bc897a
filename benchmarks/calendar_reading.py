"""What reading a Calendar costs at each meter reading (SE 1.2 D.9: the value in force and
when it next changes, :meth:`zse.calendar.CalendarSchedule.at`), for the worst calendar a
publisher can send (255 entries a day, 255 seasons, 255 special days, one value: the look
ahead runs its 400 days) and for a GB-style two-season TOU calendar.

Usage: .venv/bin/python benchmarks/calendar_reading.py [--readings N]

Per calendar: the reference, a cold reading (an equal calendar never read before, what
every reading cost before the day's reading was kept), best of three, against the mean of N
readings (default 96: every 15 minutes) later the same day of a calendar read once at 00:05;
both CPU time (``time.process_time``) in the same run. The ratio is later / cold.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' calendars

from tests.calendar.tou import LONDON_2026, hostile_calendar, tou_calendar, utc
from zse.calendar import CalendarSchedule

#: A winter Wednesday (GMT), 00:05.
DAY = utc(2026, 1, 14, 0, 5)


def cold(calendar: CalendarSchedule) -> float:
    """CPU seconds of one reading of an equal calendar never read, best of three."""
    times = []
    for _ in range(3):
        fresh = dataclasses.replace(calendar)
        start = time.process_time()
        fresh.at(DAY, LONDON_2026)
        times.append(time.process_time() - start)
    return min(times)


def later(calendar: CalendarSchedule, readings: int) -> float:
    """Mean CPU seconds of ``readings`` readings 15 minutes apart after one at 00:05."""
    calendar = dataclasses.replace(calendar)
    calendar.at(DAY, LONDON_2026)
    start = time.process_time()
    for reading in range(1, readings + 1):
        calendar.at(DAY + reading * 86_000 // readings, LONDON_2026)
    return (time.process_time() - start) / readings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=96)
    readings = parser.parse_args().readings
    for name, calendar in (("worst", hostile_calendar()), ("GB TOU", tou_calendar())):
        reference, ours = cold(calendar), later(calendar, readings)
        print(
            f"{name}: cold reading {reference * 1e3:.3f} ms, later the same day "
            f"{ours * 1e3:.3f} ms, ratio {ours / reference:.6f}x"
        )


if __name__ == "__main__":
    main()
