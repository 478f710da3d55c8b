"""The year's tally: a second delivery of a text is explained by any row that carries that text.

A meeting's reminder the day before and on the day read the same. In one year the day-before one
timed out (WeCom had it), and a downtime past the grace window then marked it missed; the next
morning's identical reminder arrived as well, and the tally, looking only at sent rows for an
explanation, reported a duplicate that neither a kill nor a timeout explained.
"""

from __future__ import annotations

from collections import Counter

from bench.year_figures import CHANNELS, ChannelFigures, _compare, address_of
from bot.store.models import Delivery

TEXT = "## 会议提醒\n\n**第10党支部党小组会**\n\n> 时间：3月11日（周三）16:00—17:00"
DAY_BEFORE = "meeting:b10-group|b10-group@2026-03-11T16:00#1wd@16:00|b10_group"
ON_THE_DAY = "meeting:b10-group|b10-group@2026-03-11T16:00#0d@08:00|b10_group"


def tallied(day_before_status: str, explained: set[str]) -> ChannelFigures:
    rows = [Delivery(key=DAY_BEFORE, target="b10_group", status=day_before_status, text=TEXT),
            Delivery(key=ON_THE_DAY, target="b10_group", status="sent", text=TEXT)]
    fingerprint = (address_of("b10_group"), TEXT)
    channels = {name: ChannelFigures() for name in CHANNELS}
    expected = Counter({fingerprint: sum(row.status == "sent" for row in rows)})
    assert _compare(channels, Counter({fingerprint: 2}), expected, {fingerprint: rows}, explained) == []
    return channels["robot"]


def test_a_timed_out_send_later_marked_missed_explains_the_same_text_arriving_twice() -> None:
    robot = tallied("missed", explained={DAY_BEFORE})  # its attempt timed out: WeCom may have it
    assert (robot.duplicates, robot.unexplained) == (1, [])


def test_a_second_delivery_that_nothing_explains_is_named() -> None:
    robot = tallied("missed", explained=set())
    assert robot.duplicates == 1 and robot.unexplained == [DAY_BEFORE, ON_THE_DAY]


def test_two_sent_rows_of_one_text_arriving_twice_are_no_duplicate() -> None:
    robot = tallied("sent", explained=set())
    assert (robot.duplicates, robot.unexplained) == (0, [])
