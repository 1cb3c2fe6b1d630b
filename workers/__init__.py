"""The farm: fuzz loops as Ray actors, one coordinator merging their results."""
