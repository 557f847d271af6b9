"""Reading labels: the official SVHN digitStruct.mat (MATLAB v7.3 = HDF5) and our labels.json."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from model.cli import InputError
from model.data import Sample, load_samples, read_digit_struct

KEYS = ("label", "left", "top", "width", "height")

# What the file holds, as the official files write it: the digit 0 is stored as 10.
# Names are deliberately out of order so that sorting is tested (2.png before 10.png).
RAW = {
    "10.png": [  # several digits: "2", "0", "5"
        {"label": 2.0, "left": 5.0, "top": 6.0, "width": 7.0, "height": 20.0},
        {"label": 10.0, "left": 13.0, "top": 6.5, "width": 8.0, "height": 21.0},
        {"label": 5.0, "left": 22.0, "top": 7.0, "width": 9.0, "height": 22.0},
    ],
    "2.png": [  # one digit, a 0 written as 10
        {"label": 10.0, "left": 1.0, "top": 2.0, "width": 3.0, "height": 4.0},
    ],
    "1.png": [  # two digits: "1", "9"
        {"label": 1.0, "left": 246.0, "top": 77.0, "width": 81.0, "height": 219.0},
        {"label": 9.0, "left": 323.0, "top": 81.0, "width": 96.0, "height": 219.0},
    ],
}

# What read_digit_struct must give back: labels as ints, 10 -> 0, coordinates as floats.
EXPECTED = {
    name: [{**d, "label": int(d["label"]) % 10} for d in digits] for name, digits in RAW.items()
}


def write_digit_struct(path: Path, raw: dict[str, list[dict]]) -> None:
    """Write `raw` in the layout of the official digitStruct.mat files."""
    with h5py.File(path, "w") as f:
        refs = f.create_group("#refs#")
        counter = iter(range(10**6))

        def new_name() -> str:
            return f"r{next(counter)}"

        struct = f.create_group("digitStruct")
        names = struct.create_dataset("name", shape=(len(raw), 1), dtype=h5py.ref_dtype)
        bboxes = struct.create_dataset("bbox", shape=(len(raw), 1), dtype=h5py.ref_dtype)
        for i, (name, digits) in enumerate(raw.items()):
            codes = np.array([[ord(c)] for c in name], dtype=np.uint16)  # (len, 1) character codes
            names[i, 0] = refs.create_dataset(new_name(), data=codes).ref
            group = refs.create_group(new_name())
            for key in KEYS:
                if len(digits) == 1:  # one digit: a (1, 1) float64 holding the value itself
                    group.create_dataset(key, data=np.array([[digits[0][key]]], dtype=np.float64))
                else:  # several digits: a (k, 1) column of references to (1, 1) float64 datasets
                    column = group.create_dataset(key, shape=(len(digits), 1), dtype=h5py.ref_dtype)
                    for j, d in enumerate(digits):
                        value = refs.create_dataset(new_name(), data=np.array([[d[key]]], dtype=np.float64))
                        column[j, 0] = value.ref
            bboxes[i, 0] = group.ref


@pytest.fixture
def mat_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "train"
    folder.mkdir()
    write_digit_struct(folder / "digitStruct.mat", RAW)
    return folder


def test_fixture_has_official_layout(mat_folder: Path) -> None:
    """Guard the test's own writer: the shapes and types are those of the official files."""
    with h5py.File(mat_folder / "digitStruct.mat", "r") as f:
        names, bboxes = f["digitStruct/name"], f["digitStruct/bbox"]
        assert names.shape == bboxes.shape == (3, 1)
        assert names.dtype == h5py.ref_dtype and bboxes.dtype == h5py.ref_dtype
        first = f[names[0, 0]]
        assert first.dtype == np.uint16 and first.shape == (6, 1)  # "10.png"
        single = f[bboxes[1, 0]]  # "2.png", one digit
        multi = f[bboxes[0, 0]]  # "10.png", three digits
        for key in KEYS:
            assert single[key].shape == (1, 1) and single[key].dtype == np.float64
            assert multi[key].shape == (3, 1) and multi[key].dtype == h5py.ref_dtype
            assert f[multi[key][0, 0]].shape == (1, 1)


def test_read_digit_struct(mat_folder: Path) -> None:
    labels = read_digit_struct(mat_folder / "digitStruct.mat")
    assert labels == EXPECTED
    assert list(labels) == list(RAW)  # file order is kept
    assert labels["2.png"][0]["label"] == 0  # 10 reads back as 0
    for digits in labels.values():
        for d in digits:
            assert type(d["label"]) is int
            assert all(type(d[k]) is float for k in KEYS[1:])


def test_read_digit_struct_accepts_str_path(mat_folder: Path) -> None:
    assert read_digit_struct(str(mat_folder / "digitStruct.mat")) == EXPECTED


def test_load_samples_from_digit_struct(mat_folder: Path) -> None:
    samples = load_samples(mat_folder)
    assert [s.path.name for s in samples] == ["1.png", "2.png", "10.png"]  # numeric, not string, order
    by_name = {s.path.name: s for s in samples}

    assert by_name["2.png"] == Sample(path=mat_folder / "2.png", digits=(0,), boxes=((1.0, 2.0, 3.0, 4.0),))
    assert by_name["2.png"].number == "0"

    assert by_name["10.png"].digits == (2, 0, 5)
    assert by_name["10.png"].number == "205"
    assert by_name["10.png"].boxes == ((5.0, 6.0, 7.0, 20.0), (13.0, 6.5, 8.0, 21.0), (22.0, 7.0, 9.0, 22.0))

    assert by_name["1.png"].number == "19"
    assert by_name["1.png"].boxes == ((246.0, 77.0, 81.0, 219.0), (323.0, 81.0, 96.0, 219.0))


