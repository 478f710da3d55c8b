"""A State Council notice as people get it, turned into one plain line of Simplified text.

Reprints differ in everything but the words: a saved HTML page or pasted text, full-width or
half-width punctuation, blank lines and indentation, Traditional characters (Hong Kong and
Taiwan mirrors). ``plain_text`` removes those differences so that ``bot.calendars.notice_import``
parses one form only. Nothing here reads a file or the network.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from html.parser import HTMLParser

_HTML_HINT = re.compile(r"<\s*(?:html|body|p|div|br|span|td|article)\b", re.IGNORECASE)
_BLOCK_TAGS = frozenset({"p", "div", "br", "li", "tr", "td", "h1", "h2", "h3", "h4", "section", "article"})
_SKIPPED_TAGS = frozenset({"script", "style", "head", "title", "noscript"})
_WHITESPACE = re.compile(r"\s+")


class _TextOfPage(HTMLParser):
    """The visible text of a page; block elements end a line, scripts and styles are dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def page_text(html: str) -> str:
    """The visible text of an HTML page, one block per line."""
    parser = _TextOfPage()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


@cache
def _to_simplified():  # type: ignore[no-untyped-def]
    import opencc  # loads its dictionaries once, only when a notice is read
    return opencc.OpenCC("t2s")


def plain_text(raw: str) -> str:
    """One line of Simplified text with half-width digits and punctuation and no whitespace.

    Chinese needs no spaces between words, so removing every space and line break also joins
    a title that a page broke over two lines ("关于2024年\\n部分节假日安排的通知").
    """
    text = page_text(raw) if _HTML_HINT.search(raw) else raw
    text = _to_simplified().convert(text)
    text = unicodedata.normalize("NFKC", text)  # （１月１日）→ (1月1日), ：→ :
    return _WHITESPACE.sub("", text)
