"""ffprobe validation and ffmpeg HLS packaging.

One ffmpeg run decodes the source once and produces three AAC renditions (64, 128 and
256 kbit/s) as 6-second MPEG-TS segments with VOD playlists and a master playlist, optionally
AES-128 encrypted, while an `ebur128` branch of the same filter graph measures integrated
loudness: no second pass over the audio.

The file never chooses how it is read. ffmpeg picks a demuxer from the content when none is
named, and some demuxers (HLS and DASH playlists, concat scripts) open other files and URLs: an
upload could make the worker read another artist's source or fetch from the network. So the
demuxer is forced from the declared type through an allow-list (`input_format`), the file's own
signature must be that format's (`_check_signature`), ffmpeg may open only local files
(`-protocol_whitelist file`; none of the allowed demuxers opens a second one), and the probed
format must be the declared one.

Problems with the *file* raise `MediaRejected` with a reason a person can act on; the caller
records it as a failed track. Anything else (ffmpeg missing, disk full) is an ordinary error
and the job is retried.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from lufy.media.edge import FREE_MASTER, MASTER, PREMIUM_ONLY

__all__ = [
    "ACCEPTED_TYPES",
    "MAX_DURATION_S",
    "RENDITIONS",
    "SEGMENT_SECONDS",
    "HlsPackage",
    "MediaRejected",
    "Probe",
    "content_type_for",
    "ffmpeg_binary",
    "ffprobe_binary",
    "free_master",
    "hls_command",
    "input_format",
    "package_hls",
    "probe",
    "publish_order",
]

RENDITIONS = (64, 128, 256)  # kbit/s
SEGMENT_SECONDS = 6
MAX_DURATION_S = 30 * 60
KEY_NAME = "key.bin"
_PROBE_TIMEOUT = 60
_LOUDNESS = re.compile(r"Integrated loudness:\s*\n\s*I:\s*(-?[\d.]+|-inf)\s*LUFS")
_EXTINF = re.compile(r"^#EXTINF:([\d.]+)", re.MULTILINE)
# Decoder messages that mean the data ends early or is damaged.
_DAMAGE = re.compile(
    r"Error while decoding|Invalid data found|decode_frame\(\) failed|Invalid PCM packet|"
    r"filesize and duration do not match|Packet corrupt|partial file",
)


class MediaRejected(Exception):
    """The uploaded file cannot become a track; `reason` is shown to the artist."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Declared content type -> the file extensions it may carry.
ACCEPTED_TYPES: dict[str, tuple[str, ...]] = {
    "audio/mpeg": (".mp3",),
    "audio/mp3": (".mp3",),
    "audio/wav": (".wav",),
    "audio/x-wav": (".wav",),
    "audio/wave": (".wav",),
    "audio/vnd.wave": (".wav",),
    "audio/flac": (".flac",),
    "audio/x-flac": (".flac",),
    "audio/aac": (".aac", ".m4a"),
    "audio/mp4": (".m4a", ".aac", ".mp4"),
    "audio/x-m4a": (".m4a",),
    "audio/m4a": (".m4a",),
    "audio/ogg": (".ogg", ".oga", ".opus"),
    "audio/opus": (".opus", ".ogg"),
}
# File extension -> the one ffmpeg demuxer that reads it. Upload requests already checked the
# extension against the declared content type (`catalog.schemas.ALLOWED_TYPES`).
_DEMUXERS: dict[str, str] = {
    ".mp3": "mp3",
    ".wav": "wav",
    ".flac": "flac",
    ".aac": "aac",
    ".m4a": "mov",
    ".mp4": "mov",
    ".ogg": "ogg",
    ".oga": "ogg",
    ".opus": "ogg",
}
# What each forced demuxer reports as `format_name`.
_FORMAT_NAMES: dict[str, str] = {
    "mp3": "mp3",
    "wav": "wav",
    "flac": "flac",
    "aac": "aac",
    "mov": "mov,mp4,m4a,3gp,3g2,mj2",
    "ogg": "ogg",
}
_KIND: dict[str, str] = {
    "mp3": "an MP3",
    "wav": "a WAV",
    "flac": "a FLAC",
    "aac": "an AAC (ADTS)",
    "mov": "an M4A/MP4",
    "ogg": "an Ogg",
}
# Top-level atoms an MP4/M4A file may start with.
_MP4_ATOMS = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"}
# ffmpeg options put before every `-i` of an upload.
_INPUT_GUARD = ("-protocol_whitelist", "file")
# Enough to see past the ID3v2 tag of most files (cover art makes some tags larger).
_SNIFF_BYTES = 256 * 1024


