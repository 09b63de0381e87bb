import io

import numpy as np
from PIL import Image

from srgan.batch import Naming, expand_inputs, plan_outputs, shard, upscale_files
from srgan.models import load_model
from srgan.progress import BatchProgress, FrameProgress
from srgan.video import VideoProgress

RNG = np.random.default_rng(0)


def save_rgb(path, height=6, width=8):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    return path


def test_upscale_files_is_the_whole_batch_for_python_users(tmp_path):
    save_rgb(tmp_path / "in" / "a.png")
    save_rgb(tmp_path / "in" / "deep" / "b.jpg")
    messages = []
    bicubic = load_model("bicubic", scale=2)
    result = upscale_files(
        [tmp_path / "in"], model=bicubic, output=tmp_path / "out", recursive=True,
        report=messages.append,
    )
    assert result.ok and messages == []
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in result.written) == [
        "a_bicubic_x2.png",
        "deep/b_bicubic_x2.jpg",
    ]
    again = upscale_files(
        [tmp_path / "in"], model=bicubic, output=tmp_path / "out", recursive=True, report=messages.append
    )
    assert not again.ok and len(again.failed) == 2 and again.written == []  # outputs exist: nothing written
    assert all("exists; pass --overwrite" in message for message in messages)


def test_plan_refuses_an_output_that_is_an_input_even_with_overwrite(tmp_path):
    first, second = save_rgb(tmp_path / "a.png"), save_rgb(tmp_path / "a-big.png")
    found = expand_inputs([first, second])
    plan = plan_outputs(found.sources, Naming(suffix="-big", existing="overwrite"))
    assert [job.source for job in plan.jobs] == [second]
    assert plan.errors == [
        f"{first}: its output {second} is one of the input files and is never overwritten; give another -o or --suffix"
    ]


def test_shards_cover_every_job_once():
    jobs = list(range(7))
    shares = [shard(jobs, rank, 3) for rank in range(3)]
    assert sorted(sum(shares, [])) == jobs and [len(share) for share in shares] == [3, 2, 2]


def test_progress_log_lines_give_done_rate_and_eta():
    now = [0.0]
    stream = io.StringIO()
    progress = BatchProgress(4, mode="log", stream=stream, interval=5.0, clock=lambda: now[0])
    progress.start_image("a.png", 1_000_000)
    now[0] = 2.0
    progress.tiles(1, 2)  # under the interval: no line yet
    assert stream.getvalue() == ""
    now[0] = 10.0
    progress.tiles(2, 2)
    progress.end_image()
    # 1 MP in 10 s; three more images assumed as large: 30 s left
    assert stream.getvalue().splitlines() == ["srgan: 0/4 images, a.png 100%, 0.1 MP/s, ETA 0:00:30"]
    assert progress.status_line() == "srgan: 1/4 images, 0.1 MP/s, ETA 0:00:30"
    for name in "bcd":
        progress.start_image(name, 1_000_000)
        now[0] += 10.0
        progress.end_image()
    progress.close()  # a job under nohup ends with the final count, not the last periodic line
    assert stream.getvalue().splitlines()[-1] == "srgan: 4/4 images, 0.1 MP/s"


def test_video_frames_log_lines_give_done_fps_and_eta():
    now = [0.0]
    stream = io.StringIO()
    progress = FrameProgress("clip.mp4", mode="log", stream=stream, interval=5.0, clock=lambda: now[0])
    now[0] = 1.0
    progress.update(VideoProgress(done=4, total=100, fps=4.0, eta_seconds=24.0))  # under the interval
    assert stream.getvalue() == ""
    now[0] = 6.0
    progress.update(VideoProgress(done=24, total=100, fps=4.0, eta_seconds=19.0))
    now[0] = 7.0
    progress.update(VideoProgress(done=28, total=100, fps=4.0, eta_seconds=18.0))  # 1 s after the last line
    progress.update(VideoProgress(done=100, total=100, fps=4.2, eta_seconds=0.0))
    progress.close()
    assert stream.getvalue().splitlines() == [
        "srgan: clip.mp4 24/100 frames, 4 fps, ETA 0:00:19",
        "srgan: clip.mp4 100/100 frames, 4.2 fps",
    ]
