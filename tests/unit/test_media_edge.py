"""The local edge's decision (`lufy.media.edge.authorize`, and `Edge`, which remembers the
tokens it has verified) on the shared table of cases, in process: the same answers the
CloudFront Function gives (compared case by case, over HTTP and under Node, in
tests/integration/test_stream_edge_cases.py)."""

from __future__ import annotations

import time
import uuid

import pytest

from lufy.media import edge
from lufy.media.edge import Edge, EdgeDecision, authorize
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


def _check(case: Case, decision: EdgeDecision) -> None:
    if case.allow is not None:
        assert (decision.origin_uri, decision.reason) == (f"/hls/{TRACK}/{case.allow}", None)
    else:
        assert (decision.origin_uri, decision.reason) == (None, case.refuse), case.name


def test_an_edge_that_remembers_tokens_decides_the_table_alike_twice_over() -> None:
    # One edge for the whole table, twice: the second time every token that verified is
    # answered from memory, and every request-dependent check still applies.
    remembering = Edge(KVS)
    for _ in range(2):
        for case in CASES:
            _check(case, remembering.authorize(case.uri, now=time.time()))


def _count_verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    verified: list[str] = []
    real = edge._verify

    def counting(token: str, keys: dict[str, str]) -> object:
        verified.append(token)
        return real(token, keys)

    monkeypatch.setattr(edge, "_verify", counting)
    return verified


def _token(exp: int = 2_000_000_000, tier: str = "premium", secret: str = NEW_SECRET) -> str:
    claims = {"sub": "anonymous", "sid": str(TRACK), "jti": "j", "tier": tier, "exp": exp}
    return make_token({"alg": "HS256", "kid": stream_key_id(NEW_SECRET)}, claims, secret)


def test_a_remembered_token_is_verified_once_and_still_checked_on_each_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verified = _count_verifications(monkeypatch)
    remembering = Edge(KVS)
    exp = 2_000_000_000
    token = _token(exp, tier="free")
    ok = remembering.authorize(f"/hls/{token}/{TRACK}/master.m3u8", now=exp - 10)
    assert ok.origin_uri == f"/hls/{TRACK}/master-free.m3u8"
    premium = remembering.authorize(f"/hls/{token}/{TRACK}/256k/index.m3u8", now=exp - 9)
    assert premium.reason == "the free tier does not include the 256 kbit/s rendition"
    other = remembering.authorize(f"/hls/{token}/{uuid.uuid4()}/master.m3u8", now=exp - 8)
    assert other.reason == "the stream token is for another track"
    late = remembering.authorize(f"/hls/{token}/{TRACK}/64k/seg_00000.ts", now=exp)
    assert late.reason == "the stream token has expired"
    assert verified == [token]


def test_refused_tokens_are_not_remembered_and_the_memory_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verified = _count_verifications(monkeypatch)
    remembering = Edge(KVS, remember=2)
    forged = _token(secret="not-the-key")
    first, second, third = (_token(exp=2_000_000_000 + i) for i in range(3))
    for token in (forged, forged, first, second, third, first):
        remembering.authorize(f"/hls/{token}/{TRACK}/key.bin", now=0)
    # The forged token twice (refused, so never remembered); `first` again after `third`
    # pushed it out of a memory of two.
    assert verified == [forged, forged, first, second, third, first]
