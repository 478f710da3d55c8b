"""Plan and render one year for 1,000 targets and 50 rules; print time and peak memory.

Goal on the 2-core reference machine: under 3 s and 300 MB, growing linearly with targets × rules
(each distinct text is rendered once, not once per target). Run: .venv/bin/python bench/plan.py
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from datetime import date, datetime
from datetime import time as clock_time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.clock import BEIJING  # noqa: E402
from bot.config import HolidayRule, RobotTarget, Settings  # noqa: E402
from bot.inputs import load_holidays  # noqa: E402
from bot.plan import PlanInputs, build_plan  # noqa: E402
from bot.templates.render import TemplateLibrary  # noqa: E402

FESTIVALS = ["new_year", "spring_festival", "tomb_sweeping", "labour_day", "dragon_boat", "mid_autumn", "national_day"]


def settings_for(targets: int, rules: int) -> Settings:
    names = [f"group{i:04d}" for i in range(targets)]
    target_map = {n: RobotTarget(type="robot", key=f"00000000-0000-0000-0000-{i:012d}", title=f"第{i}党支部群")
                  for i, n in enumerate(names)}
    rule_list = []
    for r in range(rules):
        kind = "holiday_notice" if r % 2 == 0 else "holiday_return"
        template = "holiday_integrity" if kind == "holiday_notice" else "holiday_return"
        rule_list.append(HolidayRule(id=f"rule{r:02d}", kind=kind, template=template, to=["everyone"],
                                     holidays=[FESTIVALS[r % len(FESTIVALS)]], workdays_before=1 + r % 3,
                                     at=clock_time(8 + r % 9, (r * 7) % 60)))
    return Settings(targets=target_map, groups={"everyone": names}, rules=rule_list)


def measure(targets: int, rules: int) -> tuple[float, float, int]:
    settings = settings_for(targets, rules)
    inputs = PlanInputs(settings=settings, calendar=load_holidays(ROOT / "schedules" / "holidays"),
                        templates=TemplateLibrary(ROOT / "messages"))
    window = (date(2026, 1, 1), date(2026, 12, 31), datetime(2026, 1, 1, tzinfo=BEIJING))
    gc.collect()
    started = time.perf_counter()
    plan = build_plan(inputs, *window)
    elapsed = time.perf_counter() - started
    del plan
    gc.collect()
    tracemalloc.start()  # a second run, traced: tracing slows it, so it is not the one timed
    plan = build_plan(inputs, *window)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak / 2**20, len(plan.messages)


def main() -> None:
    print("计划并渲染 2026 全年（50 条规则）")
    print(f"{'推送对象':>8} {'消息数':>8} {'用时(秒)':>10} {'峰值内存(MB)':>14}")
    for targets in (250, 500, 1000):
        elapsed, peak, count = measure(targets, 50)
        print(f"{targets:>10} {count:>10} {elapsed:>12.2f} {peak:>16.1f}")
    print("目标：1000 个推送对象 × 50 条规则，3 秒以内、300 MB 以内，且随对象数线性增长")


if __name__ == "__main__":
    main()
