"""The console parser: structured lines and kernel findings, on real console captures
(fixtures/console-*.txt, from the 6.1.192 and 6.12.117 guests; LKDTM provoked the reports)."""
from pathlib import Path

import pytest

from migfuzz.kernels import console

FIX = Path(__file__).parent / "fixtures"


def test_structured_lines_clean_interleaved_and_garbled():
    text = ("boot\r\n"
            'MIGFUZZ {"event": "init", "uptime": 1.5}\r\n'
            '[    3.000001] some kernel line\r\n'
            'partial user outMIGFUZZ {"event": "x", "n": 2}\r\n'
            'MIGFUZZ {"event": "y"}[    4.0] kernel text landed here\r\n'
            'MIGFUZZ {"event": \r\n')
    ev = console.structured(text)
    assert ev[0] == {"event": "init", "uptime": 1.5}
    assert ev[1] == {"event": "x", "n": 2}
    assert ev[2] == {"event": "y"}
    assert "garbled" in ev[3]


def test_no_findings_in_clean_boot():
    text = "\n".join(["[    0.000000] Linux version 6.1.192", "[    0.1] smp: Brought up 1 node, 2 CPUs",
                      'MIGFUZZ {"event": "init"}', "ok 1 hmm.hmm_device_private.open_close",
                      "# hmm-tests.c:1:x:WARNING: not a kernel warning"])
    assert console.findings(text) == []


def test_classify_headers():
    cases = {
        "[ 1.0] BUG: KASAN: use-after-free in migrate_vma_collect_pmd+0x1/0x2": "kasan",
        "[ 1.0] BUG: kernel NULL pointer dereference, address: 0000000000000000": "bug",
        "[ 1.0] kernel BUG at mm/migrate_device.c:123!": "bug",
        "[ 1.0] Oops: invalid opcode: 0000 [#1] PREEMPT SMP": "oops",
        "[ 1.0] general protection fault, probably for non-canonical address": "oops",
        "[ 1.0] WARNING: CPU: 1 PID: 77 at mm/migrate.c:10 f+0x1/0x2": "warning",
        "[ 1.0] INFO: task hmm-tests:80 blocked for more than 30 seconds.": "hung_task",
        "[ 1.0] Kernel panic - not syncing: Attempted to kill init!": "panic",
        "[ 1.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [x:1]": "soft_lockup",
        "[ 1.0] rcu: INFO: rcu_preempt self-detected stall on CPU": "rcu_stall",
        "[ 1.0] BUG: Bad page state in process a  pfn:12345": "bad_page",
    }
    for line, kind in cases.items():
        assert console.classify(line) == kind, line


def test_synthetic_oops_excerpt_ends_at_end_trace_and_skips_user_lines():
    text = "\n".join([
        "[    9.1] BUG: unable to handle page fault for address: ffff888000000000",
        "[    9.1] #PF: supervisor read access in kernel mode",
        "ok 3 hmm.interleaved_user_line",
        "[    9.1] Oops: 0000 [#1] PREEMPT SMP",
        "[    9.1] Call Trace:",
        "[    9.1]  <TASK>",
        "[    9.1]  migrate_vma_setup+0x1/0x2",
        "[    9.1] ---[ end trace 0000000000000000 ]---",
        "[    9.2] unrelated later kernel line",
    ])
    f = console.findings(text)
    assert len(f) == 1 and f[0].kind == "bug" and f[0].line == 1
    assert f[0].excerpt[-1].startswith("---[ end trace")
    assert "Oops: 0000 [#1] PREEMPT SMP" in f[0].excerpt
    assert not any("interleaved_user_line" in ln for ln in f[0].excerpt)


def _fixture(name):
    p = FIX / name
    if not p.is_file():
        pytest.fail(f"missing fixture {p}")
    return p.read_text()


def test_real_lkdtm_reports_6_1():
    # 6.1.192 guest: LKDTM HUNG_TASK (hung_task_timeout_secs=5), then WARNING, BUG, EXCEPTION
    text = _fixture("console-6.1-lkdtm.txt")
    f = console.findings(text)
    assert [x.kind for x in f] == ["hung_task", "warning", "bug", "bug"]
    hung, warn, bug, null = f
    assert hung.title == "INFO: task sh:44 blocked for more than 5 seconds."
    assert any(ln.startswith("task:sh") and "state:D" in ln for ln in hung.excerpt)
    assert not any("cut here" in ln or "WARNING: CPU" in ln for ln in hung.excerpt)
    assert warn.title.startswith("WARNING: CPU: 1 PID: 46 at drivers/misc/lkdtm/bugs.c:85")
    assert warn.excerpt[-1].startswith("---[ end trace") and "Call Trace:" in warn.excerpt
    assert bug.title == "kernel BUG at drivers/misc/lkdtm/bugs.c:78!"
    assert any("invalid opcode" in ln for ln in bug.excerpt)
    assert null.title.startswith("BUG: kernel NULL pointer dereference")
    assert any(ln.startswith("Oops:") for ln in null.excerpt)
    assert null.excerpt[-1].startswith("---[ end trace")
    assert console.structured(text)[-2:] == [{"event": "lkdtm-done"},
                                             {"event": "done", "uptime": 17.07}]


def test_real_panic_6_1():
    text = _fixture("console-6.1-sysrq-panic.txt")
    f = console.findings(text)
    assert [x.kind for x in f] == ["panic"]
    assert f[0].title == "Kernel panic - not syncing: sysrq triggered crash"
    assert "sysrq_handle_crash+0xc/0xc" in " ".join(f[0].excerpt)
    assert not any(e.get("event") == "done" for e in console.structured(text))


def test_real_soft_lockup_and_rcu_stall_6_1():
    # 6.1.192 guest: LKDTM SOFTLOCKUP spins with preemption off on CPU 0
    text = _fixture("console-6.1-softlockup-rcu-stall.txt")
    f = console.findings(text)
    assert [x.kind for x in f] == ["soft_lockup", "soft_lockup", "rcu_stall"]
    assert f[0].title == "watchdog: BUG: soft lockup - CPU#0 stuck for 26s! [sh:44]"
    assert any("lkdtm_SOFTLOCKUP" in ln for ln in f[0].excerpt)
    assert f[2].title.startswith("rcu: INFO: rcu_sched self-detected stall on CPU")
