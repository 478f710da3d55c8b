"""bot.wecom.api: errcode mapping, payloads, secrets kept out of text."""

from __future__ import annotations

import json
import logging
import re

import pytest
import requests
from wechatpy.exceptions import WeChatClientException

from bot.wecom import api as wecom
from bot.wecom import outcomes
from bot.wecom.outcomes import classify

# wecom.md §7, each with the outcome the table asks for.
SECTION_7 = {
    -1: "retry", 40014: "failed", 42001: "failed", 40001: "failed", 45009: "retry", 45033: "retry",
    40058: "failed", 41001: "failed", 44004: "failed", 45008: "failed", 40008: "failed", 40007: "failed",
    81013: "failed", 60011: "failed", 93000: "failed", 93004: "failed", 93008: "failed",
}
CJK = re.compile(r"[\u4e00-\u9fff]")


# Issue 10: the errors a first deployment meets; retrying cannot cure any of them.
FIRST_DAY = (60020, 43012, 42014, 40056, 301002, 48002, 81013, 93000, 40058)


@pytest.mark.parametrize("errcode", sorted({*SECTION_7, *outcomes.PERMANENT, *outcomes.TRANSIENT, *outcomes.CONFIGURATION}))
def test_every_handled_errcode_maps_to_an_outcome_with_a_chinese_reason(errcode: int) -> None:
    outcome = classify(errcode, 200, None)
    assert outcome.status == SECTION_7.get(errcode, outcome.status)
    assert outcome.status in ("retry", "failed")
    assert outcome.errcode == errcode
    assert CJK.search(outcome.error or "") and f"{errcode}" in outcome.error


@pytest.mark.parametrize("errcode", sorted(outcomes.GETTOKEN))
def test_gettoken_failures_are_configuration_errors(errcode: int) -> None:
    outcome = classify(None, None, outcomes.TokenFetchError(errcode))
    assert outcome.status == "failed" and outcome.configuration and "wecom." in (outcome.error or "")


@pytest.mark.parametrize("errcode", FIRST_DAY)
def test_first_day_errors_are_configuration_errors_with_a_fix(errcode: int) -> None:
    outcome = classify(errcode, 200, None, "x, hint: [1], from ip: 203.0.113.7, more info at …")
    assert outcome.status == "failed" and outcome.configuration
    assert "。处理办法：" in (outcome.error or "")


def test_untrusted_ip_names_the_ip_and_where_to_add_it() -> None:
    exc = WeChatClientException(60020, "not allow to access from your ip, hint: [1], from ip: 203.0.113.7, more info")
    error = classify(None, None, exc).error or ""
    assert "企业可信IP" in error and error.count("203.0.113.7") == 2


def test_the_robot_key_reason_reads_as_agreed() -> None:
    outcome = classify(93000, 200, None)
    assert outcome.error is not None and outcome.error.startswith("群机器人密钥无效，或机器人已被移出群聊（93000）。处理办法：")


@pytest.mark.parametrize(("http_status", "status"), [(500, "retry"), (502, "retry"), (503, "retry"),
                                                       (429, "retry"), (404, "failed")],
                         ids=["500", "502", "503", "429", "404"])
def test_http_statuses(http_status: int, status: str) -> None:
    assert classify(None, http_status, None).status == status


@pytest.mark.parametrize("exc", [requests.ReadTimeout("http://x/cgi-bin/webhook/send?key=SECRET"),
                                 requests.ConnectTimeout(), requests.ConnectionError("key=SECRET"),
                                 outcomes.MalformedAnswer(), WeChatClientException(None, None)],
                         ids=["read-timeout", "connect-timeout", "connection", "malformed", "http-error"])
def test_transport_failures_retry_without_quoting_the_url(exc: Exception) -> None:
    outcome = classify(None, None, exc)
    assert outcome.status == "retry"
    assert "SECRET" not in (outcome.error or "") and "http" not in (outcome.error or "")


def test_unknown_errcodes_retry_and_success_is_sent() -> None:
    assert classify(0, 200, None).status == "sent"
    assert classify(12345, 200, None).status == "retry"


