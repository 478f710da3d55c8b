from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_settings
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def example_with(tmp_path: Path, old: str, new: str) -> Path:
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    assert old in text
    return write(tmp_path, text.replace(old, new, 1))


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


def test_example_config_is_valid() -> None:
    settings = load_settings(ROOT / "config.example.yaml")
    assert settings.timezone == "Asia/Shanghai"
    assert settings.resolve_targets(["all_groups"]) == ("b1_group", "b2_group", "b3_group")
    assert "b1_secretary" in settings.all_targets()
    assert settings.wecom is not None and settings.wecom.agent_id == 1000002
    assert str(settings.rules[0].at) == "10:00:00"


def test_a_typo_names_file_line_key_and_fix(tmp_path: Path) -> None:
    path = example_with(tmp_path, "  b1_group: {type: robot, title: 第一党支部群, key:",
                        "  b1_group: {type: robot, title: 第一党支部群, webhok:")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"第 {line_of(path, 'webhok')} 行" in message
    assert "targets.b1_group.webhok" in message
    assert "未知的配置项 webhok" in message and "处理办法" in message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, "timezone: Asia/Shanghai\nrulez: []\n")
    with pytest.raises(ConfigError, match="第 2 行（rulez）：未知的配置项 rulez"):
        load_settings(path)


def test_rule_naming_an_unknown_target(tmp_path: Path) -> None:
    path = example_with(tmp_path, "to: [all_groups]", "to: [all_grups]")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert f"第 {line_of(path, 'all_grups')} 行" in str(caught.value)
    assert "all_grups 未定义" in str(caught.value) and "all_groups" in str(caught.value)


def test_bad_time_of_day(tmp_path: Path) -> None:
    path = example_with(tmp_path, 'at: "10:00"', 'at: "25:00"')
    with pytest.raises(ConfigError, match="HH:MM"):
        load_settings(path)


def test_unquoted_time_is_understood(tmp_path: Path) -> None:
    path = example_with(tmp_path, 'at: "10:00"', "at: 10:00")
    assert str(load_settings(path).rules[0].at) == "10:00:00"


def test_secrets_from_environment_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "aes.txt"
    secret_file.write_text("Z" * 43 + "\n")
    monkeypatch.setenv("WECOM_SECRET", "from-env")
    path = example_with(tmp_path, "secret: demo-app-secret-for-simulator-only", "secret: ${WECOM_SECRET}")
    text = path.read_text(encoding="utf-8").replace(
        "encoding_aes_key: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", f"encoding_aes_key: file:{secret_file}")
    path.write_text(text, encoding="utf-8")
    settings = load_settings(path)
    assert settings.wecom.secret.get_secret_value() == "from-env"
    assert settings.wecom.callback.encoding_aes_key.get_secret_value() == "Z" * 43
    assert "from-env" not in repr(settings)


def test_missing_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WECOM_SECRET", raising=False)
    path = example_with(tmp_path, "secret: demo-app-secret-for-simulator-only", "secret: ${WECOM_SECRET}")
    with pytest.raises(ConfigError, match="环境变量 WECOM_SECRET 未设置"):
        load_settings(path)


def test_aes_key_must_have_43_characters(tmp_path: Path) -> None:
    path = example_with(tmp_path, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "tooshort")
    with pytest.raises(ConfigError, match="43 位"):
        load_settings(path)


def test_api_base_must_be_written_out(tmp_path: Path) -> None:
    path = example_with(tmp_path, "  api_base: http://127.0.0.1:9000", "  # api_base removed")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "须写明 api_base" in str(caught.value) and "config.example.yaml" in str(caught.value)
    assert f"第 {line_of(path, 'wecom:')} 行" in str(caught.value)


def test_a_pasted_webhook_address_gives_its_key(tmp_path: Path) -> None:
    url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=6a1f0c2e-0b1d-4c55-9a11-00000000b001"
    path = example_with(tmp_path, "key: 6a1f0c2e-0b1d-4c55-9a11-00000000b001", f'key: "{url}"')
    key = load_settings(path).targets["b1_group"].key  # type: ignore[union-attr]
    assert key.get_secret_value() == "6a1f0c2e-0b1d-4c55-9a11-00000000b001"


def test_an_address_without_a_key_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = example_with(tmp_path, "key: 6a1f0c2e-0b1d-4c55-9a11-00000000b001",
                        'key: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "key= 后面的部分" in str(caught.value) and "targets.b1_group.key" in str(caught.value)


def test_admins_in_order_and_the_old_single_target(tmp_path: Path) -> None:
    path = example_with(tmp_path, "  targets: [office]", "  targets: [office, b1_group]")
    assert load_settings(path).admin_chain() == ("office", "b1_group")
    path = example_with(tmp_path, "  targets: [office]", "  target: office")
    assert load_settings(path).admin_chain() == ("office",)
    path = example_with(tmp_path, "  targets: [office]", "  targets: [office, nobody]")
    with pytest.raises(ConfigError, match="管理员推送对象 nobody 未定义"):
        load_settings(path)
    path = example_with(tmp_path, "  targets: [office]", "  target: office\n  targets: [office]")
    with pytest.raises(ConfigError, match="只能填写一个"):
        load_settings(path)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "timezone: Asia/Shanghai\ntargets:\n  a: {type: robot, key: [x\n")
    with pytest.raises(ConfigError, match="YAML 格式错误"):
        load_settings(path)


def test_missing_file_says_how_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config.example.yaml"):
        load_settings(tmp_path / "nope.yaml")


def test_config_from_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "timezone: Asia/Shanghai\n")
    monkeypatch.setenv("WECOM_REMINDER_CONFIG", str(path))
    assert load_settings(None).source == path.resolve()


def test_relative_sqlite_path_is_relative_to_the_config(tmp_path: Path) -> None:
    path = write(tmp_path, "database: {url: 'sqlite:///data/x.db'}\n")
    assert load_settings(path).database_url() == f"sqlite:///{tmp_path}/data/x.db"


def test_every_settings_key_is_documented_in_the_example() -> None:
    """Each field of the settings appears in config.example.yaml or the README."""
    from pydantic import BaseModel

    from bot.config import Settings
    documented = (ROOT / "config.example.yaml").read_text(encoding="utf-8") + \
        (ROOT / "README.md").read_text(encoding="utf-8")

    def fields(model: type[BaseModel]) -> set[str]:
        names = set()
        for name, info in model.model_fields.items():
            names.add(name)
            annotation = info.annotation
            for candidate in getattr(annotation, "__args__", (annotation,)):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    names |= fields(candidate)
        return names

    missing = sorted(n for n in fields(Settings) - {"source"} if n not in documented)
    assert not missing, f"undocumented settings: {missing}"


def test_the_fast_yaml_parser_gives_the_same_values_and_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """libyaml parses the meetings of a hundred branches four times faster; lines must not change."""
    import yaml

    from bot import yamlfile

    text = (ROOT / "schedules" / "meetings.yaml").read_text(encoding="utf-8")
    fast = yamlfile.parse_yaml(text, "meetings.yaml")
    assert yamlfile.SafeLoader is getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    monkeypatch.setattr(yamlfile, "SafeLoader", yaml.SafeLoader)
    slow = yamlfile.parse_yaml(text, "meetings.yaml")
    assert fast[0] == slow[0] and fast[1].lines == slow[1].lines
