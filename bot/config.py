"""config.yaml → typed settings.

Any string value may be ``${ENV_VAR}`` or ``file:/path`` so secrets stay out of the file. Unknown
keys are errors, and every error names the file, the line, the key path and the fix, in Chinese.
"""

from __future__ import annotations

import os
import re
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.errors import ConfigError
from bot.yamlfile import (
    KeyPath,
    config_error_from,
    dotted,
    expand_value,
    load_yaml,
    parse_clock_time,
    parse_duration,
)

CONFIG_ENV = "WECOM_REMINDER_CONFIG"
STATUTORY_FESTIVALS = ("new_year", "spring_festival", "tomb_sweeping", "labour_day",
                       "dragon_boat", "mid_autumn", "national_day")
class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Duration = Annotated[timedelta, Field(json_schema_extra={"format": "duration"})]


class Secretary(Strict):
    userid: str
    name: str


class Branch(Strict):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$")]
    name: str
    secretary: Secretary
    group: str | None = None  # the branch's group target

    @property
    def secretary_target(self) -> str:
        return f"{self.id}_secretary"


class Organisation(Strict):
    name: str = "本单位"
    branches: list[Branch] = []


class RobotTarget(Strict):
    type: Literal["robot"]
    title: str | None = None
    key: SecretStr
    mentioned_list: list[str] = []
    mentioned_mobile_list: list[str] = []

    @field_validator("key", mode="before")
    @classmethod
    def _key_from_url(cls, value: Any) -> Any:
        """Administrators copy the whole Webhook address: take the key from it."""
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(text, str) or "/" not in text:
            return value
        found = parse_qs(urlparse(text.strip()).query).get("key")
        if not found or not found[0].strip():
            raise ValueError("key 应为群机器人 Webhook 地址中 key= 后面的部分（或整个 Webhook 地址），"
                             "此处填写的地址中没有 key")
        return found[0].strip()


class AppTarget(Strict):
    type: Literal["app"]
    title: str | None = None
    users: list[str] = []
    parties: list[str] = []
    tags: list[str] = []

    @model_validator(mode="after")
    def _not_empty(self) -> AppTarget:
        if not (self.users or self.parties or self.tags):
            raise ValueError("应用消息至少需要 users、parties、tags 之一")
        return self


class AppChatTarget(Strict):
    type: Literal["appchat"]
    title: str | None = None
    chatid: Annotated[str, Field(pattern=r"^[0-9A-Za-z]{1,32}$")]


class ConsoleTarget(Strict):
    type: Literal["console"]
    title: str | None = None


Target = Annotated[RobotTarget | AppTarget | AppChatTarget | ConsoleTarget, Field(discriminator="type")]


class HolidayRule(Strict):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$")]
    kind: Literal["holiday_notice", "holiday_return"]
    template: str
    to: list[str]
    holidays: Literal["all"] | list[Literal[STATUTORY_FESTIVALS]] | None = None  # type: ignore[valid-type]
    festivals: list[str] | None = None  # lunar festivals: 元宵 七夕 重阳 …
    workdays_before: Annotated[int, Field(ge=0, le=30)] = 1
    at: time
    enabled: bool = True

    _at = field_validator("at", mode="before")(parse_clock_time)

    @model_validator(mode="after")
    def _one_source(self) -> HolidayRule:
        if (self.holidays is None) == (self.festivals is None):
            raise ValueError("规则须且只能指定 holidays（法定节假日）或 festivals（农历节日）之一")
        if self.kind == "holiday_return" and self.festivals:
            raise ValueError("节后收心提醒只适用于法定节假日（holidays）")
        return self


class StudySettings(Strict):
    prompt_template: str = "study_prompt"
    nudge_template: str = "study_nudge"
    overdue_template: str = "study_overdue"
    group_notice: bool = False  # also tell each audience branch's group when an item is published


class DeliverySettings(Strict):
    grace: timedelta = timedelta(hours=2)
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 6
    robot_per_minute: Annotated[int, Field(ge=1, le=20)] = 20
    request_timeout: timedelta = timedelta(seconds=10)
    ambiguous_robot_send: Literal["resend", "report"] = "resend"
    horizon: timedelta = timedelta(days=35)  # how far ahead the outbox is filled

    _durations = field_validator("grace", "request_timeout", "horizon", mode="before")(parse_duration)


