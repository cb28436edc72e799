"""The local edge's decision (`lufy.media.edge.authorize`) on the shared table of cases, in
process: the same answers the CloudFront Function gives (compared case by case, over HTTP and
under Node, in tests/integration/test_stream_edge_cases.py)."""

from __future__ import annotations

import time
import uuid

import pytest

from lufy.media.edge import authorize
from lufy.media.signing import stream_key_id
from tests.helpers.edge import make_token
from tests.helpers.edge_cases import KVS, NEW_SECRET, Case, cases

TRACK = uuid.uuid4()
CASES = cases(TRACK)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_local_edge_decides_each_case_of_the_table(case: Case) -> None:
    decision = authorize(case.uri, KVS, now=time.time())
    if case.allow is not None:
        assert decision.origin_uri == f"/hls/{TRACK}/{case.allow}"
        assert decision.reason is None
    else:
        assert decision.origin_uri is None
        assert decision.reason == case.refuse


def test_a_token_is_refused_from_the_second_of_its_expiry() -> None:
    exp = 2_000_000_000
    claims = {"sub": "anonymous", "sid": str(TRACK), "jti": "j", "tier": "premium", "exp": exp}
    token = make_token({"alg": "HS256", "kid": stream_key_id(NEW_SECRET)}, claims, NEW_SECRET)
    uri = f"/hls/{token}/{TRACK}/master.m3u8"
    assert authorize(uri, KVS, now=exp - 0.5).allowed
    assert authorize(uri, KVS, now=exp).reason == "the stream token has expired"
