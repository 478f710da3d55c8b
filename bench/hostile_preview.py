"""/healthz while a read-only account previews hostile templates (bound: every answer within 1 s).

The previews (integer growth, a string doubled 40 times, huge padding, a self-include) run in the
console's render worker; this prints the slowest /healthz answer seen meanwhile, next to the bound.

    python bench/hostile_preview.py
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fakes import READER, csrf_token, login, make_app, make_runtime  # noqa: E402

from bot.clock import BEIJING, FakeClock  # noqa: E402

BOUND_S = 1.0
HEAD = "---\ntitle: t\nmsgtype: text\n---\n"
HOSTILE = ["{{ (((9 ** 64) ** 64) ** 64) ** 64 }}", "{% set a = 'x' * 2000 %}" + "{% set a = a ~ a %}" * 40,
           "{{ '%999999999s' | format(1) }}", "{% include 'holiday_integrity' %}"]


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        runtime = make_runtime(Path(folder), FakeClock(datetime(2026, 5, 11, 8, tzinfo=BEIJING)))
        app = make_app(runtime)
        reader = app.test_client()
        login(reader, *READER)
        token = csrf_token(reader, "/admin/")

        def preview_all() -> None:
            for body in HOSTILE:
                reader.post("/admin/templates/holiday_integrity/preview", json={"text": HEAD + body},
                            headers={"X-CSRFToken": token})

        previewer = threading.Thread(target=preview_all)
        started = time.perf_counter()
        previewer.start()
        health, slowest, answers = app.test_client(), 0.0, 0
        while previewer.is_alive():
            begin = time.perf_counter()
            health.get("/healthz")
            slowest, answers = max(slowest, time.perf_counter() - begin), answers + 1
        print(f"previews: {len(HOSTILE)} hostile templates in {time.perf_counter() - started:.1f} s")
        print(f"/healthz: {answers} answers meanwhile, slowest {slowest * 1000:.0f} ms (bound {BOUND_S * 1000:.0f} ms)")
        runtime.close()


if __name__ == "__main__":
    main()
