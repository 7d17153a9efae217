"""The ID-number and card checks (python-stdnum) behind redaction, on numbers built here."""

from __future__ import annotations

from bot.privacy import PLACEHOLDERS, luhn_ok, redact, valid_id_number


def with_check_digit(body: str) -> str:
    """GB 11643 check digit, computed independently of the code under test."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def test_an_id_needs_its_check_digit_and_a_real_birth_date() -> None:
    good = with_check_digit("11010519491231002")
    assert valid_id_number(good) and valid_id_number(good.lower())
    assert not valid_id_number(good[:-1] + ("0" if good[-1] != "0" else "1"))
    for impossible in ("11010519491331002", "11010519490230002"):  # month 13, 30 February
        assert not valid_id_number(with_check_digit(impossible))


def test_an_impossible_id_is_still_redacted_as_a_long_number() -> None:
    fake = with_check_digit("11010519491331002")
    out = redact(f"单号 {fake} 查一下")
    assert fake not in out.text and PLACEHOLDERS["digits"] in out.text
    assert "id_number" not in out.kinds
    real = with_check_digit("11010519491231002")
    assert redact(f"我的身份证 {real}").kinds == {"id_number"}


def test_luhn() -> None:
    assert luhn_ok("4111111111111111") and luhn_ok("79927398713")
    assert not luhn_ok("4111111111111112") and not luhn_ok("79927398710")


def test_a_mistyped_id_number_is_still_called_an_id_number_in_the_warning() -> None:
    """18 digits that fail the check digit but say 身份证 (or carry a real birth date) are warned
    about as an ID number; the number itself is redacted either way."""
    from bot.privacy import redact

    for text in ("我身份证号是 320102199507083316 你帮我查下", "350102195503124417"):
        red = redact(text)
        assert red.kinds == {"id_number"} and "3201021995" not in red.text and "3501021955" not in red.text
    assert redact("订单号 123456789012345678").kinds == {"digits"}
