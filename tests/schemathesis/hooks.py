"""Schemathesis hooks for scripts/schemathesis.

Every request comes from its own client address (X-Forwarded-For, which the origin under test
believes from 127.0.0.1 only), so that the per-IP quotas do not turn the run into a test of
429s. A counter, not `random`: Hypothesis seeds `random` per example, so random addresses
repeat.
"""

import itertools

import schemathesis

_next = itertools.count(1)


@schemathesis.hook
def before_call(ctx, case, kwargs):
    n = next(_next)
    case.headers = dict(case.headers or {})
    case.headers["X-Forwarded-For"] = "10.%d.%d.%d" % ((n >> 16) & 255, (n >> 8) & 255, n & 255)