def input_format(suffix: str, content_type: str | None = None) -> str:
    """The ffmpeg demuxer for an upload named `*suffix` declared as `content_type`.

    Raises MediaRejected when the pair is not one Lufy accepts: nothing else is ever read.
    """
    suffix = suffix.lower()
    demuxer = _DEMUXERS.get(suffix)
    if content_type is not None and suffix not in ACCEPTED_TYPES.get(content_type, ()):
        demuxer = None
    if demuxer is None:
        declared = content_type or "no content type"
        raise MediaRejected(
            f"not an audio file Lufy accepts: {suffix or 'no extension'} declared as "
            f"{declared}; upload mp3, wav, flac, aac/m4a or ogg audio"
        )
    return demuxer


@dataclass(frozen=True)
class Probe:
    format_name: str
    codec: str
    duration_s: float
    sample_rate: int | None
    channels: int | None
    # The demuxer the file was read with (forced; see `input_format`).
    demuxer: str = ""


@dataclass(frozen=True)
class HlsPackage:
    directory: Path
    duration_ms: int
    loudness_lufs: float | None
    encrypted: bool
    files: list[str] = field(default_factory=list)


@cache
def ffmpeg_binary() -> str:
    """The system's ffmpeg, else the one bundled with imageio-ffmpeg."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


@cache
def ffprobe_binary() -> str | None:
    """The system's ffprobe (imageio-ffmpeg ships none; then ffmpeg itself probes)."""
    return shutil.which("ffprobe")


def probe(path: Path, *, content_type: str | None = None) -> Probe:
    """Validate that `path` is a single decodable audio file of a sane length, in the format
    its extension and declared `content_type` name (the extension alone when None)."""
    demuxer = input_format(path.suffix, content_type)
    if path.stat().st_size == 0:
        raise MediaRejected("the file is empty (0 bytes)")
    _check_signature(path, demuxer)
    _check_riff(path)
    if ffprobe_binary() is None:
        return _probe_with_ffmpeg(path, demuxer)
    return _ffprobe(path, demuxer)


def _ffprobe(path: Path, demuxer: str) -> Probe:
    """ffprobe `path` read with `demuxer`, opening no other file and no URL."""
    binary = ffprobe_binary()
    assert binary is not None
    result = subprocess.run(
        [
            binary,
            *("-v", "error", "-print_format", "json", "-show_format", "-show_streams"),
            *_INPUT_GUARD,
            *("-f", demuxer, "-i", str(path)),
        ],
        capture_output=True,
        timeout=_PROBE_TIMEOUT,
        check=False,
    )
    stderr = result.stderr.decode(errors="replace")
    if result.returncode != 0:
        raise MediaRejected(_reason_from_probe_error(stderr))
    info = json.loads(result.stdout or b"{}")
    streams = info.get("streams", [])
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if not audio:
        if streams:
            raise MediaRejected("not an audio file: it contains no audio stream")
        raise MediaRejected("not an audio file")
    stream = audio[0]
    fmt = info.get("format", {})
    if str(fmt.get("format_name", "")) != _FORMAT_NAMES[demuxer]:
        raise MediaRejected(f"not an audio file: it was not read as {_KIND[demuxer]} file")
    if not _int(stream.get("sample_rate")):
        # What a lenient demuxer reports for bytes that hold no audio frame at all.
        raise MediaRejected(
            f"not an audio file: no audio could be read from it as {_KIND[demuxer]} file"
        )
    duration = _float(stream.get("duration")) or _float(fmt.get("duration"))
    if duration is None or duration <= 0:
        raise MediaRejected("the audio has no measurable duration; the file may be damaged")
    _check_duration(duration)
    return Probe(
        format_name=str(fmt.get("format_name", "")),
        codec=str(stream.get("codec_name", "")),
        duration_s=duration,
        sample_rate=_int(stream.get("sample_rate")),
        channels=_int(stream.get("channels")),
        demuxer=demuxer,
    )


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload,no-any-return]
    except (TypeError, ValueError):
        return None


