"""ffprobe validation and ffmpeg HLS packaging.

One ffmpeg run decodes the source once and produces three AAC renditions (64, 128 and
256 kbit/s) as 6-second MPEG-TS segments with VOD playlists and a master playlist, optionally
AES-128 encrypted, while an `ebur128` branch of the same filter graph measures integrated
loudness: no second pass over the audio.

The file never chooses how it is read. ffmpeg picks a demuxer from the content when none is
named, and some demuxers (HLS and DASH playlists, concat scripts) open other files and URLs: an
upload could make the worker read another artist's source or fetch from the network. So the
demuxer is forced from the declared type through an allow-list (`input_format`), the file's own
signature must be that format's (`check_signature`), ffmpeg may open only local files
(`-protocol_whitelist file`; none of the allowed demuxers opens a second one), and the probed
format must be the declared one.

Problems with the *file* raise `MediaRejected` with a reason a person can act on; the caller
records it as a failed track. Anything else (ffmpeg missing, disk full) is an ordinary error
and the job is retried.

The pipeline is split by step: `formats` (what is accepted and how it is read), `probe`
(validation with ffprobe) and `hls` (packaging). This module is the import path the rest of
Lufy uses for all three.
"""

from __future__ import annotations

from lufy.media.formats import ACCEPTED_TYPES, MediaRejected, input_format
from lufy.media.hls import (
    KEY_NAME,
    RENDITIONS,
    SEGMENT_SECONDS,
    HlsPackage,
    content_type_for,
    free_master,
    hls_command,
    package_hls,
    publish_order,
    write_free_master,
)
from lufy.media.probe import (
    MAX_DURATION_S,
    Probe,
    _ffprobe,
    _probe_with_ffmpeg,
    ffmpeg_binary,
    ffprobe_binary,
    probe,
)

__all__ = [
    "ACCEPTED_TYPES",
    "KEY_NAME",
    "MAX_DURATION_S",
    "RENDITIONS",
    "SEGMENT_SECONDS",
    "HlsPackage",
    "MediaRejected",
    "Probe",
    "_ffprobe",
    "_probe_with_ffmpeg",
    "content_type_for",
    "ffmpeg_binary",
    "ffprobe_binary",
    "free_master",
    "hls_command",
    "input_format",
    "package_hls",
    "probe",
    "publish_order",
    "write_free_master",
]
