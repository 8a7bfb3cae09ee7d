"""mepr.corpora.find: the shallowest file / folder of a name below a corpus root, per adapter."""

from __future__ import annotations

import pytest

from mepr.corpora import CorpusError
from mepr.corpora.find import Search
from mepr.corpora.fiv2 import PICKLE_SEARCH
from mepr.corpora.mosei import SDK_SEARCH


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    return path


def test_shallowest_wins_and_ties_go_to_the_first_in_sorted_order(tmp_path):
    _touch(tmp_path / "a" / "b" / "f")
    second = _touch(tmp_path / "z" / "f")
    assert Search().file(tmp_path, "f") == second
    first = _touch(tmp_path / "b" / "f")
    assert Search().file(tmp_path, "f") == first
    assert Search().file(tmp_path, "missing") is None


def test_refused_ties_name_every_copy(tmp_path):
    one, two = _touch(tmp_path / "a-b" / "f"), _touch(tmp_path / "a" / "f")
    search = Search(refuse_ties=True, tie_hint="pick one")
    with pytest.raises(CorpusError) as e:
        search.file(tmp_path, "f")
    assert str(e.value) == f"f found 2 times under {tmp_path}: {one}, {two}; pick one"
    shallow = _touch(tmp_path / "f")
    assert search.file(tmp_path, "f") == shallow


def test_hidden_entries_only_when_asked(tmp_path):
    hidden = _touch(tmp_path / ".cache" / "f")
    assert Search().file(tmp_path, "f") is None
    assert Search(hidden=True).file(tmp_path, "f") == hidden


def test_symlinked_folders_followed_once_or_not_at_all(tmp_path):
    root = tmp_path / "root"
    real = _touch(root / "data" / "deep" / "f")
    (root / "link").symlink_to(root / "data", target_is_directory=True)  # a second way in
    (root / "data" / "loop").symlink_to(root, target_is_directory=True)  # back up the tree
    assert Search(follow_links=True).file(root, "f") == real
    real.unlink()
    outside = _touch(tmp_path / "outside" / "f")
    (root / "out").symlink_to(outside.parent, target_is_directory=True)
    assert Search(follow_links=True).file(root, "f") == root / "out" / "f"
    assert Search(follow_links=False).file(root, "f") is None


def test_depth_limit(tmp_path):
    _touch(tmp_path / "1" / "2" / "3" / "f")
    assert Search(max_depth=3).file(tmp_path, "f") is None
    assert Search(max_depth=4).file(tmp_path, "f") == tmp_path / "1" / "2" / "3" / "f"


def test_folders_by_path_suffix(tmp_path):
    suffix = ("Raw", "Videos", "Full", "Combined")
    deep = tmp_path / "CMU-MOSEI" / "Raw" / "Videos" / "Full" / "Combined"
    deep.mkdir(parents=True)
    assert Search().folders(tmp_path, [suffix, ("nowhere",)]) == {suffix: deep}
    usual = tmp_path.joinpath(*suffix)
    usual.mkdir(parents=True)
    assert Search().folders(tmp_path, [suffix]) == {suffix: usual}


def test_the_adapters_choices():
    assert Search(hidden=False, follow_links=True, max_depth=32) == SDK_SEARCH
    assert (PICKLE_SEARCH.hidden, PICKLE_SEARCH.follow_links) == (True, False)
    assert PICKLE_SEARCH.max_depth is None and PICKLE_SEARCH.refuse_ties