def _check_signature(path: Path, demuxer: str) -> None:
    """The file must start the way its declared format does: a playlist, manifest or script
    named `x.mp3` is refused here, before any decoder sees it."""
    with path.open("rb") as f:
        head = f.read(_SNIFF_BYTES)
    if not _signature_matches(head, demuxer):
        raise MediaRejected(
            f"not an audio file: it does not start like {_KIND[demuxer]} file; "
            "upload the audio file itself, not a playlist, manifest or other document"
        )


def _after_id3(head: bytes) -> bytes | None:
    """What follows ID3v2 tags at the start of `head` (None when it ends inside one)."""
    head = head.lstrip(b"\x00")  # some encoders pad before the first tag or frame
    while head.startswith(b"ID3") and len(head) >= 10:
        size = 0
        for byte in head[6:10]:
            if byte & 0x80:
                return b""  # not a syncsafe size: not a tag
            size = (size << 7) | byte
        end = 10 + size + (10 if head[5] & 0x10 else 0)
        if end + 4 > len(head):
            return None
        # Encoders may pad between the tag and the first frame.
        head = head[end:].lstrip(b"\x00")
    return head


def _signature_matches(head: bytes, demuxer: str) -> bool:
    if demuxer in ("mp3", "aac", "flac"):
        body = _after_id3(head)
        if body is None:
            # A tag longer than what was read: trust the tag, the forced demuxer does the rest.
            return True
        sync = len(body) >= 2 and body[0] == 0xFF
        if demuxer == "mp3":
            return sync and body[1] & 0xE0 == 0xE0  # MPEG audio frame sync: 11 bits set
        if demuxer == "aac":
            return sync and body[1] & 0xF6 == 0xF0  # ADTS: 12-bit sync, layer 00
        return body.startswith(b"fLaC")
    if demuxer == "wav":
        return head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64") and head[8:12] == b"WAVE"
    if demuxer == "ogg":
        return head.startswith(b"OggS")
    if demuxer == "mov":
        return head[4:8] in _MP4_ATOMS
    return False


def _check_duration(duration: float) -> None:
    if duration > MAX_DURATION_S:
        minutes = duration / 60
        raise MediaRejected(
            f"the track is {minutes:.0f} minutes long; the limit is {MAX_DURATION_S // 60} minutes"
        )


def _check_riff(path: Path) -> None:
    # WAV states its length in the header; a shorter file was cut off in transfer.
    with path.open("rb") as f:
        head = f.read(12)
    if len(head) == 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        declared = int.from_bytes(head[4:8], "little") + 8
        actual = path.stat().st_size
        if declared != 0xFFFFFFFF + 8 and actual < declared:
            raise MediaRejected(
                f"the file is truncated: its header announces {declared} bytes "
                f"but it has {actual}; upload the complete file"
            )


def _reason_from_probe_error(stderr: str) -> str:
    text = stderr.lower()
    if "moov atom not found" in text:
        return "the file is truncated: its index (moov atom) is missing; upload the complete file"
    if "end of file" in text or "truncat" in text:
        return "the file is truncated; upload the complete file"
    return "not an audio file: it could not be read as audio in a supported format"


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