def test_load_samples_from_labels_json(tmp_path: Path) -> None:
    labels = {
        "10.png": [{"label": 4, "left": 1, "top": 2, "width": 3, "height": 4}],
        "2.png": [
            {"label": 0, "left": 10.5, "top": 11, "width": 12, "height": 13},
            {"label": 7, "left": 20, "top": 21, "width": 22, "height": 23},
        ],
    }
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    samples = load_samples(tmp_path)
    assert samples == [
        Sample(path=tmp_path / "2.png", digits=(0, 7), boxes=((10.5, 11.0, 12.0, 13.0), (20.0, 21.0, 22.0, 23.0))),
        Sample(path=tmp_path / "10.png", digits=(4,), boxes=((1.0, 2.0, 3.0, 4.0),)),
    ]
    assert [s.number for s in samples] == ["07", "4"]
    assert all(type(v) is float for s in samples for box in s.boxes for v in box)


def test_labels_json_wins_over_digit_struct(mat_folder: Path) -> None:
    (mat_folder / "labels.json").write_text(json.dumps({"3.png": [{"label": 3, "left": 0, "top": 0, "width": 1, "height": 1}]}))
    assert [s.path.name for s in load_samples(mat_folder)] == ["3.png"]


def test_load_samples_without_labels_raises(tmp_path: Path) -> None:
    (tmp_path / "1.png").write_bytes(b"not really a png")
    with pytest.raises(InputError, match="neither labels.json nor digitStruct.mat"):
        load_samples(tmp_path)


@pytest.mark.parametrize("text, says", [
    ("", "no such folder"),
    ('{"1.png": [{"label": 1, "left": 2', "not valid JSON"),
    ('["1.png"]', "map each image's file name"),
    ("{}", "its labels name no image"),
    ('{"1.png": [{"label": 1, "left": 2, "width": 3, "height": 4}]}', "'1.png' need label, left, top, width and height"),
    ('{"1.png": [{"label": "x", "left": 2, "top": 1, "width": 3, "height": 4}]}', "'1.png' need label"),
])
def test_a_mistaken_label_folder_is_named_in_one_line(tmp_path: Path, text: str, says: str) -> None:
    # A user's own folder: what is wrong, and where, rather than a KeyError from deep inside.
    folder = tmp_path / "labelled"
    if text:
        folder.mkdir()
        (folder / "labels.json").write_text(text)
    with pytest.raises(InputError, match=says) as caught:
        load_samples(folder)
    assert str(folder) in str(caught.value)


@pytest.mark.parametrize("label, says", [
    (10, "has the label 10, not a digit 0-9 (0 is written 0 in labels.json"),
    (12, "has the label 12, not a digit 0-9"),
    (1.7, "has the label 1.7, not a digit 0-9"),
    ("7", "has the label '7', not a digit 0-9"),
    (None, "has an empty list of digits"),
])
def test_a_label_that_is_no_digit_is_named_with_its_image(tmp_path: Path, label, says: str) -> None:
    # 10 (the official files' zero) failed deep in training, 1.7 was read as 1, an empty list broke union_box.
    digit = {"left": 2, "top": 1, "width": 3, "height": 4}
    entries = [] if label is None else [{"label": 1, **digit}, {"label": label, **digit}]
    (tmp_path / "labels.json").write_text(json.dumps({"1.png": [{"label": 0, **digit}], "2.png": entries}))
    with pytest.raises(InputError) as caught:
        load_samples(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path / 'labels.json'}: '2.png' ") and says in str(caught.value)


def test_a_digit_struct_that_is_no_hdf5_file_is_one_line(mat_folder: Path) -> None:
    # MATLAB v7 (scipy.io.savemat, save -v7) or a file cut short ended in an h5py traceback.
    mat = mat_folder / "digitStruct.mat"
    whole = mat.read_bytes()
    mat.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match=r"digitStruct.mat is not a MATLAB v7.3 \(HDF5\) file, or it is cut short"):
        load_samples(mat_folder)
    mat.write_bytes(b"MATLAB 5.0 MAT-file, Platform: posix, Created on: Mon Dec  7 15:00:00 2026".ljust(116) + bytes(12))
    with pytest.raises(InputError) as caught:
        load_samples(mat_folder)
    assert str(caught.value) == (f"{mat} is not a MATLAB v7.3 (HDF5) file but a MATLAB 5.0 MAT-file: "
                                 "resave it with save -v7.3, or give labels.json")


@pytest.mark.parametrize("label", [0.0, 11.0, 2.5])
def test_a_digit_struct_label_outside_1_to_10_is_named(tmp_path: Path, label: float) -> None:
    # Its 10 is the digit 0, so labels were read modulo 10: an 11 would have been a 1.
    raw = {"1.png": [{"label": label, "left": 1.0, "top": 2.0, "width": 3.0, "height": 4.0}]}
    write_digit_struct(tmp_path / "digitStruct.mat", raw)
    with pytest.raises(InputError, match=f"'1.png' has the label {label:g}, where SVHN writes 1 to 10"):
        load_samples(tmp_path)
