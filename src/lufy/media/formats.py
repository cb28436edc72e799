"""Which uploads Lufy reads, and with which ffmpeg demuxer: the allow-lists and the sniffing.

The file never chooses how it is read: the demuxer is forced from the declared type and the
extension through an allow-list (`input_format`), and the file's own first bytes must be that
format's (`check_signature`), so a playlist, manifest or script named `x.mp3` never reaches a
decoder. See `lufy.media.transcode` for the whole pipeline.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ACCEPTED_TYPES",
    "FORMAT_NAMES",
    "KIND",
    "MediaRejected",
    "check_riff",
    "check_signature",
    "input_format",
]


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
FORMAT_NAMES: dict[str, str] = {
    "mp3": "mp3",
    "wav": "wav",
    "flac": "flac",
    "aac": "aac",
    "mov": "mov,mp4,m4a,3gp,3g2,mj2",
    "ogg": "ogg",
}
KIND: dict[str, str] = {
    "mp3": "an MP3",
    "wav": "a WAV",
    "flac": "a FLAC",
    "aac": "an AAC (ADTS)",
    "mov": "an M4A/MP4",
    "ogg": "an Ogg",
}
# Top-level atoms an MP4/M4A file may start with.
_MP4_ATOMS = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"}
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


def check_signature(path: Path, demuxer: str) -> None:
    """The file must start the way its declared format does: a playlist, manifest or script
    named `x.mp3` is refused here, before any decoder sees it."""
    with path.open("rb") as f:
        head = f.read(_SNIFF_BYTES)
    if not _signature_matches(head, demuxer):
        raise MediaRejected(
            f"not an audio file: it does not start like {KIND[demuxer]} file; "
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


def check_riff(path: Path) -> None:
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
