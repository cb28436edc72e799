"""Uploads that are playlists, manifests or scripts must not choose how ffmpeg reads them.

Left to itself, ffmpeg picks a demuxer from the file's content, and the HLS, DASH and concat
demuxers open the files and URLs the upload names: an artist could transcode another artist's
unpublished source, or make the worker fetch from the network. Every hostile file here names
two tripwires: a FIFO in another "upload" (opening it for reading is seen by a writer thread
blocked on it) and an HTTP server on a loopback port (counting connections). Each is uploaded
as every accepted type and must end as a failed track whose reason starts "not an audio
file", with both tripwires untouched.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lufy.bootstrap import Container
from lufy.catalog.processing import process_track
from lufy.catalog.schemas import UploadCreate
from lufy.media import transcode
from lufy.media.transcode import ACCEPTED_TYPES, MediaRejected
from lufy.web.auth import Principal
from tests.helpers.accounts import create_user


class FifoTripwire:
    """A FIFO whose writer blocks until someone opens it for reading."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self.opened_by_someone_else = False
        self._releasing = False
        self._thread = threading.Thread(target=self._wait_for_reader, daemon=True)
        self._thread.start()

    def _wait_for_reader(self) -> None:
        fd = os.open(self.path, os.O_WRONLY)  # blocks until a reader opens the FIFO
        if not self._releasing:
            self.opened_by_someone_else = True
        os.close(fd)

    def close(self) -> None:
        self._releasing = True
        # Let the writer go (if nobody else did): open the read end ourselves.
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self._thread.join(timeout=10)
        os.close(fd)


class HttpTripwire:
    """A TCP listener on a loopback port that counts the connections it is offered."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self._socket.settimeout(0.2)
        self.port = int(self._socket.getsockname()[1])
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._socket.close()


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[FifoTripwire]:
    # Where another artist's source would be: the storage layout is predictable.
    victim = tmp_path / "media" / "uploads" / str(uuid.uuid4())
    victim.mkdir(parents=True)
    wire = FifoTripwire(victim / "source.m4a")
    try:
        yield wire
    finally:
        wire.close()


@pytest.fixture
def http() -> Iterator[HttpTripwire]:
    wire = HttpTripwire()
    try:
        yield wire
    finally:
        wire.close()


def hls_playlist(local: Path, url: str) -> bytes:
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:3.0,\n{local}\n#EXTINF:3.0,\n{url}/segment.ts\n#EXT-X-ENDLIST\n"
    ).encode()


def dash_manifest(local: Path, url: str) -> bytes:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" minBufferTime="PT1S"
     mediaPresentationDuration="PT6S" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">
  <Period start="PT0S">
    <AdaptationSet mimeType="audio/mp4" contentType="audio">
      <Representation id="a" bandwidth="128000" codecs="mp4a.40.2" audioSamplingRate="44100">
        <BaseURL>{local}</BaseURL>
      </Representation>
      <Representation id="b" bandwidth="64000" codecs="mp4a.40.2" audioSamplingRate="44100">
        <BaseURL>{url}/audio.m4a</BaseURL>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
""".encode()


def concat_script(local: Path, url: str) -> bytes:
    return f"file '{local}'\nfile '{url}/audio.mp3'\n".encode()


def ffconcat_file(local: Path, url: str) -> bytes:
    return f"ffconcat version 1.0\nfile {local}\nfile {url}/audio.mp3\n".encode()


HOSTILE = {
    "hls": hls_playlist,
    "dash": dash_manifest,
    "concat": concat_script,
    "ffconcat": ffconcat_file,
}
# Every (content type, extension) pair an upload may declare.
DECLARATIONS = [(ct, ext) for ct, exts in ACCEPTED_TYPES.items() for ext in exts]


def test_the_tripwire_sees_what_an_unguarded_ffprobe_does(tmp_path: Path) -> None:
    # The premise, checked on this machine's ffprobe: left to choose its demuxer (as before
    # the fix), it follows an HLS playlist or a DASH manifest to another local file.
    binary = transcode.ffprobe_binary()
    assert binary is not None
    for kind in ("hls", "dash"):
        (tmp_path / kind).mkdir()
        wire = FifoTripwire(tmp_path / kind / "source.m4a")
        try:
            path = tmp_path / f"{kind}.mp3"
            path.write_bytes(HOSTILE[kind](wire.path, "http://127.0.0.1:9"))
            subprocess.run(
                [binary, "-v", "quiet", "-show_format", str(path)],
                capture_output=True,
                timeout=60,
                check=False,
            )
        finally:
            wire.close()
        assert wire.opened_by_someone_else, kind


