"""leaf:path=DIR on small Sent140 files in LEAF's JSON layout: hashed bags of words, users as groups."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
from click.testing import CliRunner

import fedgossip.run.records
from fedgossip.cli.main import cli
from fedgossip.data.sources import SOURCES
from fedgossip.errors import DataError
from tests.data.test_sources_leaf import write_leaf

DATE = "Mon Apr 06 22:19:45 PDT 2009"


def tweet(user: str, text: str, tweet_id: int = 1467810369) -> list[str]:
    """One sample x as LEAF's sent140 scripts write it: the Sentiment140 row without its polarity."""
    return [str(tweet_id), DATE, "NO_QUERY", user, text]


def column(word: str) -> int:
    # the documented hash, CRC-32 of the lower-cased word; Python's salted str hash would differ
    # from it (and between ranks), so the column checks below also catch that mistake
    return zlib.crc32(word.encode("utf-8")) % 1024


@pytest.fixture
def sent140(tmp_path):
    folder = tmp_path / "sent140"
    train = {
        "zoe_k": ([tweet("zoe_k", "Good good day!"), tweet("zoe_k", "so tired")], [1, 0]),
        "_TheSpecialOne_": ([tweet("_TheSpecialOne_", "Awww, that's a bummer.")], [0]),
    }
    write_leaf(folder, "train", train)
    write_leaf(folder, "test", {"zoe_k": ([tweet("zoe_k", "good")], [1])})
    return folder


def test_tweets_become_word_counts_of_their_text_only(sent140):
    data = SOURCES.create(f"leaf:path={sent140}").load()
    assert data.x_train.shape == (3, 1024) and data.x_test.shape == (1, 1024)
    assert data.classes == ("negative", "positive")
    # users sorted by name: _TheSpecialOne_ (1 tweet) then zoe_k (2 tweets)
    assert data.groups.tolist() == [0, 1, 1] and data.y_train.tolist() == [0, 1, 0]
    good_day = data.x_train[1]
    assert good_day.sum() == 4  # Good, good, day, ! : the id, date, query and user are not words
    assert good_day[column("good")] == 2 and good_day[column("day")] == 1 and good_day[column("!")] == 1
    # LEAF's split_line keeps apostrophes inside words: "that's" is one word, "Awww," two tokens
    bummer = data.x_train[0]
    assert bummer.sum() == 6 and bummer[column("that's")] >= 1
    assert data.x_test[0][column("good")] == 1 and data.x_test[0].sum() == 1


@pytest.mark.parametrize(
    ("samples", "labels", "message"),
    [
        ([tweet("u", "fine")], [4], r"labels y must be 0 \(negative\) or 1 \(positive\), found 4"),
        ([tweet("u", "fine"), tweet("u", "ok")[:4]], [1, 1], "sample 1 must be LEAF's"),
    ],
)
def test_malformed_sent140_files_are_one_error_naming_the_file(sent140, samples, labels, message):
    write_leaf(sent140, "train", {"u": (samples, labels)}, "bad.json")
    with pytest.raises(DataError, match=message) as caught:
        SOURCES.create(f"leaf:path={sent140}").load()
    assert "bad.json" in str(caught.value)


def test_an_unknown_leaf_format_is_refused_naming_the_three_read(tmp_path):
    write_leaf(tmp_path, "train", {"u": ([[0.5, 0.25, 1.0]], [0])})
    write_leaf(tmp_path, "test", {"u": ([[0.5, 0.25, 1.0]], [0])})
    with pytest.raises(DataError, match=r"list of length 3; fedgossip reads FEMNIST .* Sent140"):
        SOURCES.create(f"leaf:path={tmp_path}").load()


def test_logreg_learns_sentiment_words_across_natural_user_nodes(tmp_path, monkeypatch):
    monkeypatch.setattr(fedgossip.run.records, "start_guardian", lambda *args, **kwargs: None)
    rng = np.random.default_rng(0)
    moods = {1: ["love", "great", "happy", "fun"], 0: ["hate", "awful", "sad", "tired"]}
    neutral = ["the", "day", "is", "today", "we", "at", "work"]

    def user(name: str, count: int):
        labels = rng.integers(0, 2, count).tolist()
        texts = [
            " ".join(rng.choice(neutral, 4).tolist() + rng.choice(moods[label], 2).tolist())
            for label in labels
        ]
        return [tweet(name, text, 1000 + i) for i, text in enumerate(texts)], labels

    write_leaf(tmp_path / "leaf", "train", {f"user{i}": user(f"user{i}", 40) for i in range(3)})
    write_leaf(tmp_path / "leaf", "test", {"user0": user("user0", 60)})
    runner = CliRunner()
    partition = ["partition", "create", f"leaf:path={tmp_path / 'leaf'}", "--scheme", "natural"]
    made = runner.invoke(cli, [*partition, "--nodes", "3", "--out", str(tmp_path / "p")])
    assert made.exit_code == 0, made.output
    options = ["--data", str(tmp_path / "p"), "--nodes", "3", "--model", "logreg", "--rounds", "4"]
    options += ["--eval-every", "4", "--out", str(tmp_path / "r"), "--name", "tweets"]
    result = runner.invoke(cli, ["train", *options], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r" / "tweets" / "summary.json").read_text())
    # 60 held-out tweets told apart only by their mood words: chance is 0.5, and reaching 0.9 by
    # luck has probability below 1e-9; were the bags built from the id/date/user fields, it would fail
    assert summary["final"]["avg_model_accuracy"] >= 0.9
