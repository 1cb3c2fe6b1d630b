"""Corpus import holds the whole file in memory before writing (so a bad line leaves the
database unchanged); the file's size is therefore capped, and the cap is reported as one
line naming where it was crossed, before the rest of the file is read."""
import io

import pytest

from migfuzz.corpus import input as inputs
from migfuzz.corpus import jsonl


class _Counting(io.BytesIO):
    lines = 0

    def readline(self, *a):
        self.lines += 1
        return super().readline(*a)


def test_a_file_over_the_limit_is_refused_at_the_line_that_crosses_it(monkeypatch):
    monkeypatch.setattr(jsonl, "MAX_FILE_BYTES", 1000)
    line = b"\n" * 1 + b" " * 299 + b"\n"          # blank lines: cheap, and never parsed
    f = _Counting(line * 100)
    with pytest.raises(inputs.InputError) as e:
        jsonl.read(f, "big.jsonl")
    assert "big.jsonl:" in str(e.value) and "MiB import limit" in str(e.value)
    where = int(str(e.value).split(":")[1])
    # 1000 bytes are crossed inside the 4th 300-byte line pair: stop there, not at the end
    assert where <= 8 and f.lines <= 8, (where, f.lines)


def test_a_file_under_the_limit_is_read(monkeypatch):
    monkeypatch.setattr(jsonl, "MAX_FILE_BYTES", 1000)
    header, entries = jsonl.read(io.BytesIO(b"\n" * 900), "small.jsonl")
    assert header is None and entries == []


def test_the_real_limit_bounds_memory():
    # parsed JSON takes several times its text: the cap must keep import well under the
    # machine's memory (24 GiB here; a 2 GiB worker elsewhere)
    assert jsonl.MAX_FILE_BYTES <= 256 << 20
    assert jsonl.MAX_FILE_BYTES >= 16 * jsonl.MAX_LINE   # and still admits big real exports
