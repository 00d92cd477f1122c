"""Schemathesis hooks for scripts/schemathesis.

Every request comes from its own client address (X-Forwarded-For, which the origin under test
believes from 127.0.0.1 only), so that the per-IP quotas do not turn the run into a test of
429s. A counter, not `random`: Hypothesis seeds `random` per example, so random addresses
repeat.
"""

import itertools

import schemathesis
from schemathesis.generation.modes import GenerationMode

_next = itertools.count(1)


@schemathesis.hook
def before_call(ctx, case, kwargs):
    n = next(_next)
    case.headers = dict(case.headers or {})
    case.headers["X-Forwarded-For"] = "10.%d.%d.%d" % ((n >> 16) & 255, (n >> 8) & 255, n & 255)


# Why a request that fits its schema may still be refused with a 400: a secret that generated
# data cannot know (an emailed code, a link's token, a passkey ceremony's token, a page's
# cursor, which only the server hands out), a password that zxcvbn rates guessable, which no
# JSON Schema can state, or a rule across two fields that the document's schemas do not state
# (a public OpenID client cannot use client_credentials; a user is made with a password or an
# invitation, not both; a tenant's deletion repeats the slug of its path).
# Any other 400 to schema-valid data means the schema promises more than the server accepts.
UNSTATABLE = {
    "invalid_code",
    "invalid_link",
    "invalid_ceremony",
    "weak_password",
    "public_client_credentials",
    "invalid_cursor",
    "password_and_invite",
    "confirmation_mismatch",
}


@schemathesis.check
def positive_data_is_refused_only_for_secrets(ctx, response, case):
    """Schemathesis's own "validation mismatch" fires only when an operation refuses all of its
    schema-valid requests; this one fails at the first such request refused for a reason its
    schema could have stated."""
    meta = case.meta
    if meta is None or meta.generation.mode != GenerationMode.POSITIVE:
        return
    if response.status_code != 400:
        return
    try:
        code = response.json().get("code")
    except ValueError:
        code = None
    if code not in UNSTATABLE:
        raise AssertionError(
            f"schema-valid data refused with 400 `{code}`: the schema should say what the server accepts"
        )
