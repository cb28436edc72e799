"""Validating an upload with ffprobe (or ffmpeg alone when there is no ffprobe).

`probe` refuses a file unless it is a single decodable audio stream of a sane length, read with
the demuxer its declared type names (`lufy.media.formats`), opening no other file and no URL.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from lufy.media.formats import (
    FORMAT_NAMES,
    KIND,
    MediaRejected,
    check_riff,
    check_signature,
    input_format,
)

__all__ = [
    "INPUT_GUARD",
    "MAX_DURATION_S",
    "Probe",
    "ffmpeg_binary",
    "ffprobe_binary",
    "probe",
]

MAX_DURATION_S = 30 * 60
_PROBE_TIMEOUT = 60
# ffmpeg options put before every `-i` of an upload.
INPUT_GUARD = ("-protocol_whitelist", "file")
_FFMPEG_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


@dataclass(frozen=True)
class Probe:
    format_name: str
    codec: str
    duration_s: float
    sample_rate: int | None
    channels: int | None
    # The demuxer the file was read with (forced; see `input_format`).
    demuxer: str = ""


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
    check_signature(path, demuxer)
    check_riff(path)
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
            *INPUT_GUARD,
            *("-f", demuxer, "-i", str(path)),
        ],
        capture_output=True,
        timeout=_PROBE_TIMEOUT,
        check=False,
    )
    stderr = result.stderr.decode(errors="replace")
    if result.returncode != 0:
        raise MediaRejected(_reason_from_probe_error(stderr))
    return _probe_from_json(json.loads(result.stdout or b"{}"), demuxer)


def _probe_from_json(info: dict[str, Any], demuxer: str) -> Probe:
    """The Probe for ffprobe's JSON report `info`, or MediaRejected with the reason."""
    streams = info.get("streams", [])
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if not audio:
        if streams:
            raise MediaRejected("not an audio file: it contains no audio stream")
        raise MediaRejected("not an audio file")
    stream = audio[0]
    fmt = info.get("format", {})
    if str(fmt.get("format_name", "")) != FORMAT_NAMES[demuxer]:
        raise MediaRejected(f"not an audio file: it was not read as {KIND[demuxer]} file")
    if not _int(stream.get("sample_rate")):
        # What a lenient demuxer reports for bytes that hold no audio frame at all.
        raise MediaRejected(
            f"not an audio file: no audio could be read from it as {KIND[demuxer]} file"
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


def _check_duration(duration: float) -> None:
    if duration > MAX_DURATION_S:
        minutes = duration / 60
        raise MediaRejected(
            f"the track is {minutes:.0f} minutes long; the limit is {MAX_DURATION_S // 60} minutes"
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


def _probe_with_ffmpeg(path: Path, demuxer: str | None = None) -> Probe:
    demuxer = demuxer or input_format(path.suffix)
    result = subprocess.run(
        [
            ffmpeg_binary(),
            "-hide_banner",
            "-nostdin",
            *INPUT_GUARD,
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
