"""Datasets, partitions into per-node shards, and their statistics."""
