"""The analyses: pure functions of embeddings (and, for pruning, of a similarity oracle)."""
