"""An output path that is a device or a pipe is written into, never replaced: as root,
'corpus export -o /dev/null' renamed a regular file over /dev/null."""
from __future__ import annotations

import os
import stat
import threading

from migfuzz.files import check_writable, write_atomic


def test_a_fifo_target_is_written_into_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "out"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo).read()))
    reader.start()
    check_writable(str(fifo))
    write_atomic(str(fifo), "hello\n")
    reader.join(timeout=10)
    assert got == ["hello\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert not list(tmp_path.glob("out.tmp*"))


def test_a_regular_file_is_still_replaced_whole(tmp_path):
    f = tmp_path / "x.json"
    f.write_text("old")
    write_atomic(str(f), "new")
    assert f.read_text() == "new" and stat.S_ISREG(os.stat(f).st_mode)
