"""Channel adapters: each turns its wire protocol into IncomingMessage and sends the replies.

``base`` is the seam (the ``Channel`` protocol ``bot.server`` talks to); ``wechaty`` (personal
account via a puppet gateway), ``mp`` (公众号 callback) and ``kf`` (企业微信 微信客服) are the
channels, each a package with its own ``settings``; ``wxbase`` is what ``mp`` and ``kf`` share
(callback crypto, XML, access token, outbox); ``console`` is ``python -m bot chat``.
"""
