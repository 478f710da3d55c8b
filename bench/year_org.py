"""The organisation of the year benchmark: the shipped project scaled up to many branches.

Each branch has a group robot, an app group chat and its secretary (an app target); its meetings
are the shipped series of one of the demo's three branches, renamed. The shipped holidays,
studies, templates and the party committee's meetings are used as they are.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import yaml

from bench.running import ROOT, free_port

DEMO_BRANCHES = ("b1", "b2", "b3")
DEMO_NAMES = {"b1": "第一党支部", "b2": "第二党支部", "b3": "机关党支部"}
OFFICE = "liming"


def robot_key(n: int) -> str:
    return f"6a1f0c2e-0b1d-4c55-9a11-{n:012d}"


def chat_id(n: int) -> str:
    return f"yearchat{n:04d}"


def secretary(n: int) -> str:
    return f"sec{n:04d}"


def organisation(branches: int) -> dict[str, Any]:
    return {"name": "示范局机关党委（年度演练）", "branches": [
        {"id": f"b{n}", "name": f"第{n}党支部", "secretary": {"userid": secretary(n), "name": f"书记{n}"},
         "group": f"b{n}_group"} for n in range(1, branches + 1)]}


def targets(branches: int) -> dict[str, Any]:
    found: dict[str, Any] = {"office": {"type": "app", "title": "党办纪检工作人员", "users": [OFFICE]}}
    for n in range(1, branches + 1):
        found[f"b{n}_group"] = {"type": "robot", "title": f"第{n}党支部群", "key": robot_key(n)}
        found[f"b{n}_chat"] = {"type": "appchat", "title": f"第{n}党支部工作群", "chatid": chat_id(n)}
    return found


def rules(branches: int) -> list[dict[str, Any]]:
    return [
        {"id": "holiday_integrity", "kind": "holiday_notice", "template": "holiday_integrity",
         "to": ["all_groups", "all_chats"], "holidays": "all", "workdays_before": 1, "at": "10:00"},
        {"id": "holiday_return", "kind": "holiday_return", "template": "holiday_return",
         "to": ["all_groups"], "holidays": "all", "at": "09:00"},
    ]


def config(folder: Path, branches: int, database_url: str, ambiguous: str, grace: str) -> dict[str, Any]:
    base: dict[str, Any] = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
    base["organisation"] = organisation(branches)
    base["targets"] = targets(branches)
    base["groups"] = {"all_groups": [f"b{n}_group" for n in range(1, branches + 1)],
                      "all_chats": [f"b{n}_chat" for n in range(1, branches + 1)]}
    base["rules"] = rules(branches)
    base["delivery"].update(ambiguous_robot_send=ambiguous, grace=grace, request_timeout="2s")
    base["database"]["url"] = database_url
    base.pop("aibot", None)  # the AI bot's long connection is not part of this year (and wants a fixed port)
    base["server"]["listen"] = f"127.0.0.1:{free_port()}"
    base["wecom"]["api_base"] = f"http://127.0.0.1:{free_port()}"
    return base


def meetings(branches: int) -> dict[str, Any]:
    """The shipped meetings file with each demo branch's series cloned to the branches it stands for."""
    shipped: dict[str, Any] = yaml.safe_load((ROOT / "schedules" / "meetings.yaml").read_text(encoding="utf-8"))
    by_branch = {b: [s for s in shipped["series"] if s.get("branch") == b] for b in DEMO_BRANCHES}
    series = [s for s in shipped["series"] if s.get("branch") not in DEMO_BRANCHES]
    for n in range(1, branches + 1):
        model = DEMO_BRANCHES[(n - 1) % len(DEMO_BRANCHES)]
        for original in by_branch[model]:
            clone = copy.deepcopy(original)
            clone["id"] = original["id"].replace(model, f"b{n}", 1)
            clone["branch"] = f"b{n}"
            clone["title"] = original["title"].replace(DEMO_NAMES[model], f"第{n}党支部")
            series.append(clone)
    return {**shipped, "series": series}


def write_project(folder: Path, branches: int, database_url: str, *, ambiguous: str = "resend",
                  grace: str = "2h") -> Path:
    """config.yaml, schedules/ (meetings scaled) and messages/ in ``folder``; the config's path."""
    for name in ("schedules", "messages"):
        shutil.copytree(ROOT / name, folder / name)
    dump = {"allow_unicode": True, "sort_keys": False}
    (folder / "schedules" / "meetings.yaml").write_text(yaml.safe_dump(meetings(branches), **dump), encoding="utf-8")
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config(folder, branches, database_url, ambiguous, grace), **dump),
                    encoding="utf-8")
    return path