_FFMPEG_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


def _probe_with_ffmpeg(path: Path, demuxer: str | None = None) -> Probe:
    demuxer = demuxer or input_format(path.suffix)
    result = subprocess.run(
        [
            ffmpeg_binary(),
            "-hide_banner",
            "-nostdin",
            *_INPUT_GUARD,
            "-f",
            demuxer,
            "-i",
            str(path),
        ],
        capture_output=True,
        timeout=_PROBE_TIMEOUT,
        check=False,
    )
    stderr = result.stderr.decode(errors="replace")
    if "Invalid data found" in stderr or "Stream #" not in stderr:
        raise MediaRejected(_reason_from_probe_error(stderr))
    if "Audio:" not in stderr:
        raise MediaRejected("not an audio file: it contains no audio stream")
    match = _FFMPEG_DURATION.search(stderr)
    if match is None:
        raise MediaRejected("the audio has no measurable duration; the file may be damaged")
    hours, minutes, seconds = match.groups()
    duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    _check_duration(duration)
    codec = re.search(r"Audio: (\w+)", stderr)
    return Probe(
        format_name="",
        codec=codec.group(1) if codec else "",
        duration_s=duration,
        sample_rate=None,
        channels=None,
        demuxer=demuxer,
    )


def hls_command(
    source: Path,
    out_dir: Path,
    *,
    key_info: Path | None = None,
    ffmpeg: str | None = None,
    demuxer: str | None = None,
) -> list[str]:
    """The one ffmpeg command that packages `source` into `out_dir` (also used by the bench).

    The input is read with `demuxer` (by default the one `source`'s extension names), never
    with one the file's content would pick."""
    demuxer = demuxer or input_format(source.suffix)
    splits = "".join(f"[a{i}]" for i in range(len(RENDITIONS)))
    graph = (
        "[0:a:0]aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo,"
        f"asplit={len(RENDITIONS) + 1}{splits}[m];[m]ebur128=framelog=verbose[mo]"
    )
    command = [
        ffmpeg or ffmpeg_binary(),
        *("-hide_banner", "-nostdin", "-nostats", "-y", *_INPUT_GUARD),
        *("-f", demuxer, "-i", str(source)),
        *("-filter_complex", graph),
    ]
    for i in range(len(RENDITIONS)):
        command += ["-map", f"[a{i}]"]
    command += ["-c:a", "aac"]
    for i, kbps in enumerate(RENDITIONS):
        command += [f"-b:a:{i}", f"{kbps}k"]
    command += [
        *("-f", "hls", "-hls_time", str(SEGMENT_SECONDS), "-hls_playlist_type", "vod"),
        *("-hls_segment_type", "mpegts", "-hls_flags", "independent_segments"),
        *("-hls_segment_filename", str(out_dir / "%v" / "seg_%05d.ts")),
        *("-master_pl_name", MASTER),
        "-var_stream_map",
        " ".join(f"a:{i},name:{kbps}k" for i, kbps in enumerate(RENDITIONS)),
    ]
    if key_info is not None:
        command += ["-hls_key_info_file", str(key_info)]
    command += [str(out_dir / "%v" / "index.m3u8"), "-map", "[mo]", "-f", "null", "-"]
    return command


