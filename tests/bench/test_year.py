"""The year benchmark's harness, on a few weeks: the real `run` under kills and faults keeps the contract.

Eighteen days around the Spring Festival (a holiday notice, a study round with nudges, the return
notice), three branches, a handful of SIGKILLs: nothing lost, nothing on a day off, duplicates
within the crash window, every answered reply recorded and every confirmation in the ledger.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bench.year import Options, run_year
from bot.clock import BEIJING

START = datetime(2026, 2, 9, tzinfo=BEIJING)


@pytest.mark.parametrize("ambiguous", ["resend", "report"])
def test_a_few_weeks_under_kills_and_faults_keep_the_contract(tmp_path: Path, ambiguous: str) -> None:
    options = Options(START, START + timedelta(days=18), branches=3, kills=4, ambiguous=ambiguous, seed=14,
                      faults=3.0, outage_day=None, token_expiries=2)
    outcome = run_year(options, tmp_path)
    figures = outcome.figures
    assert outcome.crashes.kills >= 2
    assert figures.lost_keys == []
    for name, channel in figures.channels.items():
        assert channel.lost == 0 and channel.days_off == 0, name
        assert channel.duplicates <= channel.in_flight + channel.timeouts, name
    assert sum(channel.due for channel in figures.channels.values()) > 20
    if ambiguous == "report":
        assert figures.channels["robot"].duplicates == 0
    replies = outcome.replies
    assert figures.inbox == replies.answered + replies.clicks_answered
    assert figures.confirmations == len(replies.confirmed) > 0
