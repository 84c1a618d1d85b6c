"""Graphs read from edge-list files: the format, folding, and errors that name file and line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fedgossip.errors import TopologyError
from fedgossip.topology import make_topology


def test_edge_list_reads_comments_blank_lines_and_folds_duplicates(tmp_path):
    path = tmp_path / "square.txt"
    path.write_text("# a square\n0 1\n1 2  # trailing comment\n\n2 3\n3 0\n1 0\n")
    square = make_topology(f"file:path={path}", 4, seed=0)
    assert square.edges == ((0, 1), (0, 3), (1, 2), (2, 3))
    assert square.name == f"file:path={path}"


def test_edge_list_with_two_components_is_refused(tmp_path):
    path = tmp_path / "two.txt"
    path.write_text("0 1\n1 2\n3 4\n4 5\n")
    with pytest.raises(
        TopologyError, match=r"disconnected: 2 components \(nodes 3, 4, 5 cannot reach node 0\)"
    ):
        make_topology(f"file:path={path}", 6, seed=0)


def test_edge_list_problems_name_the_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("0 1\n1 x\n2 2\n3\n0 1 5\n-1 2\n")
    with pytest.raises(TopologyError) as caught:
        make_topology(f"file:path={path}", 4, seed=0)
    message = str(caught.value)
    assert f"{path}:2: node ids must be integers" in message
    assert f"{path}:3: self loop 2 2" in message
    assert f"{path}:4: expected two node ids" in message
    assert f"{path}:5: expected two node ids" in message
    assert f"{path}:6: node ids start at 0" in message


def test_edge_list_node_out_of_range_names_the_line(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("0 1\n1 2\n# next one is too large\n2 7\n")
    with pytest.raises(TopologyError) as caught:
        make_topology(f"file:path={path}", 3, seed=0)
    assert f"{path}:4: node 7 does not exist on 3 nodes (ids are 0..2); fix the file" in str(caught.value)


def test_a_long_list_of_problems_is_cut_and_counted(tmp_path):
    path = tmp_path / "loops.txt"
    path.write_text("".join(f"{i} {i}\n" for i in range(25)))
    with pytest.raises(TopologyError) as caught:
        make_topology(f"file:path={path}", 25, seed=0)
    message = str(caught.value)
    assert f"{path}:10: self loop" in message and f"{path}:11:" not in message
    assert message.endswith("and 15 more")


def test_missing_edge_list_names_the_path(tmp_path):
    with pytest.raises(TopologyError, match=r"cannot read edge list .*nowhere\.txt"):
        make_topology(f"file:path={tmp_path / 'nowhere.txt'}", 3, seed=0)


def test_a_file_that_is_no_edge_list_is_quoted_one_line_at_most(tmp_path):
    # file:path= may name any file the user can read: its content does not belong in the error
    path = tmp_path / "passwd"
    path.write_text("".join(f"user{i}:x:secret-{i}:/bin/sh\n" for i in range(30)))  # short: quoted whole
    with pytest.raises(TopologyError) as caught:
        make_topology(f"file:path={path}", 4, seed=0)
    message = str(caught.value)
    assert message.count("secret-") == 1 and "secret-0" in message
    assert f"{path}:1: expected two node ids" in message and f"{path}:2: expected" in message
    assert message.endswith("and 20 more") and "\n" not in message


def test_a_quoted_line_is_shortened(tmp_path):
    path = tmp_path / "one-long-line.txt"
    path.write_text("0 " + "1" * 100_000 + " 2\n")
    with pytest.raises(TopologyError, match="expected two node ids") as caught:
        make_topology(f"file:path={path}", 4, seed=0)
    assert len(str(caught.value)) < 300


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (os.mkfifo, "is not a regular file (it is a FIFO)"),  # reading it would wait forever
        (lambda path: path.symlink_to("/dev/zero"), "is not a regular file (it is a character device)"),
        (lambda path: path.write_bytes(b"0 1\n\xff\xfe 2\n"), "not UTF-8 text"),
    ],
)
def test_an_edge_list_that_is_not_a_text_file_is_one_error(tmp_path, make, message):
    path = tmp_path / "edges"
    make(path)
    command = [sys.executable, "-m", "fedgossip", "topology", "show", f"file:path={path}", "-n", "3"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith(f"error: cannot read edge list {path}: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
