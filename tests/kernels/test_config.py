"""Config fragments: parsing, merging, the dropped-option check, and cache keys."""
import pytest

from migfuzz.kernels import config as kc
from migfuzz.kernels.build import cache_key


def test_parse_fragment_values_comments_and_not_set():
    opts = kc.parse_fragment("# c\n\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=8\n"
                             "CONFIG_D=y  # optional: not on every release\nCONFIG_A=n\n")
    assert opts["CONFIG_A"].value == "n"          # the last line wins
    assert opts["CONFIG_B"].value == "n"
    assert opts["CONFIG_C"].value == "8"
    assert opts["CONFIG_D"].optional and not opts["CONFIG_C"].optional


def test_parse_fragment_rejects_garbage():
    with pytest.raises(kc.ConfigError, match="frag:2"):
        kc.parse_fragment("CONFIG_A=y\nNOT A LINE\n", source="frag")


def test_repo_fragments_parse_and_have_the_lane_options():
    base = kc.merge(kc.fragment_texts("base"))
    for name in ("CONFIG_64BIT", "CONFIG_SMP", "CONFIG_ZONE_DEVICE", "CONFIG_DEVICE_PRIVATE",
                 "CONFIG_TEST_HMM", "CONFIG_DEBUG_VM", "CONFIG_DETECT_HUNG_TASK",
                 "CONFIG_SERIAL_8250_CONSOLE", "CONFIG_BLK_DEV_INITRD", "CONFIG_DEVTMPFS",
                 "CONFIG_TRANSPARENT_HUGEPAGE", "CONFIG_PROC_PAGE_MONITOR", "CONFIG_GUP_TEST"):
        assert base[name].value == "y", name
    kasan = kc.merge(kc.fragment_texts("kasan"))
    assert kasan["CONFIG_KASAN"].value == "y" and kasan["CONFIG_TEST_HMM"].value == "y"
    assert "CONFIG_KASAN" not in base


def test_merge_later_fragment_overrides():
    m = kc.merge([("a", "CONFIG_X=y\nCONFIG_Y=y\n"), ("b", "# CONFIG_X is not set\n")])
    assert m["CONFIG_X"].value == "n" and m["CONFIG_Y"].value == "y"
    assert kc.render(m) == "# CONFIG_X is not set\nCONFIG_Y=y\n"


def test_dropped_lists_what_kconfig_did_not_keep():
    wanted = kc.parse_fragment("CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=n\nCONFIG_D=y # optional\n"
                               "CONFIG_E=y\nCONFIG_F=30\n")
    resolved = kc.parse_dotconfig("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\n"
                                  "CONFIG_F=120\n")
    lost = kc.dropped(wanted, resolved)
    assert lost == [("CONFIG_B", "y", "n"), ("CONFIG_C", "n", "y"), ("CONFIG_E", "y", "absent"),
                    ("CONFIG_F", "30", "120")]
    assert "CONFIG_E=y (got absent)" in kc.format_dropped(lost)
    assert kc.dropped(wanted, {"CONFIG_A": "y", "CONFIG_B": "y", "CONFIG_E": "y",
                               "CONFIG_F": "30"}) == []


def test_unknown_config_name():
    with pytest.raises(kc.ConfigError, match="unknown config"):
        kc.fragment_texts("nope")


def test_config_hash_ignores_comments_not_values():
    a = [("base", "# one\nCONFIG_A=y\nCONFIG_B=y\n")]
    b = [("base", "CONFIG_B=y\n# two\n\nCONFIG_A=y\n")]
    c = [("base", "CONFIG_A=y\nCONFIG_B=n\n")]
    assert kc.config_hash(a) == kc.config_hash(b) != kc.config_hash(c)


def test_cache_key_same_inputs_same_key_any_change_another():
    frag = kc.fragment_texts("base")
    k = cache_key("6.1", "6.1.192-3", "base", frag)
    assert k == cache_key("6.1", "6.1.192-3", "base", kc.fragment_texts("base"))
    assert k.startswith("6.1-6.1.192-3-base-")
    others = {cache_key("6.1", "6.1.192-4", "base", frag),
              cache_key("6.12", "6.1.192-3", "base", frag),
              cache_key("6.1", "6.1.192-3", "kasan", frag),
              cache_key("6.1", "6.1.192-3", "base", frag + [("x", "CONFIG_NEW=y\n")]),
              cache_key("6.1", "6.1.192-3", "base",
                        [(n, t.replace("CONFIG_DEBUG_VM=y", "# CONFIG_DEBUG_VM is not set"))
                         for n, t in frag])}
    assert k not in others and len(others) == 5
