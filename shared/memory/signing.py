"""Signed user ids: how a host site tells the chat who its logged-in customer is, without a login of our own.

The host site's server signs its user id with the shared secret USER_TOKEN_SECRET and hands the token to the widget:

    user_token = "{user_id}.{expires_unix}.{hex hmac-sha256(secret, user_id + "." + expires_unix)}"

A user id is 1-128 characters of [A-Za-z0-9_@.:-]; it may itself contain ".", so a token is parsed from the right.
The signature covers the expiry, so a token cannot be extended, and is compared in constant time.

Every rejection is an `InvalidUserToken` (HTTP 401: the request's claim of identity could not be authenticated; the
remedy is the same in every case, drop the token or get a fresh one from the host site), with a distinct `code` so
the widget can tell an expired token, which it may refresh, from one that will never work:

    InvalidUserToken       invalid_user_token     malformed, or the signature does not match
    ├── UserTokenExpired   user_token_expired     validly signed but past its expiry
    ├── UserTokensDisabled user_tokens_disabled   this deployment has no secret, so no token can be checked
    └── UserTokenRequired  user_token_required    a signed user's conversation was asked for without a token
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from datetime import datetime

from shared.errors import BadRequest

USER_ID = re.compile(r"[A-Za-z0-9_@.:-]{1,128}")
_EXPIRES = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")
_MAX_TOKEN_LENGTH = 128 + 1 + 12 + 1 + 64


class InvalidUserToken(BadRequest):
    """The user token is malformed or badly signed."""

    status = 401
    public_message = "invalid user token"


class UserTokenExpired(InvalidUserToken):
    """The user token was signed by the host site but has expired: ask it for a fresh one."""

    public_message = "user token expired"


class UserTokensDisabled(InvalidUserToken):
    """Signed user ids are disabled on this deployment (USER_TOKEN_SECRET is empty)."""

    public_message = "signed user ids are not enabled on this site; send no user_token"


class UserTokenRequired(InvalidUserToken):
    """The conversation belongs to a signed user: reading it or acting on it needs that user's token."""

    public_message = "this conversation belongs to a signed-in user; send their user token"


def _signature(user_id: str, expires: str, secret: str) -> str:
    return hmac.new(secret.encode(), f"{user_id}.{expires}".encode(), hashlib.sha256).hexdigest()


def sign_user_id(user_id: str, secret: str, ttl: int, now: datetime | None = None) -> str:
    """A token for `user_id` valid for `ttl` seconds (what a host site's server does; also for tests)."""
    if not USER_ID.fullmatch(user_id):
        raise ValueError("a user id is 1-128 characters of [A-Za-z0-9_@.:-]")
    if not secret:
        raise ValueError("a secret is required to sign user ids")
    issued = int(now.timestamp() if now is not None else time.time())
    expires = str(issued + int(ttl))
    return f"{user_id}.{expires}.{_signature(user_id, expires, secret)}"


def verify_user_token(token: str, secret: str, now: datetime) -> str:
    """The user id the token vouches for, or an `InvalidUserToken` saying why not."""
    if not secret:
        raise UserTokensDisabled("USER_TOKEN_SECRET is empty, so signed user ids are disabled",
                                 public_message=UserTokensDisabled.public_message)
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_LENGTH or token.count(".") < 2:
        raise InvalidUserToken("user token is malformed: expected user_id.expires.signature")
    user_id, expires, signature = token.rsplit(".", 2)
    if not (USER_ID.fullmatch(user_id) and _EXPIRES.fullmatch(expires) and _SIGNATURE.fullmatch(signature)):
        raise InvalidUserToken("user token is malformed: expected user_id.expires.signature")
    if not hmac.compare_digest(_signature(user_id, expires, secret), signature.lower()):
        raise InvalidUserToken("user token signature does not match")
    if now.timestamp() >= int(expires):
        raise UserTokenExpired("user token expired")
    return user_id