@pytest.mark.parametrize("kind", sorted(HOSTILE))
async def test_a_playlist_manifest_or_script_uploaded_as_any_audio_type_reads_nothing_else(
    kind: str,
    container: Container,
    tmp_path: Path,
    fifo: FifoTripwire,
    http: HttpTripwire,
) -> None:
    user = await create_user(container, role="artist")
    artist = Principal(user_id=user.id, role="artist", session_id=user.session_id)
    service = container.catalog
    data = HOSTILE[kind](fifo.path, http.url)
    outcomes: dict[tuple[str, str], tuple[str, str | None]] = {}
    for content_type, extension in DECLARATIONS:
        ticket = await service.request_upload(
            artist,
            UploadCreate(
                filename=f"song{extension}",
                content_type=content_type,
                size_bytes=len(data),
                title=f"{kind} as {content_type}",
            ),
        )
        service.storage.put_bytes(
            f"uploads/{ticket.track_id}/source{extension}", data, content_type=content_type
        )
        await service.complete_upload(artist, ticket.upload_id)
        status = await process_track(service, ticket.track_id, f"job-{ticket.track_id}")
        track = await service.get_track(artist, ticket.track_id)
        outcomes[(content_type, extension)] = (status, track.failure_reason)

    assert len(outcomes) == len(DECLARATIONS)
    for declared, (status, reason) in outcomes.items():
        assert status == "failed", declared
        assert reason is not None
        assert reason.startswith("not an audio file"), (declared, reason)
    assert not fifo.opened_by_someone_else
    assert http.connections == 0


# Files that start with the right signature for their declared type and then hold a
# playlist: they pass the signature check, so the forced demuxer and the protocol
# whitelist are what stop them.
def _disguised(kind: str, demuxer: str, local: Path, url: str) -> bytes:
    import struct

    body = HOSTILE[kind](local, url)
    id3 = b"ID3\x03\x00\x00\x00\x00\x00\x00"
    heads = {
        "mp3": id3 + b"\xff\xfb",
        "aac": id3 + b"\xff\xf1",
        "flac": b"fLaC",
        "ogg": b"OggS",
        "wav": b"RIFF" + struct.pack("<I", 4) + b"WAVE",
        "mov": struct.pack(">I", 16) + b"ftypM4A \x00\x00\x00\x00",
    }
    return heads[demuxer] + body


_SUFFIX = {"mp3": ".mp3", "aac": ".aac", "flac": ".flac", "ogg": ".ogg", "wav": ".wav"}
_SUFFIX["mov"] = ".m4a"


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_disguised_playlist_is_read_only_as_its_declared_format_and_opens_nothing(
    kind: str, tmp_path: Path, fifo: FifoTripwire, http: HttpTripwire
) -> None:
    for demuxer, suffix in _SUFFIX.items():
        path = tmp_path / f"{kind}-{demuxer}{suffix}"
        path.write_bytes(_disguised(kind, demuxer, fifo.path, http.url))
        with pytest.raises(MediaRejected):
            transcode.probe(path)
        # The packaging command reads the input the same way, whatever the probe said.
        out = tmp_path / f"out-{kind}-{demuxer}"
        out.mkdir()
        subprocess.run(
            transcode.hls_command(path, out, demuxer=demuxer),
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert (
            not (out / "128k" / "index.m3u8").exists()
            or "#EXTINF" not in (out / "128k" / "index.m3u8").read_text()
        )
    assert not fifo.opened_by_someone_else
    assert http.connections == 0


def test_an_id3_tagged_hls_playlist_named_mp3_is_refused_before_ffmpeg_reads_it(
    tmp_path: Path, fifo: FifoTripwire, http: HttpTripwire
) -> None:
    # ffprobe skips an ID3 tag before guessing the format, so this is an HLS playlist to it.
    path = tmp_path / "tagged.mp3"
    path.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + hls_playlist(fifo.path, http.url))
    with pytest.raises(MediaRejected, match=r"^not an audio file"):
        transcode.probe(path, content_type="audio/mpeg")
    with pytest.raises(MediaRejected, match=r"^not an audio file"):
        transcode._ffprobe(path, "mp3")
    assert not fifo.opened_by_someone_else
    assert http.connections == 0


def test_an_extension_the_declared_type_does_not_allow_is_not_read_at_all(
    tmp_path: Path,
) -> None:
    path = tmp_path / "song.m3u8"
    path.write_bytes(b"#EXTM3U\n")
    with pytest.raises(MediaRejected, match=r"^not an audio file Lufy accepts"):
        transcode.probe(path)
    mp3 = tmp_path / "song.mp3"
    mp3.write_bytes(b"ID3")
    with pytest.raises(MediaRejected, match=r"^not an audio file Lufy accepts"):
        transcode.probe(mp3, content_type="audio/flac")


@pytest.mark.parametrize("suffix", [".mp3", ".wav", ".flac", ".m4a", ".ogg"])
def test_real_audio_of_each_type_still_passes_the_signature_check(
    tmp_path: Path, suffix: str
) -> None:
    from tests.helpers.media import make_tone

    source = make_tone(tmp_path / f"tone{suffix}", seconds=2)
    probed = transcode.probe(source)
    assert probed.demuxer == transcode.input_format(suffix)
    assert probed.sample_rate == 44100


def test_an_mp3_padded_with_zeros_before_its_first_frame_is_still_audio(tmp_path: Path) -> None:
    from tests.helpers.media import make_tone

    tone = make_tone(tmp_path / "tone.mp3", seconds=2)
    padded = tmp_path / "padded.mp3"
    padded.write_bytes(b"\x00" * 512 + tone.read_bytes())
    assert transcode.probe(padded, content_type="audio/mpeg").duration_s > 1.5
