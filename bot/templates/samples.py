"""Sample contexts: what each template sees, with realistic values, for validation and previews."""

from __future__ import annotations

from typing import Any

ORGANISATION = {"name": "示范局机关党委"}

HOLIDAY = {
    "name": "春节", "festivals": ["spring_festival"], "first_day": "2026-02-15", "last_day": "2026-02-23",
    "days": 9, "workdays": ["2026-02-14", "2026-02-28"], "year": 2026, "statutory": True,
    "notice_title": "国务院办公厅关于2026年部分节假日安排的通知",
}

MEETING = {
    "title": "第一党支部支委会", "kind": "支委会", "branch": "第一党支部",
    "start": "2026-03-06T14:30:00+08:00", "end": "2026-03-06T16:00:00+08:00", "date": "2026-03-06",
    "start_time": "14:30", "end_time": "16:00", "location": "三楼会议室", "video": "",
    "host": "张伟", "agenda": "研究部署本月支部工作", "moved_from": "", "holiday_note": "",
}

CHANGE = {
    "old_start": "2026-03-06T14:30:00+08:00", "old_end": "2026-03-06T16:00:00+08:00",
    "new_start": "2026-03-10T15:00:00+08:00", "new_end": "2026-03-10T16:30:00+08:00",
    "cancelled": False, "old_location": "三楼会议室", "new_location": "五楼会议室",
}

ITEM = {
    "id": "jsjy-2026-05", "title": "《警示教育通报》2026年第5期", "number": "5",
    "summary": "通报近期查处的违反中央八项规定精神典型问题", "link": "https://example.gov.cn/jsjy/2026-05",
    "publish_at": "2026-05-11T09:00:00+08:00", "deadline": "2026-05-22T18:00:00+08:00",
}

BRANCH = {"id": "b1", "name": "第一党支部"}
SECRETARY = {"name": "张伟", "userid": "zhangwei"}

_STUDY = {"item": ITEM, "branch": BRANCH, "secretary": SECRETARY, "organisation": ORGANISATION}

SAMPLES: dict[str, dict[str, Any]] = {
    "holiday_notice": {"holiday": HOLIDAY, "organisation": ORGANISATION, "send_date": "2026-02-13"},
    "holiday_return": {"holiday": HOLIDAY, "organisation": ORGANISATION, "send_date": "2026-02-24"},
    "holiday_correction": {"holiday": {**HOLIDAY, "last_day": "2026-02-24", "days": 10, "workdays": ["2026-02-14"]},
                           "told": {"first_day": "2026-02-15", "last_day": "2026-02-23",
                                    "workdays": ["2026-02-14", "2026-02-28"]},
                           "organisation": ORGANISATION, "send_date": "2026-02-16"},
    "meeting_reminder": {"meeting": MEETING, "organisation": ORGANISATION},
    "meeting_change": {"meeting": MEETING, "change": CHANGE, "organisation": ORGANISATION},
    "study_prompt": _STUDY,
    "study_nudge": _STUDY,
    "study_overdue": {"item": ITEM, "missing": [{"name": "第二党支部", "secretary": "李娜"}],
                      "total": 3, "confirmed_count": 2, "organisation": ORGANISATION},
    "announcement": {"announcement": {"title": "关于开展党纪学习教育的通知", "body": "请各支部按要求组织学习。"},
                     "organisation": ORGANISATION},
    "reply_confirmed": {"branch": BRANCH, "confirmed_at": "2026-05-20T16:12:00+08:00",
                        "items": [{**ITEM, "late": False}], "organisation": ORGANISATION},
    "reply_already": {"branch": BRANCH, "items": [{**ITEM, "confirmed_at": "2026-05-20T16:12:00+08:00"}],
                      "organisation": ORGANISATION},
    "reply_choose": {"branch": BRANCH, "items": [ITEM, {**ITEM, "title": "《警示教育通报》2026年第6期"}],
                     "organisation": ORGANISATION},
    "reply_progress": {"branch": BRANCH, "open_items": [{**ITEM, "overdue": False}], "done_count": 4,
                       "organisation": ORGANISATION},
    "reply_help": {"organisation": ORGANISATION},
    "reply_not_secretary": {"organisation": ORGANISATION},
    "reply_nothing_open": {"branch": BRANCH, "organisation": ORGANISATION},
    "alert": {"alert": {"title": "消息发送失败", "lines": ["节前廉洁提醒 → 第一党支部群：群机器人密钥无效（93000）"],
                        "advice": "检查该群机器人是否已被移出群聊，并更新配置中的 key"},
              "organisation": ORGANISATION},
}

# Which sample a shipped template is checked with; a template named after a kind uses that kind's.
TEMPLATE_KINDS = {
    "holiday_integrity": "holiday_notice", "holiday_return": "holiday_return",
    "holiday_correction": "holiday_correction",
    "meeting_reminder": "meeting_reminder", "meeting_change": "meeting_change",
    "study_prompt": "study_prompt", "study_nudge": "study_nudge", "study_overdue": "study_overdue",
    "announcement": "announcement",
}


def sample_context(template: str, kind: str | None = None) -> dict[str, Any]:
    """The sample for a template: by its own name, by the kind a rule uses it for, or empty."""
    key = template if template in SAMPLES else TEMPLATE_KINDS.get(template, kind or "")
    return dict(SAMPLES.get(key, {"organisation": ORGANISATION}))
