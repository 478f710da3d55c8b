"""Jinja's syntax errors in Chinese: administrators read them in the console and in `check`.

Jinja words its errors in English; we recognise the ones a template editor meets and say them in
Chinese, naming tokens as they are written in a template ("}}", "%}"). Anything unrecognised is
shown in Chinese with Jinja's own words in brackets, so no detail is lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_TOKENS = {
    "end of print statement": "}}", "begin of print statement": "{{",
    "end of statement block": "%}", "begin of statement block": "{%",
    "end of template": "模板结尾", "name": "名称", "integer": "数字", "string": "字符串",
}


def _token(text: str) -> str:
    return f"“{_TOKENS.get(text, text)}”"


def _tags(text: str) -> str:
    """"'endfor' or 'else'" → "{% endfor %} 或 {% else %}"."""
    return " 或 ".join(f"{{% {tag} %}}" for tag in re.findall(r"'(\w+)'", text))


_LOOKING_FOR = r"Jinja was looking for the following tags: (.+)\. The innermost block that needs to be closed is '(\w+)'\."

_RULES: list[tuple[str, Callable[[re.Match[str]], str]]] = [
    (r"Unexpected end of template\. " + _LOOKING_FOR,
     lambda m: f"模板意外结束：{{% {m[2]} %}} 块没有结束，缺少 {_tags(m[1])}"),
    (r"Encountered unknown tag '(\w+)'\. " + _LOOKING_FOR,
     lambda m: f"无法识别的标签 {{% {m[1]} %}}：此处应为 {_tags(m[2])}（需要结束的是 {{% {m[3]} %}} 块）"),
    (r"Encountered unknown tag '(\w+)'\.?", lambda m: f"无法识别的标签 {{% {m[1]} %}}"),
    (r"unexpected end of template, expected '(.+?)'\.?", lambda m: f"模板意外结束，缺少 {_token(m[1])}"),
    (r"unexpected '(.+?)', expected '(.+?)'", lambda m: f"此处不应出现 {_token(m[1])}，应为 {_token(m[2])}"),
    (r"unexpected '(.+?)'", lambda m: f"此处不应出现 {_token(m[1])}"),
    (r"expected token '(.+?)', got '(.+?)'", lambda m: f"此处应为 {_token(m[1])}，实际是 {_token(m[2])}"),
    (r"Expected an expression, got '(.+?)'", lambda m: f"此处缺少变量或表达式（遇到 {_token(m[1])}）"),
    (r"unexpected char (['\"])(.+?)\1 at \d+", lambda m: f"无法识别的字符 “{m[2]}”（字符串的引号是否成对？）"),
    (r"No filter named '(.+?)'\.?", lambda m: f"没有名为 {m[1]} 的过滤器"),
    (r"No test named '(.+?)'\.?", lambda m: f"没有名为 {m[1]} 的 is 判断"),
    (r"Missing end of comment tag", lambda m: "注释 {# 缺少结尾的 #}"),
    (r"tag name expected", lambda m: "{% %} 中缺少标签名"),
]


def chinese_syntax_error(message: str) -> str:
    """Jinja's syntax error ``message`` said in Chinese."""
    text = message.strip()
    for pattern, say in _RULES:
        match = re.fullmatch(pattern, text)
        if match:
            return say(match)
    return f"无法解析的写法（Jinja 的提示：{text}）"
