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