def test_no_errcode_is_handled_outside_the_outcome_tables() -> None:
    """Retry delays, attempt caps and token refreshes only refine a code ``classify`` already maps."""
    assert set(outcomes.RETRY_AFTER) | set(outcomes.ATTEMPT_CAPS) <= set(outcomes.TRANSIENT)
    assert outcomes.TOKEN_ERRORS <= set(outcomes.PERMANENT)


def test_minus_one_is_retried_at_most_three_times() -> None:
    assert outcomes.max_attempts_for(-1, 6) == 4
    assert outcomes.max_attempts_for(45009, 6) == 6
    assert outcomes.max_attempts_for(-1, 2) == 2


def test_robot_mentions_go_only_on_text() -> None:
    recipients = {"webhook_key": "k", "mentioned_list": ["@all"], "mentioned_mobile_list": ["13800000000"]}
    text = wecom.robot_payload("text", "节前提醒", recipients)
    assert text == {"msgtype": "text", "text": {"content": "节前提醒", "mentioned_list": ["@all"],
                                                  "mentioned_mobile_list": ["13800000000"]}}
    assert wecom.robot_payload("markdown", "**提醒**", recipients) == {"msgtype": "markdown",
                                                                      "markdown": {"content": "**提醒**"}}
    with pytest.raises(outcomes.UnsupportedMessage):
        wecom.robot_payload("image", "x", recipients)


def test_app_payload_is_deterministic_with_the_duplicate_check() -> None:
    recipients = {"touser": ["zhangwei", "lina"], "toparty": [], "totag": ["7"]}
    build = lambda: json.dumps(wecom.app_payload(recipients, 1000002, wecom.app_message("text", "t", "正文")),  # noqa: E731
                               ensure_ascii=False)
    assert build() == build()
    body = json.loads(build())
    assert body["touser"] == "zhangwei|lina" and body["totag"] == "7" and "toparty" not in body
    assert body["agentid"] == 1000002 and isinstance(body["agentid"], int)
    assert body["enable_duplicate_check"] == 1 and body["duplicate_check_interval"] == 14400


def test_textcard_and_appchat_payloads() -> None:
    card = wecom.app_message("textcard", "会议提醒", "明天 9:00", "https://example.org/m")
    assert card["textcard"] == {"title": "会议提醒", "description": "明天 9:00", "url": "https://example.org/m"}
    assert wecom.appchat_payload("chat1", wecom.app_message("text", "t", "x")) == {
        "chatid": "chat1", "msgtype": "text", "text": {"content": "x"}, "safe": 0}
    with pytest.raises(outcomes.UnsupportedMessage):
        wecom.appchat_payload("chat1", wecom.button_card(
            {"title": "t", "button_text": "b", "button_key": "k"}, "wr_1"))


def test_task_ids_are_stable_unique_short_and_in_wecoms_charset() -> None:
    first = wecom.task_id_for("study|s1@prompt:b1|b1_secretary", "2026-05-11T00:00:00+00:00")
    assert first == wecom.task_id_for("study|s1@prompt:b1|b1_secretary", "2026-05-11T00:00:00+00:00")
    assert first != wecom.task_id_for("study|s1@prompt:b1|b1_secretary", "2026-05-12T00:00:00+00:00")
    assert re.fullmatch(r"[0-9a-zA-Z_\-@]{1,128}", first)


def test_redact_masks_keys_tokens_and_secrets() -> None:
    line = "POST /cgi-bin/webhook/send?key=abc-123 HTTP/1.1 gettoken?corpid=c&corpsecret=s3 access_token=T0K"
    assert wecom.redact(line) == ("POST /cgi-bin/webhook/send?key=*** HTTP/1.1 gettoken?corpid=c&corpsecret=*** "
                                  "access_token=***")


def test_urllib3_request_lines_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("urllib3.connectionpool")
    with caplog.at_level(logging.DEBUG, logger="urllib3.connectionpool"):
        logger.debug('%s://%s:%s "%s %s %s" %s', "http", "h", 80, "POST", "/cgi-bin/webhook/send?key=SECRETKEY",
                     "HTTP/1.1", 200)
    assert "SECRETKEY" not in caplog.text and "key=***" in caplog.text
