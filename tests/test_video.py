"""srgan.video: tiny videos with an audio track, built here, round-tripped through the bicubic model."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from srgan.errors import SrganError

av = pytest.importorskip("av")

from srgan.inference import Upscaler  # noqa: E402
from srgan.models import load_model  # noqa: E402
from srgan.video import VideoOptions, is_video_path, upscale_video  # noqa: E402

WIDTH, HEIGHT = 32, 24
AUDIO_RATE = 8000


def make_video(
    path, *, frames=10, pts=None, time_base=Fraction(1, 25), audio=True, subtitles=(), size=(WIDTH, HEIGHT)
):
    """An H.264 clip whose frames differ (a moving bar), with a mono AAC sine track as long as the video
    and optionally SubRip subtitles ((start ms, text) pairs)."""
    width, height = size
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = video.codec_context.time_base = time_base
        sound = out.add_stream("aac", rate=AUDIO_RATE, layout="mono") if audio else None
        text = out.add_mux_stream("subrip") if subtitles else None
        for index in range(frames):
            pixels = np.zeros((height, width, 3), np.uint8)
            pixels[:, : (index * 3) % width] = 200
            pixels[..., 2] = index * 20
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index if pts is None else pts[index]
            frame.time_base = time_base
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if sound is not None:
            samples = AUDIO_RATE * frames // 25
            wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / AUDIO_RATE)).astype(np.float32)[None]
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(wave[:, start : start + 1024].copy(), format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = AUDIO_RATE, start, Fraction(1, AUDIO_RATE)
                for packet in sound.encode(chunk):
                    out.mux(packet)
            for packet in sound.encode(None):
                out.mux(packet)
        for start, line in subtitles:
            packet = av.Packet(line.encode())
            packet.stream, packet.time_base = text, Fraction(1, 1000)
            packet.pts = packet.dts = start
            packet.duration = 80
            out.mux(packet)
    return path


def subtitle_packets(path):
    with av.open(str(path)) as container:
        if not container.streams.subtitles:
            return []
        stream = container.streams.subtitles[0]
        return [(p.pts * stream.time_base, bytes(p)) for p in container.demux(stream) if p.dts is not None]


def probe(path):
    """((width, height), video pts, video time base, audio packets as (pts, duration, bytes), audio end in s)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = [frame.pts for frame in container.decode(video=0)]
        size = (stream.codec_context.width, stream.codec_context.height)
        time_base = stream.time_base
    audio, seconds = [], 0.0
    with av.open(str(path)) as container:
        if container.streams.audio:
            sound = container.streams.audio[0]
            audio = [(p.pts, p.duration, bytes(p)) for p in container.demux(sound) if p.dts is not None]
            seconds = float(max(pts + duration for pts, duration, _ in audio) * sound.time_base)
    return size, pts, time_base, audio, seconds


@pytest.fixture(scope="module")
def upscaler():
    return Upscaler(load_model("bicubic"), device="cpu")


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_round_trip_keeps_frames_timestamps_and_audio(tmp_path, upscaler, suffix):
    source = make_video(tmp_path / f"clip{suffix}")
    target = tmp_path / f"clip_x4{suffix}"
    seen = []
    result = upscale_video(upscaler, source, target, progress=seen.append)

    size, pts, time_base, audio, seconds = probe(target)
    in_size, in_pts, in_time_base, in_audio, in_seconds = probe(source)
    assert size == (WIDTH * 4, HEIGHT * 4) == (result.width, result.height)
    assert result.frames == len(pts) == len(in_pts) == 10
    assert [p * time_base for p in pts] == [p * in_time_base for p in in_pts]
    assert audio == in_audio and len(audio) >= 3  # packets copied unchanged, not re-encoded
    assert seconds == pytest.approx(in_seconds) and 0.39 < seconds < 0.53  # 0.4 s of sound in 1024-sample packets
    assert result.copied_streams == 1 and result.codec == "libx264"
    assert [p.done for p in seen][-1] == 10 and seen[-1].total == 10 and seen[-1].eta_seconds == 0
    assert all(p.fps > 0 for p in seen)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_subtitles_are_copied_and_left_out_where_the_container_has_no_place(tmp_path, upscaler):
    source = make_video(tmp_path / "clip.mkv", subtitles=[(0, "hello"), (200, "world")])
    result = upscale_video(upscaler, source, tmp_path / "big.mkv")
    assert result.copied_streams == 2 and result.dropped == ()
    assert subtitle_packets(tmp_path / "big.mkv") == [(0, b"hello"), (Fraction(1, 5), b"world")]
    assert probe(tmp_path / "big.mkv")[3] == probe(source)[3]
    with pytest.warns(UserWarning, match=r"cannot hold stream 2 \(subtitle, srt\).*write to \.mkv"):
        as_mp4 = upscale_video(upscaler, source, tmp_path / "big.mp4")
    assert as_mp4.copied_streams == 1 and as_mp4.dropped == ("stream 2 (subtitle, srt)",)
    assert len(probe(tmp_path / "big.mp4")[1]) == 10


