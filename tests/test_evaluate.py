from model.evaluate import score


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
