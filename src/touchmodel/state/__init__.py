"""The state store: runs, decision history, work items, books, touchpoints, outbox."""
