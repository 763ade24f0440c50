"""Composition: the only layer that imports engine, brokers, strategies and replay together."""
