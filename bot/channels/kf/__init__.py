"""The 企业微信 微信客服 (WeChat Customer Service) channel: callback, pull, send, handoff.

``settings`` (env → ``KfSettings``) and ``channel`` (``KfChannel``). Crypto, XML, token and
outbox are shared with the 公众号 channel in ``bot.channels.wxbase``.
"""

from __future__ import annotations

from .channel import CHANNEL, PATH, KfChannel
from .settings import KfSettings, kf_settings_from_env

__all__ = ["CHANNEL", "PATH", "KfChannel", "KfSettings", "kf_settings_from_env"]
