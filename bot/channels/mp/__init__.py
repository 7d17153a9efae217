"""The 公众号 (WeChat Official Account) channel: message callback + customer-service API.

``settings`` (env → ``MpSettings``) and ``channel`` (``MpChannel``: the callback handlers,
the passive-reply budget and the API sends). The crypto, XML, token and outbox parts are
shared with the 微信客服 channel in ``bot.channels.wxbase``.
"""

from __future__ import annotations

from .channel import CHANNEL, PATH, MpChannel
from .settings import MpSettings, mp_settings_from_env

__all__ = ["CHANNEL", "PATH", "MpChannel", "MpSettings", "mp_settings_from_env"]
