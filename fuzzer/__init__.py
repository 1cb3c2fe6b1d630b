"""migfuzz engine: an interleaving-controlled model of the kernel's migrate_vma.

Pure Python; never imports the database, Ray or the CLI.
"""

# Bumped whenever a change can alter the trace of a stored input (new yield points,
# different site names, changed semantics). Replay compares it with the input's.
ENGINE_VERSION = "8"
