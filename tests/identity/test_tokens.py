"""Token verification: what a principal is, and what fails, named without the token."""

from __future__ import annotations

import datetime as dt

import pytest

from controlplane.identity.tokens import Principal, TokenError, verify_token

from .keys import AUDIENCE, ISSUER, Issuer

TRUSTED = Issuer("trusted")
STRANGER = Issuer("stranger")


def verify(token: str, now: dt.datetime | None = None) -> Principal:
    return verify_token(
        token,
        [TRUSTED.public],
        issuer=ISSUER,
        audience=AUDIENCE,
        now=now or dt.datetime.now(dt.UTC),
    )


def refusal(token: str) -> str:
    with pytest.raises(TokenError) as caught:
        verify(token)
    assert token not in str(caught.value)
    return caught.value.reason


def test_a_valid_token_is_its_subject_and_roles() -> None:
    principal = verify(TRUSTED.token("alice", ["finance"], repository="org/repo"))
    assert principal.sub == "alice"
    assert principal.roles == ("finance",)
    assert principal.verified
    assert principal.claims["repository"] == "org/repo"


def test_what_fails_is_named() -> None:
    assert refusal(STRANGER.token("alice", ["finance"])) == "signed by an unknown key"
    assert refusal(TRUSTED.token("alice", [], ttl=-120)) == "expired"
    assert refusal(TRUSTED.token("alice", [], audience="other")).startswith("wrong audience")
    assert refusal(TRUSTED.token("alice", [], issuer="https://evil")).startswith("wrong issuer")
    assert refusal("not-a-token").startswith("malformed")
    assert refusal("a.b.c").startswith("malformed")


def test_a_key_with_the_trusted_kid_but_another_secret_is_a_bad_signature() -> None:
    impostor = Issuer("trusted")  # same kid, different key
    assert refusal(impostor.token("mallory", ["finance"])).startswith("bad signature")


def test_expiry_is_judged_at_the_given_time() -> None:
    token = TRUSTED.token("alice", [], ttl=60)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    with pytest.raises(TokenError, match="expired"):
        verify(token, later)


def test_shared_secret_tokens_are_refused() -> None:
    from joserfc import jwt
    from joserfc.jwk import OctKey

    secret = OctKey.import_key("s" * 32)
    token = jwt.encode({"alg": "HS256"}, {"sub": "x", "iss": ISSUER, "aud": AUDIENCE}, secret)
    assert refusal(token).startswith("malformed or unsupported")
