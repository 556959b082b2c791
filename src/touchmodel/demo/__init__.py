"""Seeded demo data that follows the data contract (docs/data-contract.md)."""
