"""Kernel config fragments kept in the repo (``kernels/configs/*.config``): parsing, merging,
hashing, and the check that Kconfig kept every option a fragment asks for.

A fragment is a list of ``CONFIG_X=value`` lines (``# comments`` and blank lines ignored).
``CONFIG_X=n`` means "must end up off". A line followed by ``# optional`` may be dropped by
a release whose Kconfig lacks the symbol without failing the build. The build starts from
``make tinyconfig``, appends the merged fragment to ``.config`` and runs ``make olddefconfig``;
:func:`dropped` then compares the result with what was asked for.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
# What every named config is made of, in order; later fragments override earlier ones.
CONFIGS: dict[str, tuple[str, ...]] = {
    "base": ("base",),
    "kasan": ("base", "kasan"),
}
# Kernel command line a config needs at boot (page_owner and debug_pagealloc are built in but
# off until asked for); kernels.lane adds it, guest programs should too (boot_append()).
BOOT_APPEND: dict[str, str] = {
    "base": "",
    "kasan": "page_owner=on debug_pagealloc=on",
}
# The recipe the fragments are applied on; part of the cache key.
STARTING_POINT = "tinyconfig"

_LINE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(\S+)\s*(#.*)?$")
_NOT_SET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


class ConfigError(Exception):
    """A fragment that cannot be parsed, an unknown config name, or options Kconfig dropped."""


@dataclass(frozen=True)
class Option:
    name: str
    value: str           # "y", "n", "m", a number or a quoted string
    optional: bool = False


def parse_fragment(text: str, source: str = "<fragment>") -> dict[str, Option]:
    """Parse fragment text into {CONFIG_NAME: Option}; the last line for a name wins."""
    out: dict[str, Option] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        m = _NOT_SET.match(line)
        if m:
            out[m.group(1)] = Option(m.group(1), "n")
            continue
        if line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            raise ConfigError(f"{source}:{lineno}: not a CONFIG_X=value line: {raw!r}")
        comment = (m.group(3) or "").lstrip("#").strip()
        out[m.group(1)] = Option(m.group(1), m.group(2), optional=comment.startswith("optional"))
    return out


def boot_append(config: str) -> str:
    return BOOT_APPEND.get(config, "")


def fragment_names() -> list[str]:
    return sorted(CONFIGS)


def fragment_texts(config: str, config_dir: Path = CONFIG_DIR) -> list[tuple[str, str]]:
    """[(fragment name, text)] for a named config, in application order."""
    if config not in CONFIGS:
        raise ConfigError(f"unknown config {config!r} (choose from {', '.join(sorted(CONFIGS))})")
    out = []
    for name in CONFIGS[config]:
        path = config_dir / f"{name}.config"
        if not path.is_file():
            raise ConfigError(f"config fragment missing: {path}")
        out.append((name, path.read_text()))
    return out


def merge(fragments: list[tuple[str, str]]) -> dict[str, Option]:
    """Merge fragments in order (a later fragment overrides an earlier one's option)."""
    merged: dict[str, Option] = {}
    for name, text in fragments:
        merged.update(parse_fragment(text, source=name))
    return merged


def render(options: dict[str, Option]) -> str:
    """The merged fragment as .config lines, to append before ``make olddefconfig``."""
    lines = []
    for opt in options.values():
        if opt.value == "n":
            lines.append(f"# {opt.name} is not set")
        else:
            lines.append(f"{opt.name}={opt.value}")
    return "\n".join(lines) + "\n"


def config_hash(fragments: list[tuple[str, str]]) -> str:
    """Hash of what determines the .config: the starting point and the merged options.

    Comments and the order of unrelated lines do not change it; any option value does."""
    merged = merge(fragments)
    canon = STARTING_POINT + "\n" + "\n".join(
        f"{k}={merged[k].value}" for k in sorted(merged))
    return hashlib.sha256(canon.encode()).hexdigest()


def parse_dotconfig(text: str) -> dict[str, str]:
    """A resolved ``.config`` as {CONFIG_NAME: value}; ``is not set`` lines give ``n``."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _NOT_SET.match(line.strip())
        if m:
            out[m.group(1)] = "n"
            continue
        m = _LINE.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def dropped(wanted: dict[str, Option], resolved: dict[str, str]) -> list[tuple[str, str, str]]:
    """Options Kconfig did not keep: [(name, wanted, got)], ``got`` is ``absent`` for a symbol
    the release does not have. Optional options are not reported."""
    out = []
    for name, opt in wanted.items():
        got = resolved.get(name, "absent" if opt.value != "n" else "n")
        if opt.value == "n":
            ok = got in ("n", "absent")
        else:
            ok = got == opt.value
        if not ok and not opt.optional:
            out.append((name, opt.value, got))
    return out


def format_dropped(items: list[tuple[str, str, str]]) -> str:
    return ", ".join(f"{n}={w} (got {g})" for n, w, g in items)
