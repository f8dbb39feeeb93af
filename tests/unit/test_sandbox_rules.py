"""Sandbox rules that need no sandbox: the order of mounts, which shards count at the deadline."""


from benchmark.protocol import load_protocol



def test_private_tmp_is_mounted_before_the_environment(tmp_path):
    """bwrap mounts in order: an environment under /tmp (a checkout in mktemp) must stay visible."""
    from benchmark.sandbox import Mounts, _python_roots, bwrap_command

    cmd = bwrap_command(["python"], Mounts(tmp_path, tmp_path, tmp_path), {}, "cpu", load_protocol().sandbox_limits)
    tmpfs = cmd.index("--tmpfs")
    binds = [i for i, a in enumerate(cmd) if a == "--ro-bind" and cmd[i + 1] in _python_roots()]
    assert cmd[tmpfs + 1] == "/tmp" and binds and all(i > tmpfs for i in binds)


def test_only_shards_renamed_before_the_deadline_count(tmp_path):
    import time

    from benchmark.generation import _complete_shards

    (tmp_path / "shard-00000.safetensors").write_bytes(b"a")
    (tmp_path / "notes.txt").write_bytes(b"not a shard")
    (tmp_path / "sub").mkdir()
    time.sleep(0.05)
    deadline = time.time()
    time.sleep(0.05)
    (tmp_path / ".shard-00001.safetensors.tmp").write_bytes(b"b")
    (tmp_path / ".shard-00001.safetensors.tmp").rename(tmp_path / "shard-00001.safetensors")  # completed late
    kept, late, odd = _complete_shards(tmp_path, deadline, on_tmpfs=False)
    assert [p.name for p, _ in kept] == ["shard-00000.safetensors"] and late == 1 and odd == ()
    assert kept[0][1] <= deadline  # its completion time, kept for the anytime curve
