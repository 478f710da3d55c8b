"""Message templates: files in messages/ (the shipped defaults) and edited versions ahead of them.

Templates are data that non-programmers edit in a browser, so they are untrusted: they render in
Jinja2's immutable sandbox with StrictUndefined, a budget of calls, bounded string repetition and
a size limit, and they are validated (syntax, unknown variables, WeCom's byte limits) before they
can be saved.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    DictLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    meta,
    nodes,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bot.errors import TemplateError
from bot.templates.card import CardSpec, RenderedCard, parse_card, render_card, text_with_fields
from bot.templates.limits import CHANNEL_NAMES, card_problems, limit_for
from bot.templates.remembered import RememberedRenders
from bot.templates.syntax import chinese_syntax_error

if TYPE_CHECKING:  # the pool imports this module in its workers
    from bot.templates.pool import RenderPool

MSGTYPES = ("text", "markdown")
BYTE_LIMITS = {"text": 2048, "markdown": 4096}
MAX_TEMPLATE_BYTES = 20_000
MAX_CALLS = 5_000
MAX_REPEAT = 2_000
MAX_RANGE = 1_000
MAX_LOOP_DEPTH = 2
MAX_OUTPUT = 64_000
SUFFIX = ".j2"
WEEKDAYS = "一二三四五六日"
_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_FRONT = re.compile(r"\A---\n(.*?)\n---\n", re.S)


@dataclass(frozen=True)
class TemplateSource:
    name: str
    title: str
    msgtype: str
    description: str
    body: str
    body_line: int  # the line of the file where the body starts (for error positions)
    text: str       # the whole file
    card: CardSpec | None = None


@dataclass(frozen=True)
class RenderedMessage:
    msgtype: str
    title: str
    text: str                          # what a text/markdown channel sends (the body, then the card's fields)
    card: RenderedCard | None = None   # what the app sends as a template card, where the rule asks for one


def _to_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return datetime.fromisoformat(str(value)).date() if "T" in str(value) else date.fromisoformat(str(value))


def _to_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def cn_weekday(value: Any) -> str:
    """2026-02-14 → 周六"""
    return "周" + WEEKDAYS[_to_date(value).weekday()]


def cn_date(value: Any) -> str:
    """2026-02-14 → 2月14日（周六）"""
    day = _to_date(value)
    return f"{day.month}月{day.day}日（{cn_weekday(day)}）"


def cn_date_full(value: Any) -> str:
    """2026-02-14 → 2026年2月14日（周六）"""
    day = _to_date(value)
    return f"{day.year}年{cn_date(day)}"


def cn_ymd(value: Any) -> str:
    """2026-02-14 → 2026年2月14日 (for signatures)"""
    day = _to_date(value)
    return f"{day.year}年{day.month}月{day.day}日"


def cn_time(value: Any) -> str:
    """2026-03-06T14:30:00+08:00 → 14:30"""
    return _to_datetime(value).strftime("%H:%M")


def cn_datetime(value: Any) -> str:
    """2026-03-06T14:30:00+08:00 → 3月6日（周五）14:30"""
    return f"{cn_date(value)}{cn_time(value)}"


def cn_dates(values: Any) -> str:
    """[2026-02-14, 2026-02-28] → 2月14日（周六）、2月28日（周六）"""
    return "、".join(cn_date(v) for v in values)


FILTERS: dict[str, Callable[..., str]] = {
    "cn_date": cn_date, "cn_date_full": cn_date_full, "cn_ymd": cn_ymd, "cn_weekday": cn_weekday,
    "cn_time": cn_time, "cn_datetime": cn_datetime, "cn_dates": cn_dates,
}


class MessageSandbox(ImmutableSandboxedEnvironment):
    """The sandbox with a call budget and bounded repetition, so a template cannot spin or bloat."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, loader: BaseLoader) -> None:
        super().__init__(loader=loader, undefined=StrictUndefined, autoescape=False,
                         keep_trailing_newline=False, trim_blocks=True, lstrip_blocks=True)
        self.filters.update(FILTERS)
        self.globals["range"] = self._range
        self.calls = 0

    @staticmethod
    def _range(*args: int) -> range:
        bounded = range(*args)
        if len(bounded) > MAX_RANGE:
            raise SecurityError(f"range 超过 {MAX_RANGE} 项")
        return bounded

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N807
        self.calls += 1
        if self.calls > MAX_CALLS:
            raise SecurityError("模板运算量过大")
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, int) and abs(right) > 64:
                raise SecurityError("模板中的乘方过大")
            return operator.pow(left, right)
        sizes = [len(x) for x in (left, right) if isinstance(x, str | list | tuple)]
        counts = [x for x in (left, right) if isinstance(x, int)]
        if sizes and counts and sizes[0] * abs(counts[0]) > MAX_REPEAT:
            raise SecurityError("模板中的重复内容过长")
        return operator.mul(left, right)


