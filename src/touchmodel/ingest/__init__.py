"""Segment-compatible event ingestion: parse and validate, store durably, feed the run."""
