"""ffprobe validation and ffmpeg HLS packaging on generated audio (no committed media)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lufy.media import transcode
from lufy.media.transcode import MediaRejected, package_hls, probe
from tests.helpers.media import make_tone


@pytest.mark.parametrize("suffix", [".mp3", ".wav", ".flac", ".m4a", ".ogg"])
def test_each_accepted_format_probes_as_audio(tmp_path: Path, suffix: str) -> None:
    source = make_tone(tmp_path / f"tone{suffix}", seconds=3)
    probed = probe(source)
    assert abs(probed.duration_s - 3.0) < 0.1
    assert probed.codec


def test_a_tone_becomes_three_renditions_of_six_second_segments_with_a_master(
    tmp_path: Path,
) -> None:
    source = make_tone(tmp_path / "tone.mp3", seconds=14)
    package = package_hls(source, tmp_path / "hls", probed=probe(source), encrypt=False)
    out = tmp_path / "hls"
    master = (out / "master.m3u8").read_text()
    assert [line for line in master.splitlines() if line.endswith(".m3u8")] == [
        "64k/index.m3u8",
        "128k/index.m3u8",
        "256k/index.m3u8",
    ]
    bandwidths = [int(b) for b in re.findall(r"BANDWIDTH=(\d+)", master)]
    assert bandwidths == sorted(bandwidths)
    assert bandwidths[0] < 100_000 < bandwidths[1] < 200_000 < bandwidths[2]
    for name in ("64k", "128k", "256k"):
        playlist = (out / name / "index.m3u8").read_text()
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in playlist
        assert "#EXT-X-TARGETDURATION:6" in playlist
        assert "#EXT-X-ENDLIST" in playlist
        durations = [float(d) for d in re.findall(r"#EXTINF:([\d.]+)", playlist)]
        assert len(durations) == 3
        assert all(d <= 6.1 for d in durations)
    assert abs(package.duration_ms - 14_000) < 200
    assert package.loudness_lufs is not None
    assert -40 < package.loudness_lufs < 0
    assert "key.bin" not in package.files
    assert transcode.publish_order(package.files)[-2:] == ["master-free.m3u8", "master.m3u8"]
    # The free tier's master playlist: the same variants without 256 kbit/s.
    free = (out / "master-free.m3u8").read_text()
    assert [line for line in free.splitlines() if line.endswith(".m3u8")] == [
        "64k/index.m3u8",
        "128k/index.m3u8",
    ]
    lines = master.splitlines()
    at = lines.index("256k/index.m3u8")
    assert free.splitlines() == lines[: at - 1] + lines[at + 1 :]


def test_encryption_writes_a_key_and_names_it_in_every_variant(tmp_path: Path) -> None:
    source = make_tone(tmp_path / "tone.wav", seconds=4)
    package = package_hls(source, tmp_path / "hls", probed=probe(source), encrypt=True)
    assert package.encrypted
    assert (tmp_path / "hls" / "key.bin").stat().st_size == 16
    for name in ("64k", "128k", "256k"):
        playlist = (tmp_path / "hls" / name / "index.m3u8").read_text()
        assert '#EXT-X-KEY:METHOD=AES-128,URI="../key.bin"' in playlist
    assert not list(tmp_path.glob("*.keyinfo"))
    assert not list(tmp_path.glob(".*keyinfo"))


def test_a_text_file_renamed_mp3_is_not_an_audio_file(tmp_path: Path) -> None:
    fake = tmp_path / "song.mp3"
    fake.write_text("this is not music\n" * 100)
    with pytest.raises(MediaRejected, match="not an audio file"):
        probe(fake)


def test_an_image_renamed_mp3_has_no_audio_stream(tmp_path: Path) -> None:
    import subprocess

    image = tmp_path / "cover.png"
    subprocess.run(
        [
            transcode.ffmpeg_binary(),
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=16x16",
            "-frames:v",
            "1",
            str(image),
        ],
        check=True,
    )
    renamed = tmp_path / "cover.mp3"
    image.rename(renamed)
    with pytest.raises(MediaRejected, match="not an audio file"):
        probe(renamed)


def test_a_zero_byte_file_is_empty(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp3"
    empty.touch()
    with pytest.raises(MediaRejected, match="empty"):
        probe(empty)


@pytest.mark.parametrize("suffix", [".mp3", ".flac", ".wav", ".m4a"])
def test_a_file_cut_in_half_is_truncated(tmp_path: Path, suffix: str) -> None:
    full = make_tone(tmp_path / f"full{suffix}", seconds=10)
    data = full.read_bytes()
    half = tmp_path / f"half{suffix}"
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaRejected, match="truncated"):
        package_hls(half, tmp_path / "hls", probed=probe(half))


def test_a_track_longer_than_thirty_minutes_is_refused(tmp_path: Path) -> None:
    import subprocess

    # A silent 31-minute mono 8 kHz file is small and quick to make.
    source = tmp_path / "long.flac"
    subprocess.run(
        [
            transcode.ffmpeg_binary(),
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "anullsrc=r=8000:cl=mono",
            "-t",
            "1860",
            "-c:a",
            "flac",
            str(source),
        ],
        check=True,
    )
    with pytest.raises(MediaRejected, match="31 minutes long; the limit is 30 minutes"):
        probe(source)


def test_the_hls_command_is_one_ffmpeg_run_with_three_aac_renditions(tmp_path: Path) -> None:
    command = transcode.hls_command(tmp_path / "in.wav", tmp_path / "out")
    assert command.count("-i") == 1
    assert command[command.index("-hls_time") + 1] == "6"
    assert [command[command.index(f"-b:a:{i}") + 1] for i in range(3)] == ["64k", "128k", "256k"]


def test_without_ffprobe_ffmpeg_itself_probes(tmp_path: Path) -> None:
    source = make_tone(tmp_path / "tone.flac", seconds=3)
    probed = transcode._probe_with_ffmpeg(source)
    assert abs(probed.duration_s - 3.0) < 0.1
    assert probed.codec == "flac"
    fake = tmp_path / "fake.mp3"
    fake.write_text("not audio at all\n" * 50)
    with pytest.raises(MediaRejected, match="not an audio file"):
        transcode._probe_with_ffmpeg(fake)


def test_work_directories_left_by_killed_workers_are_swept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import time

    from lufy.catalog.processing import sweep_stale_workdirs

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    old = tmp_path / "lufy-transcode-old"
    fresh = tmp_path / "lufy-transcode-fresh"
    other = tmp_path / "someone-elses"
    for d in (old, fresh, other):
        (d / "hls").mkdir(parents=True)
    three_hours_ago = time.time() - 3 * 3600
    os.utime(old, (three_hours_ago, three_hours_ago))
    os.utime(other, (three_hours_ago, three_hours_ago))
    assert sweep_stale_workdirs() == 1
    assert not old.exists()
    assert fresh.exists()
    assert other.exists()
