"""What the two official WeChat channels (公众号 and 企业微信 微信客服) share.

Both speak the same callback crypto (SHA-1 signatures, AES-256-CBC with the EncodingAESKey),
the same XML envelope and the same access-token + JSON API style, so it lives here once:
``crypto`` (signatures, encrypt/decrypt), ``wxxml`` (safe parsing, replies), ``api`` (token
cache shared through Redis, calls with refresh and error classes) and ``outbox`` (ordered,
paced, retried delivery of the messages a passive reply cannot carry).
"""
