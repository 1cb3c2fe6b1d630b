"""`migfuzz variants` prints its table within 80 columns even when a release turns on a
dozen switches (the separator line was 220 characters wide), and every switch of every
preset still appears in it."""
import subprocess
import sys

from migfuzz.fuzzer.kernel.variants import SWITCH_NAMES, VARIANTS


def test_the_table_fits_80_columns_and_lists_every_switch():
    out = subprocess.run([sys.executable, "-m", "migfuzz", "variants"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    table = out.split("\n\n")[0].splitlines()
    assert max(len(line) for line in table) <= 80, max(table, key=len)
    rows, name = {}, None
    for line in table[2:]:
        if line[:1] != " ":
            name = line.split()[0]
            rows[name] = line.split()[1:]
        else:
            rows[name] += line.split()
    for preset, (sw, _) in VARIANTS.items():
        on = [n for n in SWITCH_NAMES if getattr(sw, n)] or ["-"]
        assert rows[preset] == on, preset
