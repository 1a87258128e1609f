"""The OCR file formats on real files written here: ``image<TAB>transcription`` lists and ICDAR
2015 ``gt_*.txt`` / ``res_*.txt`` quadrilaterals (BOM, CRLF, commas inside a transcription,
quoted transcriptions, and a one-line error naming the file and line for each bad input)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cvbench.data.formats.icdar2015 import (
    gt_name,
    read_icdar2015,
    res_name,
    write_icdar2015_result,
)
from cvbench.data.formats.transcriptions import read_transcriptions, write_transcriptions

BOM = b"\xef\xbb\xbf"


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_transcriptions_bom_crlf_blank_lines_and_spaces(tmp_path: Path) -> None:
    text = "word_1.png\tTiredness\r\n\r\nword_2.png\tkills\r\nsub/word_3.png\t a b\tc \r\n"
    path = write_bytes(tmp_path / "gt.txt", BOM + text.encode())
    assert read_transcriptions(path) == [
        ("word_1.png", "Tiredness"),
        ("word_2.png", "kills"),
        ("sub/word_3.png", " a b\tc "),  # kept as written, a second tab included
    ]


def test_transcriptions_unicode_and_round_trip(tmp_path: Path) -> None:
    rows = [("a.png", "Ünïcode €"), ("b.png", "x\u2028y"), ("c.png", "")]
    path = tmp_path / "out" / "pred.txt"
    write_transcriptions(path, rows)
    assert path.read_bytes().startswith(b"a.png\t\xc3\x9cn")  # UTF-8 whatever the locale
    assert read_transcriptions(path, allow_empty=True) == rows
    assert not list(path.parent.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"a.png\tok\nb.png ok\n", "line 2: no tab in 'b.png ok'"),
        (b"a.png\tok\n\nb.png\t\n", "line 3: empty transcription for image 'b.png'"),
        (b"a.png\tok\r\nb.png\t  \r\n", "line 2: empty transcription for image 'b.png'"),
        (
            b"a.png\tok\nb.png\tx\na.png\ty\n",
            "line 3: image 'a.png' is already transcribed on line 1",
        ),
        (b"a.png\tok\nb.png\tcaf\xe9\n", "line 2: byte 0xe9 is not UTF-8"),
        (b"\tok\n", "line 1: empty image name before the tab"),
    ],
)
def test_transcription_errors_name_file_and_line(tmp_path: Path, data: bytes, message: str) -> None:
    path = write_bytes(tmp_path / "gt.txt", data)
    with pytest.raises(ValueError) as info:
        read_transcriptions(path)
    assert str(info.value).startswith(f"{path}, {message}")
    assert "\n" not in str(info.value)


def test_prediction_files_may_be_empty_but_not_repeated(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "pred.txt", b"a.png\t\nb.png\tfoo\n")
    assert read_transcriptions(path, allow_empty=True) == [("a.png", ""), ("b.png", "foo")]
    write_bytes(path, b"a.png\t\na.png\tfoo\n")
    with pytest.raises(ValueError, match="line 2: image 'a.png' is already transcribed"):
        read_transcriptions(path, allow_empty=True)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("a\tb.png", "x")], "image name 'a\\\\tb.png'"),
        ([("a.png", "x\ny")], "holds a line break"),
        ([("a.png", "x"), ("a.png", "y")], "image 'a.png' given twice"),
    ],
)
def test_write_transcriptions_refuses_what_cannot_be_read_back(
    tmp_path: Path, rows: list, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        write_transcriptions(tmp_path / "x.txt", rows)
    assert not (tmp_path / "x.txt").exists()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_transcriptions(tmp_path / "none.txt")
    with pytest.raises(FileNotFoundError):
        read_icdar2015(tmp_path / "gt_img_1.txt", "gt")


GT_LINES = [
    "377,117,463,117,465,130,378,130,Genaxis Theatre",
    "493,115,519,115,519,131,493,131,[06]",
    "374,155,409,155,409,170,374,170,###",
    "10,20,30,20,30,40,10,40,Hello, World,again",
    '1,2,3,2,3,4,1,4,"say \\"hi\\", \\\\o/"',
]


def test_icdar2015_ground_truth_bom_crlf_commas_quotes(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / gt_name("img_1"), BOM + "\r\n".join(GT_LINES).encode() + b"\r\n")
    assert path.name == "gt_img_1.txt"
    regions = read_icdar2015(path, "gt")
    assert regions["polygons"].dtype == np.float32
    assert regions["polygons"].shape == (5, 4, 2)
    assert regions["polygons"][0].tolist() == [[377, 117], [463, 117], [465, 130], [378, 130]]
    assert regions["texts"] == [
        "Genaxis Theatre",
        "[06]",
        "###",
        "Hello, World,again",
        'say "hi", \\o/',
    ]
    assert regions["ignore"].tolist() == [False, False, True, False, False]
    assert regions["scores"].tolist() == [1.0] * 5


def test_icdar2015_results_scores_optional(tmp_path: Path) -> None:
    lines = [
        "1,2,11,2,11,8,1,8",
        "1.5, 2.25 ,11,2,11,8,1,8,0.75",
        "1,2,11,2,11,8,1,8,0.5,Some text, here",
        "1,2,11,2,11,8,1,8,word",
    ]
    path = write_bytes(tmp_path / res_name("img_7"), "\n".join(lines).encode())
    regions = read_icdar2015(path, "res")
    assert regions["polygons"][1, 0].tolist() == [1.5, 2.25]
    assert regions["scores"].tolist() == [1.0, 0.75, 0.5, 1.0]
    assert regions["texts"] == ["", "", "Some text, here", "word"]
    assert regions["ignore"].tolist() == [False] * 4


def test_icdar2015_empty_file(tmp_path: Path) -> None:
    regions = read_icdar2015(write_bytes(tmp_path / "res_img_1.txt", b"\n"), "res")
    assert regions["polygons"].shape == (0, 4, 2) and regions["polygons"].dtype == np.float32
    assert regions["scores"].shape == (0,) and regions["ignore"].shape == (0,)
    assert regions["texts"] == []


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("gt", b"1,2,3,4,5,6,7,8,ok\n1,2,3,4,5,6,word\n", "line 2: value 7 'word' is not a number"),
        ("gt", b"1,2,3,4,5,6,7,8,ok\n\n1,2,3,4,5,6\n", "line 3: 6 values, so fewer than 8"),
        ("res", b"1,2,3,4,5,6\n", "line 1: 6 values, so fewer than 8 coordinates"),
        ("res", b"1,2,3,x,5,6,7,8\n", "line 1: value 4 'x' is not a number"),
        ("res", b"1,2,3,4,5,6,7,nan\n", "line 1: value 8 'nan' is not a number"),
        ("res", b"1,2,3,4,5,6,7,8,inf\n", "line 1: score 'inf'; expected a finite number"),
        ("gt", BOM + b"1,2,3,4,5,6,7,8,\xff\xfe\n", "line 1: byte 0xff is not UTF-8"),
    ],
)
def test_icdar2015_errors_name_file_and_line(
    tmp_path: Path, kind: str, data: bytes, message: str
) -> None:
    path = write_bytes(tmp_path / f"{kind}_img_3.txt", data)
    with pytest.raises(ValueError) as info:
        read_icdar2015(path, kind)
    assert str(info.value).startswith(f"{path}, {message}")
    assert "\n" not in str(info.value)


def test_write_result_round_trip(tmp_path: Path) -> None:
    polygons = np.array(
        [[[10.4, 20.6], [30, 20], [30, 40], [10, 40]], [[0, 0], [5, 0], [5, 5], [0, 5]]]
    )
    path = tmp_path / "results" / res_name("img_2")
    write_icdar2015_result(path, polygons, np.array([0.9, 0.25]))
    assert path.read_text().splitlines()[0] == "10,21,30,20,30,40,10,40,0.900000"
    regions = read_icdar2015(path, "res")
    assert regions["polygons"].tolist() == np.rint(polygons).tolist()
    assert regions["scores"].tolist() == pytest.approx([0.9, 0.25])
    write_icdar2015_result(path, polygons)
    assert read_icdar2015(path, "res")["scores"].tolist() == [1.0, 1.0]
    write_icdar2015_result(path, np.zeros((0, 4, 2)), np.zeros(0))
    assert path.read_text() == ""
    with pytest.raises(ValueError, match="1 scores for 2 polygons"):
        write_icdar2015_result(path, polygons, np.array([0.5]))
    with pytest.raises(ValueError, match="not finite"):
        write_icdar2015_result(path, polygons * np.nan)
