"""Buckets: grouping by signature, alternative titles, smallest input, flaky inputs."""
from __future__ import annotations

from migfuzz.fuzzer.findings import Finding
from migfuzz.fuzzer.search.buckets import Buckets, input_size


def _inp(actors=2, pages=2, sched=((0, 3), (1, 2))):
    return {"scenario": {"name": "s", "mms": [{"name": "A", "vmas": [
        {"start": 0, "npages": pages}]}], "actors": [{"name": f"a{i}"} for i in range(actors)]},
        "variant": "v5.16", "schedule": [list(r) for r in sched]}


F1 = Finding("LOST_WRITE", "LOST_WRITE: one way", ("a", "b"))
F1b = Finding("LOST_WRITE", "LOST_WRITE: said another way", ("a", "b"))
F2 = Finding("USE_AFTER_FREE", "USE_AFTER_FREE: x", ("c",))


def test_same_signature_one_bucket_with_alt_titles_and_smallest_input():
    bs = Buckets()
    big, small = _inp(3, 4), _inp(2, 1)
    b, new = bs.add(F1, big, "h1", 5)
    assert new
    b2, new2 = bs.add(F1b, small, "h2", 9)
    assert b2 is b and not new2
    assert b.hits == 2 and b.first_seen == 5 and b.last_seen == 9
    assert b.alt_titles == ["LOST_WRITE: said another way"]
    assert b.input is small and input_size(small) < input_size(big)
    bs.add(F2, big, "h1b", 10)
    assert len(bs) == 2


def test_a_flaky_input_does_not_split_a_bucket():
    bs = Buckets()
    inp = _inp()
    bs.add(F1, inp, "same-input", 1)
    b, new = bs.add(F2, inp, "same-input", 2)   # the same input, another kind this time
    assert not new and len(bs) == 1
    assert set(b.signatures) == {F1.signature, F2.signature}
    assert b.title == F1.title and F2.title in b.alt_titles and b.hits == 2
    # later hits of either signature land in that one bucket
    b3, _ = bs.add(F2, _inp(actors=1), "other", 3)
    assert b3 is b and len(bs) == 1


def test_co_occurring_findings_stay_separate():
    bs = Buckets()
    inp = _inp()
    bs.add(F1, inp, "h", 1)
    bs.add(F2, _inp(3), "h-other", 1)
    assert len(bs) == 2
