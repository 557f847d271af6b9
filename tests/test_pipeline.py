"""The pipeline's ranking of candidates, without the networks."""
from model.pipeline import Candidate, extends, ranked
from model.runtime import Reading


def candidate(number: str, confidence: float, box, score: float = 0.8) -> Candidate:
    return Candidate(box, score, Reading(number, confidence, False, [], [], 0.0))


def test_a_whole_number_outranks_a_more_confident_reading_of_its_part():
    part = candidate("84", 0.99, (10, 10, 60, 50))
    whole = candidate("8444", 0.60, (8, 8, 130, 55))
    assert extends(whole, part) and not extends(part, whole)
    assert ranked([part, whole], threshold=0.5) == [whole, part]


def test_no_inheritance_from_elsewhere_another_number_or_below_the_threshold():
    part = candidate("84", 0.99, (10, 10, 60, 50))
    elsewhere = candidate("8444", 0.60, (200, 10, 130, 55))  # holds none of the part's box
    other = candidate("8123", 0.60, (8, 8, 130, 55))  # does not read the part's digits
    loose = candidate("8444", 0.60, (8, 8, 130, 55), score=0.3)  # a box the localiser doubts
    for rival in (elsewhere, other, loose):
        assert ranked([rival, part], threshold=0.5) == [part, rival]
