"""Command modules; each defines register(subparsers)."""