def parse_source(name: str, text: str, origin: str) -> TemplateSource:
    """Split front matter (title, msgtype, description) from the body."""
    if len(text.encode("utf-8")) > MAX_TEMPLATE_BYTES:
        raise TemplateError(f"模板过长（超过 {MAX_TEMPLATE_BYTES} 字节）", file=origin, fix="精简模板内容")
    match = _FRONT.match(text.replace("\r\n", "\n"))
    if not match:
        raise TemplateError("缺少开头的 --- 元数据块", file=origin, line=1,
                            fix="在文件开头写 ---、title、msgtype、description 和 ---")
    try:
        front = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError:
        raise TemplateError("元数据块格式错误", file=origin, line=2, fix="每行写成 键: 值") from None
    msgtype = front.get("msgtype", "text")
    if msgtype not in MSGTYPES:
        raise TemplateError(f"不支持的消息类型 {msgtype}", file=origin, line=2, key="msgtype",
                            fix="msgtype 应为 text 或 markdown")
    unknown = set(front) - {"title", "msgtype", "description", "card"}
    if unknown:
        raise TemplateError(f"元数据中有未知的项 {'、'.join(sorted(unknown))}", file=origin, line=2,
                            fix="只使用 title、msgtype、description、card")
    body = text.replace("\r\n", "\n")[match.end():]
    return TemplateSource(name=name, title=str(front.get("title", name)), msgtype=msgtype,
                          description=str(front.get("description", "")), body=body,
                          body_line=match.group(0).count("\n") + 1, text=text,
                          card=parse_card(front.get("card"), origin))


class _BodyLoader(BaseLoader):
    """Gives Jinja the body of a template (front matter stripped), edits first, then files."""

    def __init__(self, library: TemplateLibrary) -> None:
        self.library = library

    def get_source(self, environment: Any, template: str) -> tuple[str, str | None, Callable[[], bool]]:
        name = template.removesuffix(SUFFIX)
        # A library is a snapshot (the runtime builds a new one per use), so compiled is current.
        return self.library.source(name).body, None, lambda: True


