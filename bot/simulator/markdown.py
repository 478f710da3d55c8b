"""WeCom markdown shown safely: everything is escaped first, then a small subset is re-enabled.

Message text is untrusted; the patterns below only ever match already-escaped text, so the only
HTML that reaches the page is the handful of tags written here.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
QUOTE = re.compile(r"^&gt;\s?(.*)$")
BOLD = re.compile(r"\*\*(.+?)\*\*")
CODE = re.compile(r"`([^`]+)`")
LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
FONT = re.compile(r"&lt;font color=(?:&#34;|&#39;)?(info|comment|warning)(?:&#34;|&#39;)?&gt;(.*?)&lt;/font&gt;")
MENTION = re.compile(r"&lt;@([\w.\-@]+)&gt;")


def render_markdown(text: str) -> Markup:
    return Markup("\n".join(render_line(line) for line in text.split("\n")))


def render_line(line: str) -> str:
    escaped = str(escape(line))
    heading = HEADING.match(escaped)
    if heading:
        level = len(heading.group(1))
        return f'<div class="md-h md-h{level}">{inline(heading.group(2))}</div>'
    quote = QUOTE.match(escaped)
    if quote:
        return f'<div class="md-quote">{inline(quote.group(1))}</div>'
    return f'<div class="md-line">{inline(escaped) or "&nbsp;"}</div>'


def inline(escaped: str) -> str:
    escaped = CODE.sub(r"<code>\1</code>", escaped)
    escaped = BOLD.sub(r"<strong>\1</strong>", escaped)
    escaped = FONT.sub(r'<span class="md-\1">\2</span>', escaped)
    escaped = LINK.sub(r'<a href="\2" rel="noopener noreferrer" target="_blank">\1</a>', escaped)
    return MENTION.sub(r'<span class="md-mention">@\1</span>', escaped)
