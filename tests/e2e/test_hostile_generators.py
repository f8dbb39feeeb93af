"""Hostile generators, sandboxed: bounded plain output, shards that are not files of their own."""
import pytest
from conftest import QUICK, add_generator, board, read_results

from benchmark.cli import main


def test_a_crashing_generators_output_is_bounded_and_plain(project):
    add_generator(project, "loud", 'print("\\x1b[2J\\x1b]0;pwned\\x07" + "[/bold]<script>" * 5000)\nraise SystemExit(3)\n')
    assert main(["submit", "loud", "--root", str(project), *QUICK]) == 1
    [row] = read_results(project)
    assert row["status"] == "failed" and len(row["error"]) <= 300 and "\x1b" not in row["error"]
    assert "<script>" not in board(project) and "&lt;script&gt;" in board(project)


@pytest.mark.parametrize("trick", ["hard link", "sparse", "newline name"])
def test_shards_that_are_not_files_of_their_own_are_refused_without_copying(project, trick):
    body = {"hard link": "p = write_valid_shard(args)\nfor i in range(1, 50):\n"
                         "    os.link(p, os.path.join(args.out, f'shard-{i:05d}.safetensors'))\n",
            "sparse": "write_valid_shard(args)\nwith open(os.path.join(args.out, 'shard-00001.safetensors'), 'wb') as f:\n"
                      "    f.truncate(1 << 32)  # 4 GiB claimed, nothing stored\n",
            "newline name": "write_valid_shard(args)\nopen(os.path.join(args.out, 'shard-00005.safetensors\\n'), 'wb')"
                            ".write(b'junk')\n"}[trick]
    add_generator(project, "trick", body)
    code = main(["submit", "trick", "--root", str(project), *QUICK])
    [row] = read_results(project)
    if trick == "newline name":  # not a shard name: ignored, the real shard counts
        assert code == 0 and row["status"] == "ok" and row["images_generated"] == "20"
    else:
        assert code == 1 and row["status"] == "invalid" and "hard link or a sparse file" in row["error"]
