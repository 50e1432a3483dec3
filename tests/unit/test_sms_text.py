"""SMS bodies stay within two segments: GSM-7 (extension characters count twice) or UCS-2."""

from __future__ import annotations

import pytest

from webpush_server.channels.sms import capacity, fit, normalize, units
from webpush_server.errors import Invalid

LINK = "http://public.test/n/12345"


def test_gsm_text_that_fits_is_sent_whole_with_its_link():
    assert fit("Your book is ready", LINK) == f"Your book is ready {LINK}"


def test_long_gsm_text_is_cut_to_two_segments_and_keeps_its_link():
    body = fit("x" * 1000, LINK)
    length, gsm = units(body)
    assert gsm is True and 300 <= length <= capacity(True) == 306
    assert body.endswith(f"... {LINK}")


def test_extension_characters_count_twice():
    assert units("{}[]")[0] == 8 and units("abc")[0] == 3 and units("€")[1] is True


def test_korean_text_is_ucs2_and_cut_at_134():
    body = fit("안녕하세요 " * 60, LINK)
    length, gsm = units(body)
    assert not gsm and length <= 134 and body.endswith(LINK)


@pytest.mark.parametrize(
    ("given", "e164"),
    [("010-1234-5678", "+821012345678"), ("+1 415 555 2671", "+14155552671")],
)
def test_numbers_are_normalised_to_e164(given, e164):
    assert normalize(given) == e164


@pytest.mark.parametrize("bad", ["12", "hello", "+999 1", 42])
def test_not_numbers_are_refused_naming_the_field(bad):
    with pytest.raises(Invalid) as refused:
        normalize(bad)
    assert refused.value.field == "number"
