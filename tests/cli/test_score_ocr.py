"""``cvbench score task=ocr`` and ``task=text_detection`` on files written here: known answers
(torchmetrics for CER/WER, hand counts for ICDAR 2015), the real command once each, and one-line
errors naming the file, line or image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, run_cli
from torchmetrics.text import CharErrorRate

from cvbench.cli.score import EXIT_BAD_INPUT, main

GT = "\ufeffw1.png\tHello,\r\nw2.png\tWorld\r\n\r\nw3.png\tCOSTA\r\nw4.png\tab c\r\n"
PRED = "w3.png\tcosta\nw1.png\thello\nw4.png\t\nw2.png\tWorld!\n"
# lower_alnum: hello/hello, world/world, costa/costa, ""/abc -> 3 of 4, 3 edits over 18 chars
# exact: "hello" vs "Hello,", "World!" vs "World", "costa" vs "COSTA", "" vs "ab c"


def run_main(capsys, task: str, *args: str | Path) -> tuple[int, str, str]:
    """``main(argv)`` in-process: exit status, stdout, stderr."""
    try:
        main([f"task={task}", *map(str, args)])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ocr_files(tmp_path: Path, gt: str = GT, pred: str = PRED) -> tuple[Path, Path]:
    (tmp_path / "gt.txt").write_bytes(gt.encode())
    (tmp_path / "pred.txt").write_bytes(pred.encode())
    return tmp_path / "gt.txt", tmp_path / "pred.txt"


@pytest.mark.slow
def test_ocr_real_command(tmp_path: Path) -> None:
    gt, pred = ocr_files(tmp_path)
    out = tmp_path / "out" / "score.json"
    proc = run_cli("score", "task=ocr", f"gt={gt}", f"pred={pred}", f"out={out}", cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["protocol"] == "lower_alnum"
    assert result["text_protocol"].startswith("lower_alnum: lowercase, characters outside 0-9a-z")
    assert result["word_acc"] == 75.0 and result["num_words"] == 4
    assert result["cer"] == pytest.approx(100 * 3 / 18)
    assert result["one_minus_ned"] == pytest.approx(3 / 4)
    assert [row["image"] for row in result["per_image"]] == ["w1.png", "w2.png", "w3.png", "w4.png"]
    assert out.read_text() == proc.stdout


def test_ocr_exact_protocol_against_torchmetrics(tmp_path: Path, capsys) -> None:
    gt, pred = ocr_files(tmp_path)
    code, stdout, stderr = run_main(capsys, "ocr", f"gt={gt}", f"pred={pred}", "protocol=exact")
    assert code == 0, stderr
    result = json.loads(stdout)
    preds, targets = ["hello", "World!", "costa", ""], ["Hello,", "World", "COSTA", "ab c"]
    assert result["word_acc"] == 0.0
    assert result["cer"] == pytest.approx(100 * float(CharErrorRate()(preds, targets)), rel=1e-6)
    assert result["one_minus_ned"] == pytest.approx((4 / 6 + 5 / 6 + 0 + 0) / 4)
    assert result["wer"] == pytest.approx(100 * (1 + 1 + 1 + 2) / 5)
    code, stdout, _ = run_main(capsys, "ocr", f"gt={gt}", f"pred={pred}", "protocol=ignore_case")
    assert json.loads(stdout)["word_acc"] == 25.0  # costa only


@pytest.mark.parametrize(
    ("gt_text", "pred_text", "bad", "message"),
    [
        (GT, PRED.replace("w4.png\t\n", ""), "pred", ": no line for image 'w4.png' of the ground"),
        (GT, PRED + "w9.png\tx\n", "pred", ": image 'w9.png' is not in the ground truth"),
        (GT, PRED.replace("w1.png\thello", "w1.png hello"), "pred", ", line 2: no tab in"),
        (GT.replace("COSTA", ""), PRED, "gt", ", line 4: empty transcription for image 'w3.png'"),
        (GT, PRED + "w1.png\tagain\n", "pred", ", line 5: image 'w1.png' is already"),
        ("", PRED, "gt", ": no lines; expected image<TAB>transcription lines"),
    ],
)
def test_ocr_errors(tmp_path: Path, capsys, gt_text: str, pred_text: str, bad: str, message: str):
    gt, pred = ocr_files(tmp_path, gt_text, pred_text)
    code, stdout, stderr = run_main(capsys, "ocr", f"gt={gt}", f"pred={pred}")
    assert code == EXIT_BAD_INPUT and stdout == ""
    assert stderr.startswith(f"error: {gt if bad == 'gt' else pred}{message}"), stderr
    assert stderr.count("\n") == 1


def test_ocr_non_utf8_and_wrong_protocol(tmp_path: Path, capsys) -> None:
    gt, pred = ocr_files(tmp_path)
    pred.write_bytes(b"w1.png\thello\nw2.png\tw\xf6rld\n")
    code, _, stderr = run_main(capsys, "ocr", f"gt={gt}", f"pred={pred}")
    assert code == EXIT_BAD_INPUT
    assert stderr.startswith(f"error: {pred}, line 2: byte 0xf6 is not UTF-8")
    code, _, stderr = run_main(capsys, "ocr", f"gt={gt}", f"pred={pred}", "protocol=lower")
    assert code == EXIT_BAD_INPUT and "protocol=lower" in stderr and "lower_alnum" in stderr


def square(x: int, y: int, size: int = 10) -> str:
    return f"{x},{y},{x + size},{y},{x + size},{y + size},{x},{y + size}"


def icdar_folders(tmp_path: Path) -> tuple[Path, Path]:
    """img_1: 2 regions + 1 ###, found with a duplicate and a detection in the ###; img_2: 1
    region, a false positive (score 0.3) and the hit; img_3: 1 region, no result file."""
    gt, pred = tmp_path / "gt", tmp_path / "res"
    gt.mkdir()
    pred.mkdir()
    (gt / "gt_img_1.txt").write_bytes(
        b"\xef\xbb\xbf"
        + f"{square(0, 0)},Hello, you\r\n{square(50, 0)},x\r\n{square(100, 0, 20)},###\r\n".encode()
    )
    (gt / "gt_img_2.txt").write_text(f"{square(0, 0)},a\n")
    (gt / "gt_img_3.txt").write_text(f"{square(0, 0)},b\n")
    (pred / "res_img_1.txt").write_text(
        f"{square(0, 0)},0.9\n{square(1, 0)},0.8\n{square(51, 1)},0.7\n{square(105, 5)},0.95\n"
    )
    (pred / "res_img_2.txt").write_text(f"{square(60, 60)},0.3\n{square(0, 0)}\n")
    return gt, pred


def test_text_detection_known_answer(tmp_path: Path, capsys) -> None:
    """Counted: 4 ground truth (### aside); 5 detections (the one in ### aside); 3 matched."""
    gt, pred = icdar_folders(tmp_path)
    code, stdout, stderr = run_main(capsys, "text_detection", f"gt={gt}", f"pred={pred}")
    assert code == 0, stderr
    result = json.loads(stdout)
    assert (result["num_gt"], result["num_pred"], result["num_matched"]) == (4, 5, 3)
    assert result["precision"] == pytest.approx(3 / 5)
    assert result["recall"] == pytest.approx(3 / 4)
    assert result["hmean"] == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    assert result["missing_results"] == 1 and result["num_images"] == 3
    # at 0.4 the false positive is gone: P 3/4, R 3/4
    assert result["hmean_best_thr"] == pytest.approx(0.75) and result["best_thr"] == 0.4
    assert [row["image"] for row in result["per_image"]] == ["img_1", "img_2", "img_3"]
    assert result["per_image"][2] == {
        "image": "img_3",
        "num_gt": 1,
        "num_pred": 0,
        "num_matched": 0,
        "precision": 0.0,
        "recall": 0.0,
        "hmean": 0.0,
    }


def test_text_detection_score_threshold(tmp_path: Path, capsys) -> None:
    gt, pred = icdar_folders(tmp_path)
    args = (f"gt={gt}", f"pred={pred}", "score_threshold=0.85")
    code, stdout, stderr = run_main(capsys, "text_detection", *args)
    assert code == 0, stderr
    result = json.loads(stdout)
    # kept: img_1 0.9 (hit); img_2 the line without score (1.0, hit)
    assert (result["num_pred"], result["num_matched"]) == (2, 2)
    assert result["precision"] == 1.0 and result["recall"] == 0.5
    assert result["score_threshold"] == 0.85


def _extra(gt: Path, pred: Path) -> str:
    (pred / "res_img_9.txt").write_text(square(0, 0) + "\n")
    return f"error: {pred / 'res_img_9.txt'}: no ground truth {gt / 'gt_img_9.txt'}"


def _misnamed(gt: Path, pred: Path) -> str:
    (pred / "res_img_2.txt").rename(pred / "img_2.txt")
    return f"error: {pred / 'img_2.txt'}: expected ICDAR 2015 files named res_<image stem>.txt"


def _bad_line(gt: Path, pred: Path) -> str:
    (pred / "res_img_2.txt").write_text(f"{square(0, 0)}\n1,2,3,4,5,6\n")
    return f"error: {pred / 'res_img_2.txt'}, line 2: 6 values, so fewer than 8 coordinates"


def _bad_gt(gt: Path, pred: Path) -> str:
    (gt / "gt_img_3.txt").write_bytes(b"1,2,3,4,5,6,7,8,caf\xe9\n")
    return f"error: {gt / 'gt_img_3.txt'}, line 1: byte 0xe9 is not UTF-8"


def _no_results(gt: Path, pred: Path) -> str:
    for path in pred.iterdir():
        path.unlink()
    return f"error: {pred}: no res_*.txt files in this folder"


@pytest.mark.parametrize("break_it", [_extra, _misnamed, _bad_line, _bad_gt, _no_results])
def test_text_detection_errors(tmp_path: Path, capsys, break_it) -> None:
    gt, pred = icdar_folders(tmp_path)
    message = break_it(gt, pred)
    code, stdout, stderr = run_main(capsys, "text_detection", f"gt={gt}", f"pred={pred}")
    assert code == EXIT_BAD_INPUT and stdout == ""
    assert stderr.startswith(message), stderr
    assert stderr.count("\n") == 1
