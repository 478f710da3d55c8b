"""wecom-reminder: 廉洁过节提醒、会议提醒与学习提醒，推送到企业微信。"""

__version__ = "0.1.0"
