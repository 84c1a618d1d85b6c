"""leaf:path=DIR on small FEMNIST and Shakespeare files in LEAF's own JSON layout, written here."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedgossip.data.sources import SOURCES
from fedgossip.data.sources.leaf_vocab import LETTERS
from fedgossip.errors import DataError

SPEECH = "To be, or not to be, that is the question: Whether 'tis nobler in the mind to suffer. "


def write_leaf(folder, split, users, name="all_data_0.json"):
    """Write one LEAF file: ``users`` maps a user to its (x list, y list)."""
    (folder / split).mkdir(parents=True, exist_ok=True)
    content = {
        "users": list(users),
        "num_samples": [len(x) for x, _ in users.values()],
        "user_data": {user: {"x": x, "y": y} for user, (x, y) in users.items()},
    }
    (folder / split / name).write_text(json.dumps(content))


def shakespeare_user(offset: int, count: int):
    text = SPEECH * 3
    x = [text[offset + i : offset + i + 80] for i in range(count)]
    return x, [text[offset + i + 80] for i in range(count)]


@pytest.fixture
def shakespeare(tmp_path):
    folder = tmp_path / "shakespeare"
    train = {
        "THE_TRAGEDY_OF_HAMLET_HAMLET": shakespeare_user(0, 5),
        "KING_LEAR_EDGAR": shakespeare_user(7, 3),
    }
    write_leaf(folder, "train", train)
    write_leaf(folder, "test", {"THE_TRAGEDY_OF_HAMLET_HAMLET": shakespeare_user(20, 2)})
    return folder


@pytest.fixture
def femnist(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "femnist"

    def user(count):
        return rng.random((count, 784)).round(4).tolist(), rng.integers(0, 62, count).tolist()

    write_leaf(
        folder, "train", {"f0000_14": user(4), "f0001_41": user(2)}, "all_data_0_niid_0_keep_0_train_9.json"
    )
    write_leaf(folder, "train", {"f0002_03": user(3)}, "all_data_1_niid_0_keep_0_train_9.json")
    write_leaf(folder, "test", {"f0000_14": user(2)})
    return folder


def test_shakespeare_becomes_leaf_character_ids(shakespeare):
    data = SOURCES.create(f"leaf:path={shakespeare}").load()
    assert data.x_train.shape == (8, 80) and data.x_test.shape == (2, 80)
    assert len(data.classes) == 80 == len(LETTERS)
    # users sorted by name: KING_LEAR_EDGAR first (3 samples from offset 7)
    first = (SPEECH * 3)[7:87]
    assert "".join(LETTERS[int(i)] for i in data.x_train[0]) == first
    assert LETTERS[data.y_train[0]] == (SPEECH * 3)[87]
    assert data.groups.tolist() == [0, 0, 0, 1, 1, 1, 1, 1]


def test_femnist_users_become_natural_groups(femnist):
    data = SOURCES.create(f"leaf:path={femnist}").load()
    assert data.x_train.shape == (9, 1, 28, 28) and len(data.classes) == 62
    assert np.bincount(data.groups).tolist() == [4, 2, 3]
    raw = json.loads((femnist / "train" / "all_data_1_niid_0_keep_0_train_9.json").read_text())
    np.testing.assert_allclose(data.x_train[6].ravel(), raw["user_data"]["f0002_03"]["x"][0], rtol=1e-6)
    assert data.y_train[6] == raw["user_data"]["f0002_03"]["y"][0]


def test_natural_partition_gives_one_node_per_user(femnist, tmp_path):
    from fedgossip.data.create import PartitionRequest, create_partition
    from fedgossip.data.shards import Partition

    create_partition(PartitionRequest(f"leaf:path={femnist}", "natural", 3, 0), tmp_path / "p")
    partition = Partition(tmp_path / "p")
    # node i holds the i-th user in sorted order: f0000_14 (4), f0001_41 (2), f0002_03 (3)
    assert [len(partition.read_shard(node).y) for node in range(3)] == [4, 2, 3]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        (json.dumps({"users": ["a", "b"], "num_samples": [1], "user_data": {}}), "2 users but 1 num_samples"),
        (
            json.dumps(
                {"users": ["a"], "num_samples": [2], "user_data": {"a": {"x": ["x" * 80] * 2, "y": ["a"]}}}
            ),
            "has 2 x but 1 y",
        ),
        (
            json.dumps(
                {"users": ["a"], "num_samples": [3], "user_data": {"a": {"x": ["x" * 80], "y": ["a"]}}}
            ),
            "num_samples 3",
        ),
        (
            json.dumps({"users": ["a"], "num_samples": [1], "user_data": {"a": {"x": [[1, 2]], "y": [0]}}}),
            "80-character",
        ),
        (
            json.dumps(
                {"users": ["a"], "num_samples": [1], "user_data": {"a": {"x": ["é" * 80], "y": ["a"]}}}
            ),
            "vocabulary",
        ),
    ],
)
def test_malformed_files_are_one_error_naming_the_file(tmp_path, shakespeare, content, message):
    (shakespeare / "train" / "bad.json").write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message) as caught:
        SOURCES.create(f"leaf:path={shakespeare}").load()
    assert "bad.json" in str(caught.value)


def test_a_folder_without_test_files_says_what_is_expected(tmp_path):
    write_leaf(tmp_path, "train", {"u": shakespeare_user(0, 1)})
    with pytest.raises(DataError, match=r"no test files in .*test; expected LEAF's DIR/train/\*.json"):
        SOURCES.create(f"leaf:path={tmp_path}").load()


def test_femnist_pixels_outside_the_unit_range_are_refused(femnist):
    path = femnist / "train" / "all_data_1_niid_0_keep_0_train_9.json"
    content = json.loads(path.read_text())
    content["user_data"]["f0002_03"]["x"][1][5] = 255  # an unscaled grey level
    path.write_text(json.dumps(content))
    with pytest.raises(
        DataError, match=r"all_data_1_niid_0_keep_0_train_9\.json: FEMNIST pixels must lie in"
    ):
        SOURCES.create(f"leaf:path={femnist}").load()


def test_partition_create_on_a_bad_leaf_folder_is_one_error_line_and_no_output(tmp_path):
    from click.testing import CliRunner

    from fedgossip.cli.main import cli

    out = tmp_path / "p"
    command = [
        "partition",
        "create",
        f"leaf:path={tmp_path / 'none'}",
        "--scheme",
        "natural",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(cli, [*command, "--nodes", "2"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: no train files in"), result.output
    assert not out.exists()