class TemplateLibrary:
    """The templates in effect: edited versions (from the database) ahead of messages/*.j2."""

    def __init__(self, directory: Path, edits: Mapping[str, str] | None = None,
                 pool: RenderPool | None = None) -> None:
        self.directory = Path(directory)
        self.edits = dict(edits or {})
        self.pool = pool  # set: renders run in its worker processes, bounded in time and memory
        self._remembered = RememberedRenders()
        self._environment: MessageSandbox | None = None
        self._sources: dict[str, TemplateSource] = {}
        self._checked: set[str] = set()
        self._snippets: dict[str, Any] = {}

    def names(self) -> list[str]:
        shipped = {p.name.removesuffix(SUFFIX) for p in self.directory.glob(f"*{SUFFIX}")}
        return sorted(n for n in shipped | set(self.edits) if not n.startswith("_"))

    def default_text(self, name: str) -> str | None:
        path = self.directory / f"{name}{SUFFIX}"
        return path.read_text(encoding="utf-8") if path.exists() else None

    def source(self, name: str) -> TemplateSource:
        """The template's text and metadata (read once per library: a library is a snapshot)."""
        if name not in self._sources:
            self._sources[name] = self._read_source(name)
        return self._sources[name]

    def _read_source(self, name: str) -> TemplateSource:
        if not _NAME.fullmatch(name):  # include/import reach only this folder's own templates
            raise TemplateNotFound(name)
        text = self.edits.get(name)
        origin = f"模板 {name}（后台编辑版本）"
        if text is None:
            text = self.default_text(name)
            origin = f"messages/{name}{SUFFIX}"
        if text is None:
            raise TemplateNotFound(name)
        return parse_source(name, text, origin)

    def with_edit(self, name: str, text: str) -> TemplateLibrary:
        """A library in which `name` is `text` (for previews and validation before saving)."""
        return TemplateLibrary(self.directory, {**self.edits, name: text}, self.pool)

    def using(self, pool: RenderPool | None) -> TemplateLibrary:
        """The same templates, rendered by ``pool`` (the console's previews have their own)."""
        return TemplateLibrary(self.directory, self.edits, pool)

    def environment(self) -> MessageSandbox:
        """One sandbox per library, so each template is compiled once; its call budget is per render."""
        if self._environment is None:
            self._environment = MessageSandbox(ChoiceLoader([_BodyLoader(self), DictLoader({})]))
        self._environment.calls = 0
        return self._environment

    def render(self, name: str, context: Mapping[str, Any]) -> RenderedMessage:
        if (pool := self.pool) is not None:
            return self._remembered.get(name, context, lambda: pool.render(self.directory, self.edits, name, context))
        source = self.source(name)
        origin = self._origin(name)
        env = self.environment()
        try:
            if name not in self._checked:
                check_structure(env.parse(source.body), origin)
                self._checked.add(name)
            text = _bounded_output(env.get_template(name).generate(dict(context)), origin).strip()
            card = self._render_card(source, text, context, origin)
        except TemplateSyntaxError as exc:
            line = exc.lineno + source.body_line - 1 if exc.name in (name, None) else exc.lineno
            raise TemplateError(f"模板语法错误：{chinese_syntax_error(exc.message or '')}", file=origin, line=line,
                                fix="检查 {{ }}、{% %} 是否成对，标签是否拼写正确") from None
        except UndefinedError as exc:
            raise TemplateError(f"模板使用了不存在的变量：{_undefined_name(exc)}", file=origin,
                                fix="只使用模板开头注释中列出的变量") from None
        except SecurityError as exc:
            raise TemplateError(f"模板被安全沙箱拒绝：{_sandbox_reason(exc)}", file=origin,
                                fix="去掉该运算、循环或对内部属性的访问，只使用模板开头注释中列出的变量") from None
        except TemplateNotFound as exc:
            raise TemplateError(f"模板引用的 {exc.name} 不存在", file=origin, fix="检查 include 的名称") from None
        except RecursionError:
            raise TemplateError("模板引用了自身（include、import 或宏调用形成循环）", file=origin,
                                fix="去掉指向自身的 include、import 或宏调用") from None
        except (TypeError, ValueError, ArithmeticError):
            raise TemplateError("模板渲染出错：运算或过滤器用在了不合适的值上（如对文字做算术、日期过滤器用在非日期上）",
                                file=origin, fix="检查模板中的运算和过滤器") from None
        return RenderedMessage(msgtype=source.msgtype, title=source.title, text=text_with_fields(text, card), card=card)

    def _render_card(self, source: TemplateSource, text: str, context: Mapping[str, Any],
                     origin: str) -> RenderedCard | None:
        """The card's parts, each a small template of its own in the same sandbox (compiled once)."""
        if source.card is None:
            return None
        env = self.environment()

        def render(snippet: str) -> str:
            if snippet not in self._snippets:
                self._snippets[snippet] = env.from_string(snippet)
            return _bounded_output(self._snippets[snippet].generate(dict(context)), origin)
        return render_card(source.card, text, render)

    def _origin(self, name: str) -> str:
        return f"模板 {name}（后台编辑版本）" if name in self.edits else f"messages/{name}{SUFFIX}"


