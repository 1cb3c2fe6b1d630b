"""``/metrics`` in the Prometheus text exposition format (version 0.0.4).

Per campaign and worker the counters of the worker's last stats sample; per campaign the
corpus entries and crashes stored; bugs by kind and status (overall and per campaign).
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
        "gauge", "Coverage features a worker has seen (its last stats sample)."),
    "migfuzz_corpus_size": (
        "gauge", "Corpus size a worker reported (its last stats sample)."),
    "migfuzz_buckets": (
        "gauge", "Distinct finding signatures a worker has seen (its last stats sample)."),
    "migfuzz_worker_crashes_total": (
        "counter", "Crashes a worker has seen (its last stats sample)."),
    "migfuzz_worker_last_sample_time_seconds": (
        "gauge", "Time of a worker's last stats sample (seconds since the epoch)."),
    "migfuzz_corpus_entries": (
        "gauge", "Corpus entries stored for a campaign."),
    "migfuzz_crashes_stored": (
        "gauge", "Crash records stored for a campaign."),
    "migfuzz_bugs": (
        "gauge", "Bugs (distinct signatures) by kind and triage status, all campaigns."),
    "migfuzz_campaign_bugs": (
        "gauge", "Bugs a campaign has hit, by kind and triage status."),
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
        add("migfuzz_buckets", lab, w["buckets"])
        add("migfuzz_worker_crashes_total", lab, w["crashes"])
        add("migfuzz_worker_last_sample_time_seconds", lab, w["t"])
    for b in snap["bugs"]:
        add("migfuzz_bugs", {"kind": b["kind"], "status": b["status"]}, b["count"])
    for b in snap["campaign_bugs"]:
        add("migfuzz_campaign_bugs", {"campaign": b["campaign"], "kind": b["kind"],
                                      "status": b["status"]}, b["count"])
    out = []
    for name, (typ, help_) in METRICS.items():
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {typ}")
        for labels, value in samples[name]:
            lab = ",".join(f'{k}="{_esc(v)}"' for k, v in labels.items())
            out.append(f"{name}{{{lab}}} {_num(value)}")
    return "\n".join(out) + "\n"