class CallbackSettings(Strict):
    token: SecretStr
    encoding_aes_key: SecretStr

    @field_validator("encoding_aes_key")
    @classmethod
    def _aes_key(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(r"[A-Za-z0-9]{43}", value.get_secret_value()):
            raise ValueError("EncodingAESKey 应为 43 位字母或数字")
        return value


class WeComSettings(Strict):
    api_base: str  # written out: a silent default would send production traffic to localhost
    corp_id: str
    agent_id: int
    secret: SecretStr
    callback: CallbackSettings

    @model_validator(mode="before")
    @classmethod
    def _api_base_written_out(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("api_base"):
            raise ValueError("wecom 一节须写明 api_base：正式环境填企业微信的接口地址（见 config.example.yaml 中 "
                             "api_base 一行的说明），政务微信等私有部署填其接口地址，内置模拟器填 http://127.0.0.1:9000")
        return data


class AibotSettings(Strict):
    """The 智能机器人 in API mode over its long connection (wecom.md §11): no inbound address needed."""

    bot_id: Annotated[str, Field(min_length=1)]
    secret: SecretStr
    ws_url: Annotated[str, Field(pattern=r"^wss?://")] = "wss://openws.work.weixin.qq.com"
    heartbeat: timedelta = timedelta(seconds=30)  # a ping this often; two unanswered mean the link is dead

    _durations = field_validator("heartbeat", mode="before")(parse_duration)


class ServerSettings(Strict):
    listen: str = "127.0.0.1:8080"
    secret_key: SecretStr | None = None  # signs console sessions; generated and kept in data/ when absent
    trusted_proxy_header: str | None = None  # e.g. X-Forwarded-For behind a proxy; unset: the TCP peer
    session_idle: timedelta = timedelta(hours=2)       # a console session ends after this long unused
    session_lifetime: timedelta = timedelta(hours=12)  # and this long after login, however used
    _durations = field_validator("session_idle", "session_lifetime", mode="before")(parse_duration)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("listen 应为 主机:端口，如 127.0.0.1:8080")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class DatabaseSettings(Strict):
    url: SecretStr = SecretStr("sqlite:///data/wecom-reminder.db")


class PathSettings(Strict):
    schedules: Path = Path("schedules")
    messages: Path = Path("messages")
    data: Path = Path("data")


class CalendarSettings(Strict):
    allowed_hosts: list[str] = []  # .ics and holiday_watch URLs on these hosts may reach inside addresses


class AdminSettings(Strict):
    """Where alerts (failed, missed, overdue studies) go. ``targets``: in order, an alert goes to the
    first that works (the office app, then a robot in the office group); ``target``: one, as before."""

    target: str | None = None
    targets: list[str] = []

    @model_validator(mode="after")
    def _one_form(self) -> AdminSettings:
        if self.target and self.targets:
            raise ValueError("admins 中 target 与 targets 只能填写一个；多个管理员推送对象请都写在 targets 中，按顺序排列")
        return self


class HolidayWatchSettings(Strict):  # the daily look for next year's notice; off while url is empty
    url: str | None = None          # the State Council's notice page, or an internal mirror (bot.safe_fetch)
    console_url: str | None = None  # the console's 日历与会议 page, as the alert should link it


class Settings(Strict):
    timezone: str = "Asia/Shanghai"
    organisation: Organisation = Organisation()
    targets: dict[str, Target] = {}
    groups: dict[str, list[str]] = {}
    admins: AdminSettings = AdminSettings()
    holiday_watch: HolidayWatchSettings = HolidayWatchSettings()
    rules: list[HolidayRule] = []
    studies: StudySettings = StudySettings()
    delivery: DeliverySettings = DeliverySettings()
    calendars: CalendarSettings = CalendarSettings()
    database: DatabaseSettings = DatabaseSettings()
    paths: PathSettings = PathSettings()
    wecom: WeComSettings | None = None
    aibot: AibotSettings | None = None
    server: ServerSettings = ServerSettings()
    source: Path | None = None  # the file these settings came from (set by the loader)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("未知的时区名称，应为 Asia/Shanghai 这样的 IANA 时区") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def all_targets(self) -> dict[str, Any]:
        """Configured targets plus one app target per branch secretary (``<branch>_secretary``)."""
        derived = {b.secretary_target: AppTarget(type="app", title=f"{b.name}书记", users=[b.secretary.userid])
                   for b in self.organisation.branches}
        return {**derived, **self.targets}

    def resolve_targets(self, names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
        """Expand group names into target names, keeping order and dropping repeats."""
        resolved: dict[str, None] = {}
        for name in names:
            resolved.update(dict.fromkeys(self.groups.get(name, [name])))
        return tuple(resolved)

    def admin_chain(self) -> tuple[str, ...]:
        """The administrators' targets in the order alerts try them (groups expanded)."""
        names = self.admins.targets or ([self.admins.target] if self.admins.target else [])
        return self.resolve_targets(names)

    def branch(self, branch_id: str) -> Branch | None:
        return next((b for b in self.organisation.branches if b.id == branch_id), None)

    def database_url(self) -> str:
        """The database URL; a relative SQLite path is relative to the config file's folder."""
        url = self.database.url.get_secret_value()
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
            base = self.source.parent if self.source else Path.cwd()
            return prefix + str(base / url[len(prefix):])
        return url

    def path(self, which: str) -> Path:
        """A path from `paths`, relative to the config file's folder."""
        value: Path = getattr(self.paths, which)
        base = self.source.parent if self.source else Path.cwd()
        return value if value.is_absolute() else base / value


class _ReferenceError(ValueError):
    def __init__(self, message: str, loc: KeyPath) -> None:
        super().__init__(message)
        self.loc = loc


def check_references(settings: Settings) -> None:
    """Every name a rule, group or branch uses must be a target or a group."""
    targets = settings.all_targets()
    for group, members in settings.groups.items():
        if group in targets:
            raise _ReferenceError(f"分组名 {group} 与推送对象重名", ("groups", group))
        for i, member in enumerate(members):
            if member not in targets:
                raise _ReferenceError(f"分组 {group} 中的 {member} 不是已定义的推送对象", ("groups", group, i))
    known = set(targets) | set(settings.groups)
    for r, rule in enumerate(settings.rules):
        for i, name in enumerate(rule.to):
            if name not in known:
                raise _ReferenceError(f"规则 {rule.id} 的推送对象 {name} 未定义", ("rules", r, "to", i))
        if [other.id for other in settings.rules].count(rule.id) > 1:
            raise _ReferenceError(f"规则 id {rule.id} 重复", ("rules", r, "id"))
    for b, branch in enumerate(settings.organisation.branches):
        if branch.group and branch.group not in targets:
            raise _ReferenceError(f"支部 {branch.id} 的群 {branch.group} 不是已定义的推送对象",
                                  ("organisation", "branches", b, "group"))
    if settings.admins.target and settings.admins.target not in known:
        raise _ReferenceError(f"管理员推送对象 {settings.admins.target} 未定义", ("admins", "target"))
    for i, name in enumerate(settings.admins.targets):
        if name not in known:
            raise _ReferenceError(f"管理员推送对象 {name} 未定义", ("admins", "targets", i))


# ---- loading -------------------------------------------------------------------------------


def find_config(explicit: str | Path | None) -> Path:
    """--config, else $WECOM_REMINDER_CONFIG, else ./config.yaml."""
    chosen = explicit or os.environ.get(CONFIG_ENV) or "config.yaml"
    return Path(chosen)


def load_settings(path: str | Path | None = None) -> Settings:
    """Read and validate a config file; raise ConfigError naming the file, line, key and fix."""
    source = find_config(path)
    if not source.exists():
        raise ConfigError("找不到配置文件", file=source, fix="用 --config 指定配置文件，或设置环境变量 WECOM_REMINDER_CONFIG，"
                              "或复制 config.example.yaml 为 config.yaml")
    data, lines = load_yaml(source, error=ConfigError)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("配置文件的顶层应为键值映射", file=source, line=1, fix="参照 config.example.yaml")
    data = expand_value(data, (), lines, source, ConfigError)
    try:
        settings = Settings.model_validate(data)
        check_references(settings)
    except ValidationError as exc:
        raise config_error_from(exc, source, lines, ConfigError) from None
    except _ReferenceError as exc:
        known = "、".join(sorted(set(settings.all_targets()) | set(settings.groups)))
        raise ConfigError(str(exc), file=source, line=lines.line_of(exc.loc), key=dotted(exc.loc),
                          fix=f"使用已定义的推送对象或分组：{known}") from None
    return settings.model_copy(update={"source": source.resolve()})