def test_upscaled_frames_are_the_models_output(tmp_path, upscaler):
    source = make_video(tmp_path / "clip.mp4", audio=False)
    target = tmp_path / "big.mkv"
    upscale_video(upscaler, source, target, options=VideoOptions(crf=0, pixel_format="yuv444p"))
    import torch

    with av.open(str(source)) as small, av.open(str(target)) as big:
        for low, high in zip(small.decode(video=0), big.decode(video=0), strict=True):
            frame = torch.from_numpy(low.to_ndarray(format="rgb24")).permute(2, 0, 1).float()[None] / 255
            expected = upscaler.upscale_tensor(frame)[0].permute(1, 2, 0).numpy() * 255
            error = np.abs(high.to_ndarray(format="rgb24").astype(np.float32) - expected)
            assert error.mean() < 3  # yuv444 at crf 0: only colour conversion rounding


def test_variable_frame_rate_timestamps_survive(tmp_path, upscaler):
    pts = [0, 40, 80, 200, 240, 400, 433, 466, 600, 700]  # milliseconds, irregular gaps
    source = make_video(tmp_path / "vfr.mkv", pts=pts, time_base=Fraction(1, 1000))
    for target in (tmp_path / "vfr_x4.mkv", tmp_path / "vfr_x4.mp4"):
        upscale_video(upscaler, source, target)
        _, out_pts, time_base, audio, _ = probe(target)
        assert [p * time_base for p in out_pts] == [Fraction(p, 1000) for p in pts]
        assert len(audio) >= 3


def test_odd_sizes_are_made_even_for_yuv420p(tmp_path):
    upscaler = Upscaler(load_model("bicubic", scale=3), device="cpu")
    source = make_video(tmp_path / "odd.mp4", size=(22, 18), audio=False, frames=8)
    result = upscale_video(upscaler, source, tmp_path / "odd_x3.mp4", options=VideoOptions(outscale=2.5))
    size, pts, *_ = probe(tmp_path / "odd_x3.mp4")
    assert size == (result.width, result.height) == (54, 44)  # 55x45 cut to even sides
    assert len(pts) == 8


def test_gif_and_webm_outputs(tmp_path, upscaler):
    source = make_video(tmp_path / "clip.mp4", frames=8)
    with pytest.warns(UserWarning, match="cannot hold stream 1 \\(audio, aac\\)"):
        gif = upscale_video(upscaler, source, tmp_path / "clip.gif")
    assert gif.dropped == ("stream 1 (audio, aac)",) and gif.copied_streams == 0
    assert gif.codec == "gif" and probe(tmp_path / "clip.gif")[0] == (128, 96)
    with pytest.warns(UserWarning, match="webm file cannot hold stream 1"):  # webm takes Opus/Vorbis, not AAC
        webm = upscale_video(upscaler, source, tmp_path / "clip.webm", options=VideoOptions(crf=40))
    assert webm.codec == "libvpx-vp9" and webm.copied_streams == 0
    assert len(probe(tmp_path / "clip.webm")[1]) == 8
    assert len(probe(tmp_path / "clip.gif")[1]) == 8
    again = upscale_video(upscaler, tmp_path / "clip.gif", tmp_path / "clip_gif.mp4")
    assert again.frames == 8 and (again.width, again.height) == (512, 384)


def test_frames_folder_both_ways(tmp_path, upscaler):
    source = make_video(tmp_path / "clip.mp4", frames=9)
    frames = upscale_video(upscaler, source, tmp_path / "frames")
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert frames.dropped == ("stream 1 (audio, aac)",)
    assert frames.frames == 9 and names[0] == "frame_000001.png" and len(names) == 9
    from PIL import Image

    assert Image.open(tmp_path / "frames" / names[0]).size == (128, 96)
    video = upscale_video(upscaler, tmp_path / "frames", tmp_path / "back.mp4", options=VideoOptions(fps=12))
    size, pts, time_base, audio, _ = probe(tmp_path / "back.mp4")
    assert size == (512, 384) and video.frames == len(pts) == 9 and audio == []
    assert [p * time_base for p in pts] == [Fraction(i, 12) for i in range(9)]
    with pytest.raises(SrganError, match="not an empty folder"):
        upscale_video(upscaler, source, tmp_path / "frames")


