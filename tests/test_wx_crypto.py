"""The callback crypto against someone else's numbers: wechatpy's own test vectors.

Source: github.com/wechatpy/wechatpy (commit 5b8502e), tests/test_crypto.py (CryptoTestCase:
token, EncodingAESKey, corp id, the echostr check, encrypt_message with the random prefix
fixed to "1234567890123456", decrypt_message) and tests/test_utils.py (check_signature).
The same framing serves 公众号 safe mode (receive id = AppID) and 企业微信 (= CorpID).
"""

from __future__ import annotations

import re

import pytest

from bot.channels.wxbase.crypto import CryptoError, MessageCrypto, WrongReceiver, aes_key, signature, signature_ok
from bot.channels.wxbase.wxxml import XmlError, cdata, parse
from tests.wx_peer.callbacks import encrypt as peer_encrypt

# wechatpy tests/test_crypto.py CryptoTestCase
TOKEN = "123456"
ENCODING_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
CORP_ID = "wx49f0ab532d5d035a"
ECHO_SIGNATURE, ECHO_TS, ECHO_NONCE = "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374425"
ECHO_STR = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
REPLY = """<xml>
<MsgType><![CDATA[text]]></MsgType>
<Content><![CDATA[test]]></Content>
<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>
<ToUserName><![CDATA[messense]]></ToUserName>
<AgentID>1</AgentID>
<CreateTime>1411525903</CreateTime>
</xml>"""
REPLY_TS, REPLY_NONCE = "1411525903", "461056294"
REPLY_ENCRYPTED = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObves"
    "El5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNr"
    "sDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0n"
    "TYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3"
)
REPLY_SIGNATURE = "407518b7649e86ef23978113f92d27afa9296533"
INCOMING_ENCRYPTED = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6"
    "ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/T"
    "ywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5"
    "t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
INCOMING_SIGNATURE = "74d92dfeb87ba7c714f89d98870ae5eb62dff26d"
# wechatpy tests/test_utils.py test_check_signature_should_ok / _should_fail
PLAIN_TOKEN, PLAIN_TS, PLAIN_NONCE = "test", "1410685589", "test"
PLAIN_SIGNATURE = "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"


def crypto() -> MessageCrypto:
    return MessageCrypto(ENCODING_AES_KEY, CORP_ID)


def test_plain_signature_matches_wechatpy() -> None:
    assert signature(PLAIN_TOKEN, PLAIN_TS, PLAIN_NONCE) == PLAIN_SIGNATURE
    assert signature_ok(PLAIN_SIGNATURE, PLAIN_TOKEN, PLAIN_TS, PLAIN_NONCE)
    assert not signature_ok("f21891de399b4e33a1a93c9a7b8a8fffb5a443fe", PLAIN_TOKEN, PLAIN_TS, PLAIN_NONCE)
    assert not signature_ok(None, PLAIN_TOKEN, PLAIN_TS, PLAIN_NONCE)
    assert not signature_ok("", PLAIN_TOKEN, PLAIN_TS, PLAIN_NONCE)


def test_echostr_signature_and_decryption_match_wechatpy() -> None:
    assert signature_ok(ECHO_SIGNATURE, TOKEN, ECHO_TS, ECHO_NONCE, ECHO_STR)
    assert not signature_ok(ECHO_SIGNATURE, TOKEN, ECHO_TS, "437374424", ECHO_STR)  # wechatpy's "should fail"
    assert crypto().decrypt(ECHO_STR).isdigit()


def test_encrypt_reproduces_wechatpy_ciphertext_and_signature() -> None:
    encrypted = crypto().encrypt(REPLY.encode(), nonce16=b"1234567890123456")
    assert encrypted == REPLY_ENCRYPTED
    assert signature(TOKEN, REPLY_TS, REPLY_NONCE, encrypted) == REPLY_SIGNATURE


def test_decrypt_wechatpy_message() -> None:
    assert signature_ok(INCOMING_SIGNATURE, TOKEN, REPLY_TS, REPLY_NONCE, INCOMING_ENCRYPTED)
    msg = parse(crypto().decrypt(INCOMING_ENCRYPTED))
    assert msg["Content"] == "test" and msg["FromUserName"] == "messense"


def test_round_trip_with_the_independent_peer() -> None:
    text = "<xml><Content><![CDATA[我被骗了]]></Content></xml>".encode()
    for size in range(0, 70, 7):  # every padding length class, including a full extra block
        body = text + b" " * size
        assert crypto().decrypt(peer_encrypt(ENCODING_AES_KEY, CORP_ID, body)) == body


def test_wrong_receiver_is_refused() -> None:
    other = MessageCrypto(ENCODING_AES_KEY, "wx0000000000000000")
    with pytest.raises(WrongReceiver):
        other.decrypt(INCOMING_ENCRYPTED)


@pytest.mark.parametrize("pad", [b"\x00", b"\x21" * 33, b"\x05\x05\x05\x04\x05"])
def test_bad_padding_is_refused(pad: bytes) -> None:
    ciphertext = peer_encrypt(ENCODING_AES_KEY, CORP_ID, b"a", random16=b"x" * 16, pad=pad)
    with pytest.raises(CryptoError) as err:
        crypto().decrypt(ciphertext)
    assert err.value.reason == "bad_padding"


@pytest.mark.parametrize("bad", ["not base64!!", "", "QUJD", "A" * 22 + "=="])
def test_malformed_ciphertext_is_refused(bad: str) -> None:
    with pytest.raises(CryptoError):
        crypto().decrypt(bad)


def test_aes_key_must_be_43_base64_characters() -> None:
    assert len(aes_key(ENCODING_AES_KEY)) == 32
    for bad in ("short", ENCODING_AES_KEY + "A", "!" * 43):
        with pytest.raises(ValueError):
            aes_key(bad)


def test_xml_entities_and_dtds_are_refused() -> None:
    xxe = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><C>&e;</C></xml>'
    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><xml><C>&b;</C></xml>'
    for body in (xxe, bomb, "<xml><unclosed></xml>", "", "<notxml/>", "\xff\xfe"):
        with pytest.raises(XmlError):
            parse(body)


def test_cdata_survives_its_own_terminator() -> None:
    content = "a]]>b<![CDATA[c"
    assert parse(f"<xml><C>{cdata(content)}</C></xml>")["C"] == content
    assert re.fullmatch(r"<!\[CDATA\[.*\]\]>", cdata("x"))
