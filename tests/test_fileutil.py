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
