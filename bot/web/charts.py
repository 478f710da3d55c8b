"""Charts drawn on the server as SVG: no script and no CDN (offices run intranets), escaped labels.

One kind is enough for the ledger: horizontal bars, one per branch or item, split into the
statuses of the study ledger (按时完成, 逾期完成, 逾期未完成, 未到截止时间).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# (status, label, colour): the order the segments are drawn and the legend reads
SEGMENTS = (("confirmed", "按时完成", "#2e7d32"), ("late", "逾期完成", "#e0a100"),
            ("missing", "逾期未完成", "#b71c1c"), ("pending", "未到截止时间", "#b8b8b8"))
LABEL_WIDTH = 200
BAR_WIDTH = 340
ROW = 22
BAR = 14


@dataclass(frozen=True)
class Bar:
    label: str
    counts: dict[str, int]  # status → number of (item, branch) pairs

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def stacked_bars(bars: Sequence[Bar], caption: str) -> Markup:
    """An SVG of one stacked bar per entry, scaled to the largest total, with the figures on the right."""
    scale = BAR_WIDTH / max(max((b.total for b in bars), default=0), 1)
    height = ROW * len(bars) + 30
    width = LABEL_WIDTH + BAR_WIDTH + 120
    parts = [f'<svg class="chart" role="img" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{escape(caption)}</title>', _legend()]
    for index, bar in enumerate(bars):
        parts.append(_bar(bar, 30 + index * ROW, scale))
    parts.append("</svg>")
    return Markup("".join(parts))


def _legend() -> str:
    items, x = [], LABEL_WIDTH
    for _status, label, colour in SEGMENTS:
        items.append(f'<rect x="{x}" y="4" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{x + 16}" y="14" class="legend">{label}</text>')
        x += 16 + 14 * len(label) + 14
    return "".join(items)


def _bar(bar: Bar, y: int, scale: float) -> str:
    label = escape(bar.label if len(bar.label) <= 16 else bar.label[:15] + "…")
    parts = [f'<text x="{LABEL_WIDTH - 8}" y="{y + BAR - 2}" text-anchor="end"><title>{escape(bar.label)}</title>'
             f"{label}</text>"]
    x = float(LABEL_WIDTH)
    for status, name, colour in SEGMENTS:
        count = bar.counts.get(status, 0)
        if count:
            width = count * scale
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{BAR}" fill="{colour}">'
                         f"<title>{escape(bar.label)}：{name} {count}</title></rect>")
            x += width
    done = bar.counts.get("confirmed", 0)
    decided = bar.total - bar.counts.get("pending", 0)
    rate = f"按时 {done}/{decided}" if decided else "未到截止"
    parts.append(f'<text x="{x + 6:.1f}" y="{y + BAR - 2}" class="figure">{rate}</text>')
    return "".join(parts)
