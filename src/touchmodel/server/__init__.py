"""The HTTP interfaces: REST API (/api), Segment-compatible ingestion (/v1), dashboard (/).

Every route calls the core (state store, planning, model) and holds no
business logic of its own.
"""
