"""`show` and `run` describe each command in words; a flag that changes what a command
does must appear in its description (a migration that selects device-private pages too
was printed as a plain one)."""
from migfuzz.fuzzer.explain import describe_command


def test_flags_that_change_a_command_are_described():
    plain = describe_command({"op": "migrate", "mm": "A", "start": 0, "npages": 2})
    mixed = describe_command({"op": "migrate", "mm": "A", "start": 0, "npages": 2,
                              "select_device": True})
    assert plain == "migrate A[0,2) to the device"
    assert mixed == "migrate A[0,2) to the device (device-private pages too)"
    assert describe_command({"op": "evict_pfns"}) == "evict_pfns the device by pfn"
    assert describe_command({"op": "hmm_fault", "mm": "A", "start": 1, "npages": 1,
                             "write": True}) == "hmm_fault A[1,2) for write"
    assert describe_command({"op": "pin", "mm": "A", "start": 0, "npages": 1}) == "pin A[0,1)"
