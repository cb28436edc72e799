"""ffmpeg HLS packaging: one run, three AAC renditions, loudness measured on the way.

One ffmpeg run decodes the source once and produces three AAC renditions (64, 128 and
256 kbit/s) as 6-second MPEG-TS segments with VOD playlists and a master playlist, optionally
AES-128 encrypted, while an `ebur128` branch of the same filter graph measures integrated
loudness: no second pass over the audio. The source is read with the demuxer `probe` chose.
"""

from __future__ import annotations

import re
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from lufy.media.edge import FREE_MASTER, MASTER, PREMIUM_ONLY
from lufy.media.formats import MediaRejected, input_format
from lufy.media.probe import INPUT_GUARD, Probe, ffmpeg_binary

__all__ = [
    "KEY_NAME",
    "RENDITIONS",
    "SEGMENT_SECONDS",
    "HlsPackage",
    "content_type_for",
    "free_master",
    "hls_command",
    "package_hls",
    "publish_order",
    "write_free_master",
]

RENDITIONS = (64, 128, 256)  # kbit/s
SEGMENT_SECONDS = 6
KEY_NAME = "key.bin"
_LOUDNESS = re.compile(r"Integrated loudness:\s*\n\s*I:\s*(-?[\d.]+|-inf)\s*LUFS")
_EXTINF = re.compile(r"^#EXTINF:([\d.]+)", re.MULTILINE)
# Decoder messages that mean the data ends early or is damaged.
_DAMAGE = re.compile(
    r"Error while decoding|Invalid data found|decode_frame\(\) failed|Invalid PCM packet|"
    r"filesize and duration do not match|Packet corrupt|partial file",
)


@dataclass(frozen=True)
class HlsPackage:
    directory: Path
    duration_ms: int
    loudness_lufs: float | None
    encrypted: bool
    files: list[str] = field(default_factory=list)


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
        *("-hide_banner", "-nostdin", "-nostats", "-y", *INPUT_GUARD),
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
    key_info = _write_key(out_dir) if encrypt else None
    command = hls_command(source, out_dir, key_info=key_info, demuxer=probed.demuxer or None)
    # Within the job time limit (30 min); ffmpeg runs 10-20x real time even on a busy 2-core VM.
    budget = timeout if timeout is not None else min(max(120.0, probed.duration_s * 2), 1500.0)
    try:
        stderr = _run_ffmpeg(command, budget)
    finally:
        if key_info is not None:
            key_info.unlink(missing_ok=True)
    decoded = _decoded_to_end(out_dir, probed, stderr)
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


def _write_key(out_dir: Path) -> Path:
    """A fresh AES-128 key in `out_dir` and ffmpeg's key-info file for it (returned; hidden,
    next to `out_dir`, deleted by the caller once ffmpeg is done)."""
    key_path = out_dir / KEY_NAME
    key_path.write_bytes(secrets.token_bytes(16))
    key_info = out_dir.parent / f".{out_dir.name}.keyinfo"
    # Variant playlists sit one level below the key: `../key.bin`.
    key_info.write_text(f"../{KEY_NAME}\n{key_path}\n{secrets.token_hex(16)}\n")
    return key_info


def _run_ffmpeg(command: list[str], budget: float) -> str:
    """Run the packaging `command` within `budget` seconds; its stderr (the loudness log)."""
    try:
        result = subprocess.run(command, capture_output=True, timeout=budget, check=False)
    except subprocess.TimeoutExpired:
        # Bounded on purpose: a file that stalls the decoder must not retry forever.
        raise MediaRejected(
            "decoding the file took far longer than its length; it may be damaged: "
            "export it again and upload the new file"
        ) from None
    stderr = result.stderr.decode(errors="replace")
    if result.returncode != 0:
        tail = stderr.strip().splitlines()[-1:] or ["unknown error"]
        if _DAMAGE.search(stderr):
            raise MediaRejected("the audio could not be decoded: the file is truncated or damaged")
        raise RuntimeError(f"ffmpeg failed ({result.returncode}): {tail[0]}")
    return stderr


def _decoded_to_end(out_dir: Path, probed: Probe, stderr: str) -> float:
    """The seconds of audio packaged, after checking the file was decoded to its end."""
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
    return decoded


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
