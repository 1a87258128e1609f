"""``PerImageMetric``: the first copy of each dataset index kept, in index order, with fixed and
ragged payloads of mixed dtypes; checked inputs; and two real gloo processes (a process without
images, a padded ``DistributedSampler`` repeat counted once, int64 indices above 2**53 exact)."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from gloo import run_two_processes
from torch import Tensor
from torch.utils.data import DistributedSampler

import cvbench.metrics.per_image as per_image
from cvbench.metrics.per_image import PerImageMetric, first_occurrence

BIG = 2**53 + 1  # not a float64: an index sent as a float would come back as 2**53


class Payload(PerImageMetric):
    """Every kind of payload: float64 and bool per image, a (3,) float32 row per image, uint8
    rows of group ``blob`` and (2,) int64 rows of group ``word``."""

    def __init__(self) -> None:
        super().__init__()
        self.add_field("score", torch.float64)
        self.add_field("flag", torch.bool)
        self.add_field("feature", torch.float32, (3,))
        self.add_field("byte", torch.uint8, rows="blob")
        self.add_field("word", torch.int64, (2,), rows="word")

    def update(self, index: list[int], copy: int = 0) -> None:
        """Image i's payload is a function of (i, copy): another copy has other values."""
        blobs = [_blob(i, copy) for i in index]
        words = [_words(i, copy) for i in index]
        values = {
            "score": torch.tensor([float(i % 1000) + copy / 8 for i in index]),  # float32 in
            "flag": torch.tensor([(i + copy) % 2 == 1 for i in index]),
            "feature": torch.tensor([[i % 7, copy, -1.5] for i in index], dtype=torch.float64),
            "byte": torch.cat(blobs),
            "word": torch.cat(words),
        }
        rows = {"blob": [len(b) for b in blobs], "word": [len(w) for w in words]}
        self.add_images(torch.tensor(index, dtype=torch.int64), values, rows)

    def compute(self) -> dict:
        images = self.kept_images()
        return {
            "index": images.index.tolist(),
            "dtypes": {name: str(value.dtype) for name, value in images.values.items()},
            "shapes": {name: list(value.shape) for name, value in images.values.items()},
            "values": {name: value.tolist() for name, value in images.values.items()},
            "rows": {group: count.tolist() for group, count in images.rows.items()},
        }


def _blob(i: int, copy: int) -> Tensor:
    """(i % 4 + copy,) uint8 bytes: image 0's first copy has none."""
    return torch.arange(i % 4 + copy, dtype=torch.uint8) + 250


def _words(i: int, copy: int) -> Tensor:
    return torch.tensor([[i, copy]] * (i % 3 + 1), dtype=torch.int64)


def expected(index: list[int], copies: dict[int, int] | None = None) -> dict:
    """What ``Payload.compute`` gives for ``index`` (distinct, any order), each image of the
    copy ``copies`` names (0 by default), computed from the definitions."""
    copies = copies or {}
    metric = Payload()
    for i in sorted(index):
        metric.update([i], copies.get(i, 0))
    return metric.compute()


def test_doctests() -> None:
    result = doctest.testmod(per_image)
    assert result.failed == 0 and result.attempted > 0


def test_first_occurrence_known_answers() -> None:
    assert first_occurrence(torch.tensor([9, 3, 9, 3, 1])).tolist() == [4, 1, 0]
    assert first_occurrence(torch.tensor([], dtype=torch.int64)).tolist() == []


def test_first_copy_kept_in_index_order_with_ragged_rows() -> None:
    metric = Payload()
    metric.update([5, 0, 3])
    metric.update([3, 1], copy=1)  # image 3 again: its first copy (copy 0) counts
    metric.update([0], copy=2)
    got = metric.compute()
    assert got["index"] == [0, 1, 3, 5]
    assert got == expected([0, 1, 3, 5], {1: 1})
    # by hand: image 0 has no blob byte, image 1 (copy 1) two, image 3 three, image 5 one
    assert got["rows"] == {"blob": [0, 2, 3, 1], "word": [1, 2, 1, 3]}
    assert got["values"]["byte"] == [250, 251, 250, 251, 252, 250]
    assert got["values"]["word"][:3] == [[0, 0], [1, 1], [1, 1]]
    assert got["values"]["score"] == [0.0, 1.125, 3.0, 5.0]


DTYPES = {
    "score": "torch.float64",
    "flag": "torch.bool",
    "feature": "torch.float32",
    "byte": "torch.uint8",
    "word": "torch.int64",
}


def shapes(images: int, blob_rows: int, word_rows: int) -> dict[str, list[int]]:
    """The shapes of ``Payload``'s kept values."""
    per_image = {"score": [images], "flag": [images], "feature": [images, 3]}
    return per_image | {"byte": [blob_rows], "word": [word_rows, 2]}


def test_declared_dtypes_and_shapes_whatever_was_passed() -> None:
    metric = Payload()
    metric.update([2, 7])
    got = metric.compute()
    assert got["dtypes"] == DTYPES
    assert got["shapes"] == shapes(2, 5, 5)


def test_nothing_updated_gives_typed_empty_payload() -> None:
    with pytest.warns(UserWarning, match="compute.*before.*update"):
        got = Payload().compute()
    assert got["index"] == [] and got["rows"] == {"blob": [], "word": []}
    assert got["dtypes"] == DTYPES
    assert got["shapes"] == shapes(0, 0, 0)


