"""One contract, three adapters: local filesystem, S3 (moto server over HTTP), in-memory fake."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from lufy.media.storage import (
    BlobNotFoundError,
    BlobStorage,
    InvalidKeyError,
    LocalStorage,
    MemoryStorage,
    S3Storage,
)
from tests.helpers.media import MotoS3, moto_s3  # noqa: F401


@pytest.fixture(params=["local", "s3", "memory"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStorage:
    if request.param == "local":
        return LocalStorage(tmp_path / "media")
    if request.param == "memory":
        return MemoryStorage()
    moto: MotoS3 = request.getfixturevalue("moto_s3")
    return moto.storage()


def test_every_adapter_satisfies_the_storage_protocol(storage: BlobStorage) -> None:
    assert isinstance(storage, BlobStorage)


def test_bytes_written_are_read_back_with_their_content_type(storage: BlobStorage) -> None:
    storage.put_bytes("hls/t1/master.m3u8", b"#EXTM3U\n", content_type="application/x-mpegurl")
    assert storage.get_bytes("hls/t1/master.m3u8") == b"#EXTM3U\n"
    info = storage.stat("hls/t1/master.m3u8")
    assert info is not None
    assert info.size == 8
    assert info.content_type == "application/x-mpegurl"


def test_a_streamed_write_is_invisible_until_committed(storage: BlobStorage) -> None:
    writer = storage.open_write("uploads/a/source.mp3", content_type="audio/mpeg")
    for i in range(5):
        writer.write(bytes([i]) * 100_000)
    assert storage.stat("uploads/a/source.mp3") is None
    writer.commit()
    info = storage.stat("uploads/a/source.mp3")
    assert info is not None
    assert info.size == 500_000
    assert writer.bytes_written == 500_000
    assert b"".join(storage.iter_chunks("uploads/a/source.mp3", 65536)) == b"".join(
        bytes([i]) * 100_000 for i in range(5)
    )


def test_an_aborted_write_leaves_nothing_behind(storage: BlobStorage) -> None:
    writer = storage.open_write("uploads/b/source.wav")
    writer.write(b"partial")
    writer.abort()
    assert storage.stat("uploads/b/source.wav") is None
    assert storage.list("uploads/") == []


def test_put_file_and_download_to_round_trip(storage: BlobStorage, tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(b"x" * 3_000_000)
    storage.put_file("hls/t2/128k/seg_00000.ts", source, content_type="video/mp2t")
    target = tmp_path / "out.bin"
    storage.download_to("hls/t2/128k/seg_00000.ts", target)
    assert target.read_bytes() == source.read_bytes()


def test_missing_objects_are_reported_as_missing(storage: BlobStorage, tmp_path: Path) -> None:
    assert storage.stat("hls/nothing/master.m3u8") is None
    with pytest.raises(BlobNotFoundError):
        storage.get_bytes("hls/nothing/master.m3u8")
    with pytest.raises(BlobNotFoundError):
        storage.download_to("hls/nothing/master.m3u8", tmp_path / "x")


def test_a_prefix_is_listed_and_deleted_without_touching_its_neighbours(
    storage: BlobStorage,
) -> None:
    for key in ("hls/t3/master.m3u8", "hls/t3/64k/seg_00000.ts", "hls/t30/master.m3u8"):
        storage.put_bytes(key, b"1")
    assert storage.list("hls/t3/") == ["hls/t3/64k/seg_00000.ts", "hls/t3/master.m3u8"]
    assert storage.delete_prefix("hls/t3/") == 2
    assert storage.list("hls/t3/") == []
    assert storage.get_bytes("hls/t30/master.m3u8") == b"1"
    storage.delete("hls/t30/master.m3u8")
    storage.delete("hls/t30/master.m3u8")  # deleting twice is fine
    assert storage.stat("hls/t30/master.m3u8") is None


@pytest.mark.parametrize(
    "key",
    ["../etc/passwd", "hls/../../x", "/abs/path", "hls//x", "hls/./x", "hls/x\\..\\y", "", "a/.."],
)
def test_keys_that_could_escape_the_namespace_are_refused(storage: BlobStorage, key: str) -> None:
    with pytest.raises(InvalidKeyError):
        storage.put_bytes(key, b"no")
    with pytest.raises(InvalidKeyError):
        storage.stat(key)


def test_local_and_memory_storage_offer_no_direct_upload_target(tmp_path: Path) -> None:
    for storage in (LocalStorage(tmp_path), MemoryStorage()):
        assert (
            storage.upload_target(
                "uploads/x/source.mp3", content_type="audio/mpeg", size_bytes=10, expires_in=60
            )
            is None
        )


def test_an_s3_presigned_put_accepts_the_declared_file(s3_storage_fixture: S3Storage) -> None:
    target = s3_storage_fixture.upload_target(
        "uploads/p/source.mp3", content_type="audio/mpeg", size_bytes=11, expires_in=300
    )
    assert target is not None
    assert target.method == "PUT"
    assert target.headers == {"Content-Type": "audio/mpeg", "Content-Length": "11"}
    # Both headers are part of the signature: the URL names them as signed headers.
    assert "content-length" in target.url.lower()
    assert "content-type" in target.url.lower()
    response = httpx.put(target.url, content=b"hello world", headers=target.headers)
    assert response.status_code == 200, response.text
    info = s3_storage_fixture.stat("uploads/p/source.mp3")
    assert info is not None
    assert info.size == 11
    assert info.content_type == "audio/mpeg"


@pytest.fixture
def s3_storage_fixture(moto_s3: MotoS3) -> S3Storage:  # noqa: F811
    return moto_s3.storage()


def test_local_storage_writes_stay_inside_its_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    storage.put_bytes("hls/t/master.m3u8", b"ok")
    assert (tmp_path / "root" / "hls" / "t" / "master.m3u8").read_bytes() == b"ok"
    assert not (tmp_path / "hls").exists()


def test_an_unreachable_s3_endpoint_is_service_unavailable_not_a_crash() -> None:
    import boto3
    from botocore.config import Config

    from lufy.errors import ServiceUnavailableError
    from tests.helpers.media import free_port

    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    storage = S3Storage("nowhere", client=client)
    with pytest.raises(ServiceUnavailableError):
        storage.stat("uploads/x/source.mp3")
    with pytest.raises(ServiceUnavailableError):
        storage.get_bytes("hls/x/master.m3u8")
