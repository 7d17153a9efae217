"""Odd values for signed-garbage fuzzing: each fuzzed request carries a *valid* signature over
its own fuzzed values, so it gets past the signature check into the timestamp, XML, crypto and
message code, where a forged request never reaches."""

from __future__ import annotations

import random
import time

ODD = ["", " ", "0", "-1", "+1", "1e3", "²", "¹²³", "١٧٠٠٠٠٠٠٠٠", "１２３", "9" * 13, "\x00", "\ufeff1", "中文",
       "a" * 3000, "%ff", "&", "=", "\u202e", "😀", "<xml>", "]]>"]


def odd_value(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return str(int(time.time()) + rng.choice([0, 1, -1, 299, -299]))
    return rng.choice(ODD) + (rng.choice(ODD) if rng.random() < 0.3 else "")


def odd_body(rng: random.Random) -> str | bytes:
    pieces = ["<xml>", "</xml>", "<ToUserName>g</ToUserName>", "<FromUserName>o</FromUserName>",
              "<MsgType>text</MsgType>", "<MsgType>event</MsgType>", "<Event>subscribe</Event>",
              "<Content>", "</Content>", "<MsgId>", "</MsgId>", "<CreateTime>²</CreateTime>", "中文", "\x00",
              "<MsgType>voice</MsgType><Recognition></Recognition>", "<![CDATA[", "]]>", "&amp;", "&#xD800;"]
    if rng.random() < 0.2:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
    return "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 14)))
