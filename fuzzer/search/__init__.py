"""The search on top of the engine: coverage, scenario mutation, the corpus, the
lock-order graph, buckets, minimization and the fuzz loop. Pure Python: no database, no Ray;
a farm worker runs ``loop.FuzzLoop`` as is."""