def check_structure(ast: nodes.Template, origin: str) -> None:
    """Loops nest at most two deep: that bounds the work a template can ask for."""
    def depth(node: nodes.Node) -> int:
        inner = max((depth(child) for child in node.iter_child_nodes()), default=0)
        return inner + 1 if isinstance(node, nodes.For) else inner
    if depth(ast) > MAX_LOOP_DEPTH:
        raise TemplateError(f"循环嵌套超过 {MAX_LOOP_DEPTH} 层", file=origin,
                            fix="模板中只做简单的列举；复杂的计算请提出需求由程序完成")


def _bounded_output(chunks: Any, origin: str) -> str:
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise TemplateError(f"渲染结果超过 {MAX_OUTPUT} 个字符", file=origin, fix="检查模板中的循环")
        parts.append(chunk)
    return "".join(parts)


def _sandbox_reason(exc: SecurityError) -> str:
    """Our own refusals are Chinese already; Jinja's ("access to attribute … is unsafe") are not."""
    text = str(exc)
    return text if not re.search(r"[A-Za-z]{4,}", text) else "访问了不允许访问的属性或方法"


def _undefined_name(exc: UndefinedError) -> str:
    match = re.search(r"'([^']+)' is undefined|has no attribute '([^']+)'", str(exc))
    return (match.group(1) or match.group(2)) if match else str(exc)


@dataclass(frozen=True)
class TemplateProblem:
    message: str      # Chinese, with the fix; the line is apart (the editor and check put it in front)
    line: int | None

    @property
    def text(self) -> str:
        return f"第 {self.line} 行：{self.message}" if self.line else self.message

    @classmethod
    def of(cls, exc: TemplateError) -> TemplateProblem:
        message = f"{exc.problem}。处理办法：{exc.fix}" if exc.fix else exc.problem
        return cls(message, exc.line)


def validate_template(library: TemplateLibrary, name: str, text: str, sample: Mapping[str, Any],
                      channels: Iterable[str] = ("robot",)) -> list[TemplateProblem]:
    """Everything wrong with `text` as template `name`, rendered with `sample`, for sending through
    `channels` (bot.templates.limits). Empty means fine."""
    if library.pool is not None:
        try:
            return list(library.pool.validate(library.directory, library.edits, name, text, sample, tuple(channels)))
        except TemplateError as exc:
            return [TemplateProblem(str(exc), exc.line)]
    trial = library.with_edit(name, text)
    try:
        source = trial.source(name)
        undeclared = meta.find_undeclared_variables(trial.environment().parse(source.body))  # compiles: unknown filters
    except TemplateError as exc:
        return [TemplateProblem.of(exc)]
    except TemplateSyntaxError as exc:
        line = exc.lineno + source.body_line - 1
        return [TemplateProblem(f"模板语法错误：{chinese_syntax_error(exc.message or '')}。"
                                "处理办法：检查 {{ }}、{% %} 是否成对，标签是否拼写正确", line)]
    unknown = sorted(undeclared - set(sample) - {"range", "loop"})
    if unknown:
        return [TemplateProblem(f"模板使用了不存在的变量：{'、'.join(unknown)}。"
                                f"处理办法：可用的变量有 {'、'.join(sorted(sample))}", None)]
    try:
        rendered = trial.render(name, sample)
    except TemplateError as exc:
        return [TemplateProblem.of(exc)]
    card = card_problems(rendered.card.as_dict("")) if rendered.card else []
    return [TemplateProblem(p, None) for p in size_problems(rendered, channels) + card]


def size_problems(message: RenderedMessage, channels: Iterable[str] = ("robot",)) -> list[str]:
    """Empty, or over the strictest limit of the channels it goes through."""
    if not message.text:
        return ["渲染结果为空，企业微信不接受空消息。处理办法：补充模板正文"]
    size, found = len(message.text.encode("utf-8")), limit_for(message.msgtype, channels)
    if found is None or size <= found[0]:
        return []
    limit, channel = found
    return [f"渲染后共 {size} 字节，超过企业微信{CHANNEL_NAMES[channel]} {message.msgtype} 消息 {limit} 字节的上限。"
            f"处理办法：删减约 {size - limit} 字节（一个汉字占 3 字节）"]