def test_damaged_video_is_one_error_and_leaves_nothing(tmp_path, upscaler):
    good = make_video(tmp_path / "good.mp4").read_bytes()
    (tmp_path / "noise.mp4").write_bytes(b"\0\1junk" * 500)
    (tmp_path / "cut.mp4").write_bytes(good[: len(good) // 3])  # moov atom at the end is gone
    out = tmp_path / "out"
    out.mkdir()
    for name in ("noise.mp4", "cut.mp4"):
        with pytest.raises(SrganError, match=name):
            upscale_video(upscaler, tmp_path / name, out / f"x_{name}")
    with pytest.raises(SrganError, match="no such file"):
        upscale_video(upscaler, tmp_path / "missing.mp4", out / "x.mp4")
    assert list(out.iterdir()) == []


def test_unknown_codec_and_pixel_format_are_named(tmp_path, upscaler):
    source = make_video(tmp_path / "clip.mp4", audio=False, frames=8)
    with pytest.raises(SrganError, match="codec 'nosuch'"):
        upscale_video(upscaler, source, tmp_path / "a.mp4", options=VideoOptions(codec="nosuch"))
    with pytest.raises(SrganError, match="pixel format rgb8: libx264"):
        upscale_video(upscaler, source, tmp_path / "a.mp4", options=VideoOptions(pixel_format="rgb8"))
    with pytest.raises(SrganError, match="crf 99"):
        VideoOptions(crf=99)
    assert not (tmp_path / "a.mp4").exists()


def test_an_engine_failure_midway_leaves_no_partial_output(tmp_path, upscaler):
    source = make_video(tmp_path / "clip.mp4", frames=12)
    calls = []

    class Failing:
        model, scale = upscaler.model, upscaler.scale

        def upscale_tensor(self, x):
            calls.append(len(x))
            if len(calls) == 2:
                raise SrganError("engine: failed on purpose")
            return upscaler.upscale_tensor(x)

    with pytest.raises(SrganError, match="on purpose"):
        upscale_video(Failing(), source, tmp_path / "out.mp4", options=VideoOptions(frame_batch=2, queue_frames=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_is_video_path(tmp_path):
    from PIL import Image

    assert is_video_path("a/b.MP4") and is_video_path("c.webm") and is_video_path("d.gif")
    assert not is_video_path("e.png") and not is_video_path("frames")
    still, moving = Image.new("RGB", (4, 4), "red"), Image.new("RGB", (4, 4), "blue")
    still.save(tmp_path / "still.gif")
    still.save(tmp_path / "moving.gif", save_all=True, append_images=[moving])
    assert not is_video_path(tmp_path / "still.gif") and is_video_path(tmp_path / "moving.gif")


def test_cli_upscales_videos_beside_images_and_frames_folders(tmp_path, capsys):
    from PIL import Image

    from srgan.cli import main

    make_video(tmp_path / "clip.mp4", frames=8)
    Image.new("RGB", (8, 6), "red").save(tmp_path / "still.png")
    out = tmp_path / "out"
    bicubic = ["--model", "bicubic", "--scale", "2"]
    assert main(["upscale", str(tmp_path / "clip.mp4"), str(tmp_path / "still.png"), "-o", str(out), *bicubic]) == 0
    assert "upscaled 1 image(s) and 1 video(s)" in capsys.readouterr().out
    assert probe(out / "clip_bicubic_x2.mp4")[0] == (64, 48) and Image.open(out / "still_bicubic_x2.png").size == (16, 12)
    # an existing video output is an error, like an image's, unless kept (--skip-existing) or replaced
    assert main(["upscale", str(tmp_path / "clip.mp4"), "-o", str(out), *bicubic]) == 1
    assert "clip_bicubic_x2.mp4 exists; pass --overwrite" in capsys.readouterr().err
    assert main(["upscale", str(tmp_path / "clip.mp4"), "-o", str(out), "--skip-existing", *bicubic]) == 0
    assert "upscaled 0 image(s) with bicubic x2 (torch on cpu); 1 skipped, 0 failed" in capsys.readouterr().out

    # stderr is no terminal here: the frames are logged, the last line when the video is done
    assert main(["upscale", str(tmp_path / "clip.mp4"), "-o", str(out), "--frames", *bicubic]) == 0
    assert "srgan: clip.mp4 8/8 frames, " in capsys.readouterr().err
    assert len(list((out / "clip_bicubic_x2").iterdir())) == 8
    back = tmp_path / "back.mkv"
    assert main(["upscale", str(out / "clip_bicubic_x2"), "-o", str(back), "--fps", "8", "--crf", "30", *bicubic]) == 0
    size, pts, time_base, *_ = probe(back)
    assert size == (128, 96) and [p * time_base for p in pts] == [Fraction(i, 8) for i in range(8)]

    (tmp_path / "broken.mkv").write_bytes(b"not a video at all" * 50)
    assert main(["upscale", str(tmp_path / "broken.mkv"), "-o", str(out), *bicubic]) == 1
    assert "broken.mkv: not a readable video" in capsys.readouterr().err
    assert not (out / "broken_bicubic_x2.mkv").exists()
