"""``/metrics`` in the Prometheus text exposition format (version 0.0.4).

Per campaign and worker the executions, coverage and corpus size of the worker's last stats
sample, and the worker's own crashes and bugs (from the crashes it stored: summing crashes
by worker gives the campaign's); per campaign the corpus entries and crashes stored; bugs by
kind and status (overall and per campaign). "Bugs" are distinct bugs with duplicates left
out, as ``migfuzz bugs`` lists them; duplicates have metrics of their own.
``METRICS`` is the single list of what is exported: the Grafana definition in
dashboards/grafana/ may use these names and nothing else (a test checks it).
"""
from __future__ import annotations

from typing import Any

# name -> (type, help)
METRICS: dict[str, tuple[str, str]] = {
    "migfuzz_campaign_info": (
        "gauge", "Always 1; labels name a campaign, its variant and status."),
    "migfuzz_campaign_start_time_seconds": (
        "gauge", "When the campaign started (seconds since the epoch)."),
    "migfuzz_executions_total": (
        "counter", "Executions run by a worker (its last stats sample)."),
    "migfuzz_coverage": (
        "gauge", "Coverage features a worker's loop knows, with what other workers shared "
        "with it (its last stats sample)."),
    "migfuzz_corpus_size": (
        "gauge", "Corpus size a worker's loop holds, with entries other workers shared "
        "(its last stats sample)."),
    "migfuzz_worker_corpus_entries": (
        "gauge", "Corpus entries this worker stored (its own; the sum over a campaign's "
        "workers is migfuzz_corpus_entries)."),
    "migfuzz_worker_coverage_added": (
        "gauge", "Coverage features this worker's corpus entries added first (its own; the "
        "sum over a campaign's workers is the campaign's coverage)."),
    "migfuzz_worker_bugs": (
        "gauge", "Distinct bugs (duplicates left out) among the crashes this worker stored; "
        "a bug two workers hit counts for each (migfuzz_campaign_bugs counts it once)."),
    "migfuzz_worker_crashes_total": (
        "counter", "Crash records this worker stored (its own; the sum over a campaign's "
        "workers is migfuzz_crashes_stored)."),
    "migfuzz_worker_last_sample_time_seconds": (
        "gauge", "Time of a worker's last stats sample (seconds since the epoch)."),
    "migfuzz_corpus_entries": (
        "gauge", "Corpus entries stored for a campaign."),
    "migfuzz_crashes_stored": (
        "gauge", "Crash records stored for a campaign."),
    "migfuzz_bugs": (
        "gauge", "Bugs (distinct, duplicates left out, as 'migfuzz bugs' lists them) by kind "
        "and triage status, all campaigns."),
    "migfuzz_duplicate_bugs": (
        "gauge", "Bugs filed as duplicates of another bug, by kind, all campaigns."),
    "migfuzz_campaign_bugs": (
        "gauge", "Bugs (duplicates left out) a campaign has hit, by kind and triage status."),
    "migfuzz_campaign_duplicate_bugs": (
        "gauge", "Duplicate bugs a campaign has hit, by kind."),
}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _esc(v: Any) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    return repr(float(v))


def render(snap: dict[str, Any]) -> str:
    samples: dict[str, list[tuple[dict, Any]]] = {m: [] for m in METRICS}

    def add(name: str, labels: dict, value: Any) -> None:
        samples[name].append((labels, value))

    for c in snap["campaigns"]:
        add("migfuzz_campaign_info", {"campaign": c["name"], "variant": c["variant"],
                                      "status": c["status"]}, 1)
        add("migfuzz_campaign_start_time_seconds", {"campaign": c["name"]}, c["started_at"])
        add("migfuzz_corpus_entries", {"campaign": c["name"]}, c["corpus"])
        add("migfuzz_crashes_stored", {"campaign": c["name"]}, c["crashes"])
    for w in snap["workers"]:
        lab = {"campaign": w["campaign"], "worker": w["worker"]}
        add("migfuzz_executions_total", lab, w["executions"])
        add("migfuzz_coverage", lab, w["coverage"])
        add("migfuzz_corpus_size", lab, w["corpus_size"])
        add("migfuzz_worker_corpus_entries", lab, w["corpus_added"])
        add("migfuzz_worker_coverage_added", lab, w["coverage_added"])
        add("migfuzz_worker_bugs", lab, w["bugs"])
        add("migfuzz_worker_crashes_total", lab, w["crashes"])
        add("migfuzz_worker_last_sample_time_seconds", lab, w["t"])
    for b in snap["bugs"]:
        add("migfuzz_bugs", {"kind": b["kind"], "status": b["status"]}, b["count"])
    for b in snap["duplicates"]:
        add("migfuzz_duplicate_bugs", {"kind": b["kind"]}, b["count"])
    for b in snap["campaign_bugs"]:
        add("migfuzz_campaign_bugs", {"campaign": b["campaign"], "kind": b["kind"],
                                      "status": b["status"]}, b["count"])
    for b in snap["campaign_duplicates"]:
        add("migfuzz_campaign_duplicate_bugs", {"campaign": b["campaign"],
                                                "kind": b["kind"]}, b["count"])
    out = []
    for name, (typ, help_) in METRICS.items():
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {typ}")
        for labels, value in samples[name]:
            lab = ",".join(f'{k}="{_esc(v)}"' for k, v in labels.items())
            out.append(f"{name}{{{lab}}} {_num(value)}")
    return "\n".join(out) + "\n"