def package_hls(
    source: Path,
    out_dir: Path,
    *,
    probed: Probe,
    encrypt: bool = False,
    timeout: float | None = None,
) -> HlsPackage:
    """Transcode `source` into an HLS package in the (empty) directory `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    key_info: Path | None = None
    if encrypt:
        key_path = out_dir / KEY_NAME
        key_path.write_bytes(secrets.token_bytes(16))
        key_info = out_dir.parent / f".{out_dir.name}.keyinfo"
        # Variant playlists sit one level below the key: `../key.bin`.
        key_info.write_text(f"../{KEY_NAME}\n{key_path}\n{secrets.token_hex(16)}\n")
    command = hls_command(source, out_dir, key_info=key_info, demuxer=probed.demuxer or None)
    # Within the job time limit (30 min); ffmpeg runs 10-20x real time even on a busy 2-core VM.
    budget = timeout if timeout is not None else min(max(120.0, probed.duration_s * 2), 1500.0)
    try:
        result = subprocess.run(command, capture_output=True, timeout=budget, check=False)
    except subprocess.TimeoutExpired:
        # Bounded on purpose: a file that stalls the decoder must not retry forever.
        raise MediaRejected(
            "decoding the file took far longer than its length; it may be damaged: "
            "export it again and upload the new file"
        ) from None
    finally:
        if key_info is not None:
            key_info.unlink(missing_ok=True)
    stderr = result.stderr.decode(errors="replace")
    if result.returncode != 0:
        tail = stderr.strip().splitlines()[-1:] or ["unknown error"]
        if _DAMAGE.search(stderr):
            raise MediaRejected("the audio could not be decoded: the file is truncated or damaged")
        raise RuntimeError(f"ffmpeg failed ({result.returncode}): {tail[0]}")
    decoded = _decoded_seconds(out_dir / f"{RENDITIONS[0]}k" / "index.m3u8")
    declared = probed.duration_s
    if decoded < declared - max(1.0, 0.02 * declared):
        raise MediaRejected(
            f"the file is truncated: it ends after {decoded:.1f} s of the {declared:.1f} s "
            "its header announces; upload the complete file"
        )
    if _DAMAGE.search(stderr):
        raise MediaRejected(
            "the file is truncated or damaged: the audio could not be decoded to its end"
        )
    if decoded <= 0:
        raise MediaRejected("the file contains no decodable audio")
    # The summary is printed last; earlier matches are per-frame or initial values.
    found = _LOUDNESS.findall(stderr)
    loudness = float(found[-1]) if found and found[-1] != "-inf" else None
    write_free_master(out_dir)
    files = sorted(
        p.relative_to(out_dir).as_posix()
        for p in out_dir.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )
    return HlsPackage(
        directory=out_dir,
        duration_ms=round(decoded * 1000),
        loudness_lufs=loudness,
        encrypted=encrypt,
        files=files,
    )


def free_master(master: str) -> str:
    """`master` without the variants of the premium-only renditions (`256k/…`): what a
    free-tier token is served for `master.m3u8` (the edge maps the name)."""
    lines = master.splitlines()
    kept: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#EXT-X-STREAM-INF") and i + 1 < len(lines):
            uri = lines[i + 1].strip()
            if uri.split("/", 1)[0] not in PREMIUM_ONLY:
                kept += [line, lines[i + 1]]
            i += 2
            continue
        kept.append(line)
        i += 1
    return "\n".join(kept) + "\n"


def write_free_master(out_dir: Path) -> None:
    """Write `master-free.m3u8` next to `master.m3u8` (static, like every playlist)."""
    master = out_dir / MASTER
    (out_dir / FREE_MASTER).write_text(free_master(master.read_text()))


def _decoded_seconds(playlist: Path) -> float:
    if not playlist.exists():
        return 0.0
    return sum(float(m) for m in _EXTINF.findall(playlist.read_text()))


def publish_order(files: list[str]) -> list[str]:
    """Segments and keys first, variant playlists next, the masters last: a reader that sees
    the master playlist sees a complete package."""

    def rank(name: str) -> tuple[int, str]:
        if name == MASTER:
            return (3, name)
        if name == FREE_MASTER:
            return (2, name)
        if name.endswith(".m3u8"):
            return (1, name)
        return (0, name)

    return sorted(files, key=rank)


def content_type_for(name: str) -> str:
    if name.endswith(".m3u8"):
        return "application/vnd.apple.mpegurl"
    if name.endswith(".ts"):
        return "video/mp2t"
    return "application/octet-stream"
