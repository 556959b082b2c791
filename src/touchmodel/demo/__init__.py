"""Seeded demo data that follows the data contract (SPEC.md §10)."""
