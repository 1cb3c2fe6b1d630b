"""The kselftest-harness parser on real hmm-tests output."""
from pathlib import Path

from migfuzz.kernels import kselftest

FIX = Path(__file__).parent / "fixtures"


def test_real_6_1_run_thp_always():
    # a real run of 6.1.192's hmm-tests (THP "always"; repeated lines trimmed to 3)
    s = kselftest.parse((FIX / "hmm-tests-6.1-thp-always.txt").read_text())
    assert s.planned == 58 and len(s.tests) == 58
    assert s.totals == {"pass": 55, "fail": 3, "xfail": 0, "xpass": 0, "skip": 0, "error": 0}
    assert (s.passed, s.failed, s.skipped, s.incomplete) == (26, 3, 29, 0)
    failed = [t.name for t in s.tests if t.status == "failed"]
    assert failed == ["hmm.hmm_device_private.exclusive",
                      "hmm.hmm_device_private.exclusive_mprotect",
                      "hmm.hmm_device_private.exclusive_cow"]
    ex = next(t for t in s.tests if t.name == "hmm.hmm_device_private.exclusive")
    assert "Expected ret (-16) == 0 (0)" in ex.reason and ex.number == 22
    # the DEVICE_COHERENT variant: setup SKIP(exit(0)) counted as a pass by the 6.1 harness
    coh = [t for t in s.tests if ".hmm_device_coherent." in t.name or "hmm2_device_coherent" in t.name]
    assert len(coh) == 29 and all(t.status == "skipped" and t.harness_passed for t in coh)
    assert coh[0].reason == "DEVICE_COHERENT not available"
    assert "29 of the skipped counted as passed by the harness" in s.summary()


def test_tap_skip_without_name_and_with_name():
    text = "\n".join([
        "1..3",
        "#  RUN           hmm.hmm_device_private.anon_write_hugetlbfs ...",
        "#      SKIP      Huge page could not be allocated",
        "#            OK  hmm.hmm_device_private.anon_write_hugetlbfs",
        "ok 1 # SKIP Huge page could not be allocated",
        "#  RUN           hmm.hmm_device_private.hmm_gup_test ...",
        "#            OK  hmm.hmm_device_private.hmm_gup_test",
        "ok 2 hmm.hmm_device_private.hmm_gup_test # SKIP Skipping test, could not find gup_test driver",
        "#  RUN           hmm.hmm_device_private.migrate ...",
        "#            OK  hmm.hmm_device_private.migrate",
        "ok 3 hmm.hmm_device_private.migrate",
    ])
    s = kselftest.parse(text)
    st = {t.name: (t.status, t.reason, t.harness_passed) for t in s.tests}
    assert st == {
        "hmm.hmm_device_private.anon_write_hugetlbfs":
            ("skipped", "Huge page could not be allocated", False),
        "hmm.hmm_device_private.hmm_gup_test":
            ("skipped", "Skipping test, could not find gup_test driver", False),
        "hmm.hmm_device_private.migrate": ("passed", "", False)}


def test_interrupted_run_counts_incomplete_and_unplanned():
    text = "\n".join([
        "1..4",
        "#  RUN           hmm.hmm_device_private.open_close ...",
        "#            OK  hmm.hmm_device_private.open_close",
        "ok 1 hmm.hmm_device_private.open_close",
        "#  RUN           hmm.hmm_device_private.migrate ...",
        "[   12.0] BUG: kernel NULL pointer dereference, address: 0000000000000000",
    ])
    s = kselftest.parse(text)
    assert [t.status for t in s.tests] == ["passed", "incomplete"]
    assert s.incomplete == 3      # the one under way and the two never started
    assert "3 did not finish" in s.summary()


def test_failure_with_kernel_lines_interleaved():
    text = "\n".join([
        "#  RUN           hmm.hmm_device_private.migrate_fault ...",
        "[    5.1] random: crng init done",
        "# hmm-tests.c:1100:migrate_fault:Expected ret (-12) == 0 (0)",
        "# migrate_fault: Test terminated by assertion",
        "#          FAIL  hmm.hmm_device_private.migrate_fault",
        "not ok 14 hmm.hmm_device_private.migrate_fault",
    ])
    s = kselftest.parse(text)
    t = s.tests[0]
    assert t.status == "failed" and t.number == 14
    assert "Expected ret (-12)" in t.reason and "crng" not in t.reason


def test_real_6_12_run_thp_always_no_coherent():
    # a real run of 6.12.117's hmm-tests, THP "always" and no DEVICE_COHERENT memory
    s = kselftest.parse((FIX / "hmm-tests-6.12-thp-always-no-coherent.txt").read_text())
    assert s.planned == 58 and len(s.tests) == 58
    assert s.totals == {"pass": 26, "fail": 3, "xfail": 0, "xpass": 0, "skip": 29, "error": 0}
    assert (s.passed, s.failed, s.skipped) == (26, 3, 29)
    assert not any(t.harness_passed for t in s.tests)        # 6.12's harness reports skips
    assert {t.name for t in s.tests if t.status == "failed"} == {
        "hmm.hmm_device_private.exclusive", "hmm.hmm_device_private.exclusive_mprotect",
        "hmm.hmm_device_private.exclusive_cow"}
    t = next(t for t in s.tests if t.name == "hmm.hmm_device_private.exclusive")
    assert t.reason.startswith("# tools/testing/selftests/mm/hmm-tests.c:1817:exclusive:"
                               "Expected ret (-16) == 0 (0)")
