"""Server time of the console's main pages on a year of data (target: 200 ms each).

A temporary project with 100 branch groups, ~50,000 deliveries over a year, 24 study items with
confirmations; each page is requested several times with Flask's test client.

    python bench/console.py [--runs 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fakes import ADMIN, copy_project_to, login, make_app  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from bot.clock import BEIJING, FakeClock  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from bot.store.accounts import create_admin  # noqa: E402
from bot.store.models import STATUSES, Confirmation, Delivery  # noqa: E402

GROUPS = 100
GOAL_MS = 200
NOW = datetime(2026, 11, 16, 9, 0, tzinfo=BEIJING)
PAGES = ["/admin/", "/admin/templates", "/admin/templates/holiday_integrity", "/admin/plan", "/admin/plan?page=2",
         "/admin/plan?days=366&page=27", "/admin/deliveries", "/admin/deliveries?status=failed&kind=meeting_reminder",
         "/admin/deliveries?page=500", "/admin/ledger?year=2026", "/admin/ledger?year=2026&page=5",
         "/admin/calendars", "/admin/calendars?year=2026&day=2026-09-30", "/admin/deliveries/25000",
         "/admin/templates/study_prompt", "/admin/audit"]


def big_config(text: str) -> str:
    """100 branches, each with its robot group (replacing the three of the example)."""
    start, end = text.index("  branches:"), text.index("\n# 推送对象")
    branches = "".join(f"    - id: g{n}\n      name: 第{n}党支部\n      secretary: {{userid: sec{n}, name: 书记{n}}}\n"
                       f"      group: g{n}_group\n" for n in range(GROUPS))
    text = text[:start] + "  branches:\n" + branches + text[end:]
    start, end = text.index("targets:\n"), text.index("\ngroups:")
    targets = "".join(f"  g{n}_group: {{type: robot, title: 第{n}党支部群, key: key-{n:04d}-0000-0000}}\n"
                      for n in range(GROUPS))
    text = text[:start] + "targets:\n" + targets + "  office: {type: app, title: 党办纪检工作人员, users: [liming]}\n" + text[end:]
    groups = "[" + ", ".join(f"g{n}_group" for n in range(GROUPS)) + "]"
    return text.replace("all_groups: [b1_group, b2_group, b3_group]", f"all_groups: {groups}")


def studies_yaml() -> str:
    items = []
    for n in range(24):
        publish = datetime(2026, 1, 5, 9) + timedelta(days=14 * n)
        deadline = publish + timedelta(days=10, hours=9)
        items.append(f"  - id: jsjy-2026-{n + 1:02d}\n    title: 《警示教育通报》2026年第{n + 1}期\n    number: {n + 1}\n"
                     f"    publish_at: {publish:%Y-%m-%d %H:%M}\n    deadline: {deadline:%Y-%m-%d %H:%M}\n")
    return "defaults:\n  series: 警示教育通报\n  nudges: [\"截止前2个工作日 09:00\"]\nitems:\n" + "".join(items)


def fill(runtime, rows: int) -> None:
    rng = random.Random(7)
    start = NOW - timedelta(days=365)
    kinds = ["holiday_notice", "meeting_reminder", "study_prompt", "study_nudge", "announcement"]
    batch = []
    for n in range(rows):
        due = start + timedelta(minutes=int(n * 365 * 24 * 60 / rows))
        status = "sent" if rng.random() < 0.95 else rng.choice(STATUSES)
        batch.append({"key": f"bench|{n}", "rule": "bench", "kind": rng.choice(kinds), "occurrence": str(n),
                      "item": None, "target": f"g{n % GROUPS}_group",
                      "msgtype": "markdown", "title": f"消息{n}", "text": "正文" * 50, "card": None, "due_at": due,
                      "status": status, "attempts": 1, "late": False, "resent": False, "provisional": False,
                      "reason": "基准测试", "meta": {}, "created_at": due, "updated_at": due,
                      "sent_at": due if status == "sent" else None,
                      "last_error": "群机器人发送过于频繁（45009）" if status == "failed" else None})
    with runtime.store.session() as session:
        for index in range(0, len(batch), 5000):
            session.execute(insert(Delivery), batch[index:index + 5000])


def confirm_most(runtime) -> None:
    rng = random.Random(11)
    rows = []
    for item in runtime.studies().items:
        for n in range(GROUPS):
            if item.deadline < NOW and rng.random() < 0.9:
                at = item.deadline - timedelta(hours=rng.randint(-20, 200))
                rows.append({"item": item.id, "branch": f"g{n}", "confirmed_by": f"sec{n}", "confirmed_at": at,
                             "late": at > item.deadline, "source": "reply"})
    with runtime.store.session() as session:
        session.execute(insert(Confirmation), rows)


def measure(client, path: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        begin = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - begin) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        setup = time.perf_counter()
        runtime = _runtime(base)
        fill(runtime, args.rows)
        confirm_most(runtime)
        client = make_app(runtime).test_client()
        login(client, *ADMIN)
        print(f"准备数据：{args.rows} 条发送记录，{GROUPS} 个群，{len(runtime.studies().items)} 期学习内容"
              f"（用时 {time.perf_counter() - setup:.1f} 秒）")
        print(f"{'页面':<52}{'中位数':>10}{'最大值':>10}  目标 {GOAL_MS} ms")
        for path in PAGES:
            times = measure(client, path, args.runs)
            median, worst = statistics.median(times), max(times)
            verdict = "达标" if median <= GOAL_MS else "超出"
            print(f"{path:<52}{median:>8.1f}ms{worst:>8.1f}ms  {verdict}")
        measure_export(client, args.rows)
        runtime.close()


def measure_export(client, rows: int) -> None:
    """The whole delivery log as CSV: not a page (no 200 ms goal), but it must not hold the service up."""
    tracemalloc.start()
    begin = time.perf_counter()
    response = client.get("/admin/deliveries/export.csv")
    data = response.get_data()
    seconds, peak = time.perf_counter() - begin, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert response.status_code == 200 and data.count(b"\n") == rows + 1
    print(f"导出全部发送记录 CSV：{rows} 条，{len(data) / 2**20:.1f} MB，用时 {seconds:.2f} 秒，"
          f"Python 峰值内存 {peak / 2**20:.1f} MB")


def _runtime(base: Path) -> Runtime:
    """The example project with 100 groups, a year of study items and no meeting series."""
    config = copy_project_to(base, big_config)
    (base / "schedules" / "studies.yaml").write_text(studies_yaml(), encoding="utf-8")
    (base / "schedules" / "meetings.yaml").unlink()  # its series name the example's three branches
    runtime = Runtime(config, FakeClock(NOW))
    create_admin(runtime.store, *ADMIN, "admin")
    return runtime


if __name__ == "__main__":
    main()
