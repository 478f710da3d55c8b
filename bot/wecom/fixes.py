"""What an administrator does about WeCom's configuration errors (wecom.md §7), for the console's
delivery detail page. Errors that are ours or passing (-1, 45009) have no entry: retrying is the fix."""

from __future__ import annotations

CONFIG_FIXES: dict[int, str] = {
    40001: "在企业微信管理后台“应用管理 → 本应用”查看 Secret，填入配置 wecom.secret（或其环境变量），然后重试。",
    40013: "在企业微信管理后台“我的企业 → 企业信息”查看企业 ID，填入配置 wecom.corp_id。",
    40091: "应用 Secret 不正确：重新查看并填写配置 wecom.secret。",
    40056: "配置 wecom.agent_id 与应用不符：在“应用管理 → 本应用”查看 AgentId 并填写。",
    301002: "配置 wecom.agent_id 与 wecom.secret 不属于同一个应用：核对两者。",
    48002: "该应用没有调用此接口的权限：在企业微信管理后台检查应用的接口权限。",
    60011: "应用的可见范围不够：在“应用管理 → 本应用 → 可见范围”中加入接收人（应用群聊须设为根部门）。",
    60020: "服务器的出口 IP 不在应用的企业可信 IP 中：在“应用管理 → 本应用 → 企业可信IP”中添加错误信息所列的 IP。",
    43012: "带按钮的卡片需要应用配置“接收消息”回调：在“应用管理 → 本应用 → 接收消息”中设置回调地址（本服务的 /wecom/callback）。",
    81013: "接收人全部无效：检查该推送对象的成员账号、部门或标签是否存在且在应用可见范围内。",
    86003: "应用群聊不存在：检查该推送对象的 chatid，应用群聊须由本应用创建。",
    93000: "群机器人的 Webhook 密钥无效或机器人已被移出群聊：在群里重新添加机器人，把新的 key 填入该推送对象的配置。",
    93004: "群机器人已被停用：请群主在群设置中重新启用机器人。",
    93008: "群机器人已不在群聊中：把机器人重新加入该群，或更新配置中的 key。",
}


def config_fix(errcode: int | None) -> str | None:
    return CONFIG_FIXES.get(errcode) if errcode is not None else None
