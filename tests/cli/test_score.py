"""``cvbench score``: the real command in a subprocess for a known answer and the error path,
``main(argv)`` in-process for the rest (each subprocess costs several seconds of imports)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import top_k_accuracy_score

from cvbench.cli.score import EXIT_BAD_INPUT, main

REPO = Path(__file__).resolve().parents[2]

# 4 images. Image 1: right first guess. Image 2: right third guess. Image 3: only a wrong
# guess. Image 4: right fifth guess. top-1 error 3/4, top-5 error 1/4.
GT = "7\n2\n5\n0\n"
PRED = "7 1 2\n0 1 2 3 4\n9\n8 6 4 3 0\n"
EXPECTED = {"num_images": 4, "top1_error": 75.0, "top5_error": 25.0}


def _files(tmp_path: Path, gt: str = GT, pred: str = PRED) -> tuple[Path, Path]:
    (tmp_path / "gt.txt").write_text(gt)
    (tmp_path / "pred.txt").write_text(pred)
    return tmp_path / "gt.txt", tmp_path / "pred.txt"


def _cvbench(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cvbench", "score", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_known_answer_and_out_file(tmp_path: Path) -> None:
    gt, pred = _files(tmp_path)
    out = tmp_path / "results" / "score.json"
    proc = _cvbench("task=classification", f"gt={gt}", f"pred={pred}", f"out={out}")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == EXPECTED
    assert out.read_text() == proc.stdout  # the same JSON, byte for byte
    assert not list(out.parent.glob(".*.tmp"))  # no temporary file left behind


@pytest.mark.slow
def test_bad_input_is_one_line_without_traceback(tmp_path: Path) -> None:
    gt, pred = _files(tmp_path, pred="7 1 2\n0 1 2 3 4\nnine\n8 6 4 3 0\n")
    proc = _cvbench("task=classification", f"gt={gt}", f"pred={pred}")
    assert proc.returncode == EXIT_BAD_INPUT == 1
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr == f"error: {pred}, line 3: 'nine' is not an integer class id; " + (
        "expected 1 to 5 integer class ids per line, best first\n"
    )


def _run_main(capsys, *args: str | Path) -> tuple[int, str, str]:
    """``main(argv)`` in-process: exit status, stdout, stderr."""
    try:
        main(["task=classification", *map(str, args)])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("gt_text", "pred_text", "bad", "where", "words"),
    [
        (GT, "7 1 2\n0 1 2\n9\n", "pred", "", "3 lines of guesses but {gt} has 4 labels"),
        (GT, PRED + "1\n", "pred", "", "5 lines of guesses but {gt} has 4 labels"),
        ("7\n\n5\n0\n", PRED, "gt", ", line 2", "empty line"),
        (GT, "7 1 2\n\n9\n8 6 4 3 0\n", "pred", ", line 2", "empty line"),
        ("7\n2\nfive\n0\n", PRED, "gt", ", line 3", "'five' is not an integer"),
        (GT, "7 1 2\n0 1 2 3 4 5\n9\n8\n", "pred", ", line 2", "6 guesses; expected 1 to 5"),
        ("7\n2\n5\n-1\n", PRED, "gt", ", line 4", "negative class id -1"),
        (GT, "7 1 2\n0 -2\n9\n8\n", "pred", ", line 2", "negative class id -2"),
    ],
)
def test_bad_input(
    tmp_path: Path, capsys, gt_text: str, pred_text: str, bad: str, where: str, words: str
) -> None:
    gt, pred = _files(tmp_path, gt_text, pred_text)
    out = tmp_path / "score.json"
    code, stdout, stderr = _run_main(capsys, f"gt={gt}", f"pred={pred}", f"out={out}")
    assert code == EXIT_BAD_INPUT
    assert stdout == ""
    bad_path = gt if bad == "gt" else pred
    assert stderr.startswith(f"error: {bad_path}{where}: ")
    assert words.format(gt=gt) in stderr
    assert "expected" in stderr
    assert stderr.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("missing", ["gt", "pred"])
def test_missing_file(tmp_path: Path, capsys, missing: str) -> None:
    gt, pred = _files(tmp_path)
    (gt if missing == "gt" else pred).unlink()
    code, stdout, stderr = _run_main(capsys, f"gt={gt}", f"pred={pred}")
    assert code == EXIT_BAD_INPUT
    assert stdout == ""
    path = gt if missing == "gt" else pred
    assert stderr == f"error: cannot read {path}: No such file or directory\n"


def test_traceback_on_request(tmp_path: Path, monkeypatch) -> None:
    gt, pred = _files(tmp_path, gt="x\n")
    monkeypatch.setenv("CVBENCH_TRACEBACK", "1")
    with pytest.raises(ValueError, match="line 1"):
        main(["task=classification", f"gt={gt}", f"pred={pred}"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["task=keypoints", "gt=g", "pred=p"], "task=keypoints is not one of classification,"),
        (["task=classification", "gt=g"], "pred= is required"),
        (["gt=g", "pred=p"], "cvbench score: task= is required"),
        (["task=classification", "gt=g", "pred=p", "gtt=x"], "'gtt' (did you mean gt=?)"),
        (["task=classification", "gt=g", "pred=[a,b]"], "pred=[a,b]: expected one value"),
        (["task=classification", "gt=g", "pred=p", "+out=x"], "write out=..."),
        (["task=classification", "gt=g", "gt=h", "pred=p"], "gt= is given twice"),
        (["task=classification", "gt=a=b", "pred=p"], "cannot read 'gt=a=b'"),
        (["--task", "classification", "--gt", "g"], "write: cvbench score task=classification"),
    ],
)
def test_wrong_command_line_is_one_error_line(capsys, args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert message in err


def test_quoted_values_and_numbers_as_typed(tmp_path: Path, capsys) -> None:
    """A folder with a space, quoted as Hydra reads it; a file named 007 stays 007."""
    (tmp_path / "my dir").mkdir()
    gt, pred = _files(tmp_path / "my dir")
    (tmp_path / "007").write_text(PRED)
    code, stdout, stderr = _run_main(capsys, f"gt='{gt}'", "pred=007")
    assert code == EXIT_BAD_INPUT and "cannot read 007" in stderr  # read relative to cwd
    code, stdout, stderr = _run_main(capsys, f"gt='{gt}'", f"pred='{pred}'")
    assert code == 0, stderr
    assert json.loads(stdout) == EXPECTED


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_sklearn_on_a_random_submission(tmp_path: Path, capsys, seed: int) -> None:
    """Top-5 guesses of random scores written in the devkit format score as scikit-learn's
    top-k accuracy of the scores says."""
    rng = np.random.default_rng(seed)
    n, num_classes = 500, 20
    scores = rng.standard_normal((n, num_classes))
    labels = rng.integers(0, num_classes, n)
    top5 = np.argsort(-scores, axis=1)[:, :5]
    gt, pred = _files(
        tmp_path,
        "".join(f"{label}\n" for label in labels),
        "".join(" ".join(map(str, row)) + "\n" for row in top5),
    )
    code, stdout, _ = _run_main(capsys, f"gt={gt}", f"pred={pred}")
    assert code == 0
    result = json.loads(stdout)
    assert result["num_images"] == n
    for k in (1, 5):
        accuracy = top_k_accuracy_score(labels, scores, k=k, labels=np.arange(num_classes))
        assert result[f"top{k}_error"] == pytest.approx(100 * (1 - accuracy), abs=1e-12)
    assert isinstance(result["top1_error"], float)
