"""What is checked before a generator starts: bubblewrap present, or a one-line error."""
from conftest import add_generator, read_results, submit


def test_missing_bwrap_is_a_one_line_error_with_the_install_command(project, capsys, monkeypatch):
    add_generator(project, "gen", "write_valid_shard(args)\n")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert submit(project, "gen") == 2
    err = capsys.readouterr().err.strip()
    assert "apt-get install -y bubblewrap" in err and len(err.splitlines()) == 1
    assert read_results(project) == []
