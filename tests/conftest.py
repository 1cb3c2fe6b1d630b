"""Shared test settings: Ray stays on loopback and sends no usage stats (infra.md)."""
import os

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
