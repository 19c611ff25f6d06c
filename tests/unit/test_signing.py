"""Signed user ids: what a host site signs, the chat function accepts — nothing else."""

from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import BadRequest
from shared.memory.signing import (
    InvalidUserToken,
    UserTokenExpired,
    UserTokensDisabled,
    sign_user_id,
    verify_user_token,
)

SECRET = "s" * 40
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_a_valid_token_yields_the_user_id():
    token = sign_user_id("cust-42", SECRET, ttl=3600, now=NOW)
    assert verify_user_token(token, SECRET, NOW + timedelta(minutes=59)) == "cust-42"


@pytest.mark.parametrize("user_id", ["alice@example.com", "a.b.c", "tenant:user_1", "x", "u" * 128])
def test_user_ids_with_dots_and_the_full_alphabet_parse_from_the_right(user_id):
    assert verify_user_token(sign_user_id(user_id, SECRET, ttl=60, now=NOW), SECRET, NOW) == user_id


def test_the_token_format_is_user_expiry_and_hex_hmac():
    import hashlib
    import hmac

    expires = int(NOW.timestamp()) + 60
    signature = hmac.new(SECRET.encode(), f"bob.{expires}".encode(), hashlib.sha256).hexdigest()
    assert sign_user_id("bob", SECRET, ttl=60, now=NOW) == f"bob.{expires}.{signature}"
    assert verify_user_token(f"bob.{expires}.{signature.upper()}", SECRET, NOW) == "bob"


def test_a_tampered_user_id_is_rejected():
    token = sign_user_id("alice", SECRET, ttl=60, now=NOW)
    with pytest.raises(InvalidUserToken, match="signature"):
        verify_user_token("mallory" + token[len("alice"):], SECRET, NOW)


def test_a_tampered_expiry_is_rejected():
    user, expires, signature = sign_user_id("alice", SECRET, ttl=60, now=NOW).split(".")
    with pytest.raises(InvalidUserToken, match="signature"):
        verify_user_token(f"{user}.{int(expires) + 86400}.{signature}", SECRET, NOW)


def test_a_tampered_signature_or_another_secret_is_rejected():
    token = sign_user_id("alice", SECRET, ttl=60, now=NOW)
    flipped = token[:-1] + ("0" if token[-1] != "0" else "1")
    with pytest.raises(InvalidUserToken, match="signature"):
        verify_user_token(flipped, SECRET, NOW)
    with pytest.raises(InvalidUserToken, match="signature"):
        verify_user_token(token, "t" * 40, NOW)


def test_an_expired_token_is_rejected_with_its_own_code():
    token = sign_user_id("alice", SECRET, ttl=60, now=NOW)
    with pytest.raises(UserTokenExpired) as caught:
        verify_user_token(token, SECRET, NOW + timedelta(seconds=60))
    assert (caught.value.status, caught.value.code) == (401, "user_token_expired")


@pytest.mark.parametrize("token", [
    "", "alice", "alice.123", "alice.123.abc", "alice.12x.{sig}", ".123.{sig}", "al ice.123.{sig}",
    "alice/../x.123.{sig}", "u" * 129 + ".123.{sig}", "alice.-5.{sig}", "alice.1234567890123.{sig}",
])
def test_malformed_tokens_are_rejected(token):
    with pytest.raises(InvalidUserToken, match="malformed") as caught:
        verify_user_token(token.format(sig="a" * 64), SECRET, NOW)
    assert (caught.value.status, caught.value.code) == (401, "invalid_user_token")
    assert isinstance(caught.value, BadRequest)


def test_a_non_string_token_is_rejected():
    with pytest.raises(InvalidUserToken):
        verify_user_token(None, SECRET, NOW)  # type: ignore[arg-type]


def test_with_no_secret_every_token_is_rejected_and_says_so():
    token = sign_user_id("alice", SECRET, ttl=60, now=NOW)
    with pytest.raises(UserTokensDisabled, match="USER_TOKEN_SECRET") as caught:
        verify_user_token(token, "", NOW)
    assert caught.value.code == "user_tokens_disabled"
    assert "not enabled" in caught.value.public_message
    assert "USER_TOKEN_SECRET" not in caught.value.public_message


def test_signing_refuses_invalid_user_ids_and_an_empty_secret():
    with pytest.raises(ValueError):
        sign_user_id("has space", SECRET, ttl=60)
    with pytest.raises(ValueError):
        sign_user_id("alice", "", ttl=60)
