"""The migfuzz command line: the composition root wiring fuzzer, corpus, db and workers."""
