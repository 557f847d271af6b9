from PIL import Image

from model.evaluate import evaluate_handwriting, pictures, score, summary


def test_score_counts_numbers_digits_and_lengths():
    truth = ["19", "210", "5", "44"]
    result = score(["19", "218", "", "4"], truth)
    assert result["images"] == 4
    assert result["number_accuracy"] == 0.25
    # digits right at their position: 1,9 | 2,1 | - | 4  -> 5 of 8
    assert result["digit_accuracy"] == 5 / 8
    assert result["by_length"] == {
        "1": {"images": 1, "number_accuracy": 0.0},
        "2": {"images": 2, "number_accuracy": 0.5},
        "3": {"images": 1, "number_accuracy": 0.0},
    }


def test_handwriting_is_read_as_the_pad_sends_it_or_as_a_photo(app, mnist_dir, monkeypatch):
    """The drawings go through read_drawing (kind=drawing) or read (an upload), nothing else."""
    pipeline = app.extensions["pipeline"]
    calls = []
    for kind, method in (("drawing", "read_drawing"), ("photo", "read")):
        original = getattr(pipeline, method)
        monkeypatch.setattr(pipeline, method, lambda image, original=original, kind=kind: calls.append(kind) or original(image))
        result = evaluate_handwriting(pipeline, str(mnist_dir), count=4, kind=kind)
        assert result["read_as"] == kind and result["images"] == 4 and result["mnist_split"] == "test"
        assert all(len(r["truth"]) in (1, 2, 3, 4) for r in result["readings"])
        assert ("whole_ink_only" in result) == (kind == "drawing")
    assert calls == ["drawing"] * 4 + ["photo"] * 4


def test_a_scene_is_the_photo_in_a_background_of_the_chosen_size(test_samples):
    samples = test_samples[:3]
    for factor in (3.0, 8.0):
        for sample, (name, scene, truth) in zip(samples, pictures(samples, "scene", factor)):
            with Image.open(sample.path) as photo:
                assert scene.size == (int(photo.width * factor), int(photo.height * factor))
            assert name == sample.path.name and truth == sample.number


def test_the_summary_names_a_scene_size_other_than_the_protocols():
    result = dict(score(["19"], ["19"]), protocol="scene")
    assert summary(dict(result, scene_factor=3.0)).lstrip().startswith("scene:")
    assert summary(dict(result, scene_factor=10.0)).lstrip().startswith("scene 10x:")


def test_the_report_is_written_from_an_evaluation(tmp_path):
    # model.report turns model.evaluate's JSON into the model's report: its plots and its figures.
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    evaluation = tmp_path / "eval.json"
    for args in (["model.evaluate", "--data", "tests/fixtures/svhn_test", "--protocol", "crop", "whole", "--limit", "12",
                  "--report", str(evaluation)],
                 ["model.report", "--eval", str(evaluation), "--out", str(tmp_path / "report")]):
        done = subprocess.run([sys.executable, "-m", *args], cwd=root, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(evaluation.read_text())
    written = {path.name for path in (tmp_path / "report").iterdir()}
    assert written == {"README.md", "coverage.png", "confusion.png", "failures.png", "boxes.png"}
    text = (tmp_path / "report" / "README.md").read_text()
    for protocol in ("crop", "whole"):
        assert f"{figures[protocol]['number_accuracy']:.1%}" in text
