"""Seed-compatible entry points (``from memory.model_log import log_model_performance``)."""
