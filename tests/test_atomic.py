"""corpus/atomic.py, the one way the project writes a whole file: the target appears only complete, a failure
inside the block leaves neither the target nor a temporary file, and an existing target is replaced only on
success (a rerun that crashes keeps the previous good file)."""

import pytest

from corpus import atomic


def test_success_replaces_failure_leaves_nothing(tmp_path):
    target = tmp_path / "stats.json"
    atomic.write_text(target, "first")
    assert target.read_text() == "first"
    with pytest.raises(RuntimeError), atomic.atomic_open(target, "w") as f:
        f.write("half of a new ver")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "first" and sorted(p.name for p in tmp_path.iterdir()) == ["stats.json"]
    with atomic.atomic_open(tmp_path / "ckpt.pt", fsync=True) as f:
        f.write(b"\x00" * 10)
        assert not (tmp_path / "ckpt.pt").exists()  # not visible before the block ends
    atomic.write_bytes(target, b"second")
    assert target.read_bytes() == b"second" and len(list(tmp_path.iterdir())) == 2
