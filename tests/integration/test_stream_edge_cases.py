"""One table of cases, run against the CloudFront Function under Node and against the local
edge of the running app (`/media/hls/…`): the two must agree case by case, status and reason,
and where they allow a request the local edge serves the very object the function names."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lufy.media.transcode import package_hls, probe
from lufy.settings import Settings
from tests.helpers.edge import raw_get, run_function, serve_app
from tests.helpers.edge_cases import KVS, NEW_SECRET, OLD_SECRET, cases
from tests.helpers.media import make_tone


@dataclass(frozen=True)
class Package:
    track_id: uuid.UUID
    root: Path


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    """A real encrypted HLS package (8 s tone: two segments per rendition)."""
    root = tmp_path_factory.mktemp("edge-media")
    track_id = uuid.uuid4()
    tone = make_tone(root / "tone.wav", seconds=8)
    package_hls(tone, root / "hls" / str(track_id), probed=probe(tone), encrypt=True)
    tone.unlink()
    return Package(track_id=track_id, root=root)


@pytest.fixture
def edge(settings: Settings, package: Package) -> Iterator[str]:
    configured = settings.model_copy(update={"MEDIA_ROOT": package.root})
    with serve_app(
        configured,
        JWT_SECRET=NEW_SECRET,
        STREAM_PREVIOUS_SECRETS=OLD_SECRET,
    ) as base:
        yield base


def test_the_function_and_the_local_edge_agree_on_every_case(edge: str, package: Package) -> None:
    table = cases(package.track_id)
    querystrings = {
        c.uri: {k: {"value": v} for k, v in (p.split("=", 1) for p in c.query.split("&"))}
        for c in table
        if c.query
    }
    answers = run_function(KVS, [c.uri for c in table], querystrings)
    for case, answer in zip(table, answers, strict=True):
        path = f"/media{case.uri}" + (f"?{case.query}" if case.query else "")
        status, headers, body = raw_get(edge, path)
        if case.allow is not None:
            origin = f"/hls/{package.track_id}/{case.allow}"
            assert (answer.status, answer.origin_uri) == (200, origin), case.name
            assert answer.querystring == {}, case.name
            assert status == 200, (case.name, body[:300])
            assert body == (package.root / origin.lstrip("/")).read_bytes(), case.name
        else:
            assert (answer.status, answer.detail) == (403, case.refuse), case.name
            assert status == 403, (case.name, status, body[:300])
            assert headers["content-type"].startswith("application/problem+json"), case.name
            assert json.loads(body)["detail"] == case.refuse, case.name


def test_the_free_master_playlist_lists_every_rendition_but_256k(package: Package) -> None:
    folder = package.root / "hls" / str(package.track_id)
    master = (folder / "master.m3u8").read_text()
    free = (folder / "master-free.m3u8").read_text()
    assert "256k/index.m3u8" in master
    assert "256k" not in free
    assert "64k/index.m3u8" in free
    assert "128k/index.m3u8" in free
    assert free.count("#EXT-X-STREAM-INF") == master.count("#EXT-X-STREAM-INF") - 1