def test_kept_images_of_int64_indices_above_2_53_exact() -> None:
    metric = Payload()
    metric.update([BIG, 2**62 + 3, BIG - 1, BIG], copy=0)
    assert metric.kept_images().index.tolist() == [BIG - 1, BIG, 2**62 + 3]


def test_forward_only_updates() -> None:
    metric = Payload()
    assert metric([4, 1]) is None
    assert metric.compute()["index"] == [1, 4]


def test_bad_inputs_name_the_field_and_add_nothing() -> None:
    metric = Payload()
    good = {
        "score": torch.zeros(2),
        "flag": torch.zeros(2, dtype=torch.bool),
        "feature": torch.zeros(2, 3),
        "byte": torch.zeros(3, dtype=torch.uint8),
        "word": torch.zeros(2, 2, dtype=torch.int64),
    }
    rows = {"blob": [1, 2], "word": [0, 2]}
    index = torch.tensor([0, 1])
    cases = [
        (index, {**good, "feature": torch.zeros(2, 4)}, rows, r"feature has shape \(2, 4\); "),
        (index, {**good, "byte": torch.zeros(2, dtype=torch.uint8)}, rows, r"expected \(3,\)"),
        (index, {**good, "score": torch.zeros(3)}, rows, r"score has shape \(3,\)"),
        (index, {k: v for k, v in good.items() if k != "flag"}, rows, "expected exactly"),
        (index, good, {"blob": [1, 2]}, r"rows for \['blob'\]; expected \['blob', 'word'\]"),
        (index, good, {**rows, "word": [3, -1]}, r"rows\['word'\] \[3, -1\]; expected 2 counts"),
        (torch.tensor([0.0, 1.0]), good, rows, "dataset indices of dtype torch.float32"),
    ]
    for bad_index, values, bad_rows, message in cases:
        with pytest.raises(ValueError, match=f"^Payload: .*{message}"):
            metric.add_images(bad_index, values, bad_rows)
    assert not metric.index and not metric.score and not metric.word and not metric.blob_rows
    metric.add_images(index, good, rows)
    assert metric.kept_images().rows["word"].tolist() == [0, 2]


def test_a_name_already_taken_is_refused() -> None:
    metric = Payload()
    with pytest.raises(ValueError, match="the name 'score' is already taken"):
        metric.add_field("score", torch.float64)
    with pytest.raises(ValueError, match="the name 'update' is already taken"):
        metric.add_field("update", torch.float64)
    with pytest.raises(ValueError, match="the name 'blob_rows' is already taken"):
        metric.add_field("blob_rows", torch.int64)


# --- two real gloo processes --------------------------------------------------------------------


def _ddp_worker(rank: int, world: int, init_file: str, out: str, shards: list) -> None:
    torch.set_num_threads(1)  # a forked child must not use the parent's OpenMP pool
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        metric = Payload()
        for batch, copy in shards[rank]:
            metric.update(batch, copy)
        got = metric.compute()
        Path(out, f"{rank}.json").write_text(json.dumps(got))
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("empty_rank", [0, 1])
def test_two_processes_one_without_images(tmp_path: Path, empty_rank: int) -> None:
    """The process without images sends typed empty states (not torchmetrics' 1-D float32
    placeholder): the other's float64, bool, (N, 3) float32, uint8 and (R, 2) int64 states
    gather with them, indices above 2**53 exact, and the repeat within a process counts once."""
    index = [BIG, 3, 0, 2**62 + 3, 8]
    batches = [(index[:2], 0), (index[2:], 0), ([3, BIG], 1)]
    shards = [batches, []] if empty_rank == 1 else [[], batches]
    results = run_two_processes(_ddp_worker, tmp_path, shards)
    for got in results:
        assert got == expected(index)
        assert got["index"] == [0, 3, 8, BIG, 2**62 + 3]


@pytest.mark.timeout(120)
def test_two_processes_no_image_anywhere(tmp_path: Path) -> None:
    results = run_two_processes(_ddp_worker, tmp_path, [[], []])
    for got in results:
        assert got["index"] == [] and got["rows"] == {"blob": [], "word": []}
        assert got["dtypes"] == DTYPES
        assert got["shapes"] == shapes(0, 0, 0)


@pytest.mark.timeout(120)
def test_two_processes_padded_sampler_repeat_counted_once(tmp_path: Path) -> None:
    """7 images on 2 processes: the sampler pads rank 1's shard with image 0, whose copy there
    carries other values (copy 1); rank 0's copy is the one kept, on both processes, as one
    process keeps the first copy of the shards concatenated in rank order."""
    shards = [
        list(DistributedSampler(range(7), num_replicas=2, rank=r, shuffle=False)) for r in (0, 1)
    ]
    assert shards[1] == [1, 3, 5, 0]
    per_rank = [[(shards[0], 0)], [(shards[1][:3], 0), (shards[1][3:], 1)]]
    results = run_two_processes(_ddp_worker, tmp_path, per_rank)
    single = Payload()
    for batch, copy in per_rank[0] + per_rank[1]:
        single.update(batch, copy)
    assert single.compute() == expected(list(range(7)))
    for got in results:
        assert got == expected(list(range(7)))
    assert expected(list(range(7)), {0: 1}) != expected(list(range(7)))  # the test can fail
