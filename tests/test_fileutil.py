import pytest

from srgan.fileutil import atomic_write, atomic_write_bytes


def test_atomic_write_replaces_target_only_when_complete(tmp_path):
    target = tmp_path / "out" / "result.bin"
    atomic_write_bytes(target, b"first")
    assert target.read_bytes() == b"first"

    with pytest.raises(RuntimeError):
        with atomic_write(target) as temp_path:
            temp_path.write_bytes(b"half")
            raise RuntimeError("crash mid-write")

    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.bin"]


def test_atomic_write_gives_outputs_the_usual_permissions(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "image.png", b"data")
        with atomic_write(tmp_path / "model.bin") as temp_path:
            # a writer that replaces the file with an owner-only one, as safetensors does
            temp_path.unlink()
            temp_path.touch(mode=0o600)
    finally:
        os.umask(mask)
    assert (tmp_path / "image.png").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "model.bin").stat().st_mode & 0o777 == 0o644


def test_remove_stale_partials_clears_only_dead_writers_files(tmp_path):
    import os
    import subprocess
    import sys
    import time

    from srgan.fileutil import remove_stale_partials

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # exited: its pid names no running process (reuse within the test is unlikely)
    killed = tmp_path / f".a.png.{dead_pid}-abcd1234.partial"
    live = tmp_path / f".b.png.{os.getpid()}-abcd1234.partial"
    old_unnamed = tmp_path / ".c.png.abcd1234.partial"
    fresh_unnamed = tmp_path / ".d.png.abcd1234.partial"
    user_file = tmp_path / "notes.partial"
    for path in (killed, live, old_unnamed, fresh_unnamed, user_file):
        path.write_bytes(b"x")
    hour_ago = time.time() - 7200
    os.utime(old_unnamed, (hour_ago, hour_ago))
    os.utime(user_file, (hour_ago, hour_ago))

    assert sorted(remove_stale_partials(tmp_path)) == sorted([killed, old_unnamed])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (live, fresh_unnamed, user_file))
    assert remove_stale_partials(tmp_path / "missing") == []


def test_atomic_write_temp_name_is_one_the_cleanup_recognises(tmp_path):
    import os

    from srgan.fileutil import _PARTIAL_NAME

    with atomic_write(tmp_path / "img.png") as temp_path:
        match = _PARTIAL_NAME.match(temp_path.name)
        assert match and match["target"] == "img.png" and int(match["pid"]) == os.getpid()
