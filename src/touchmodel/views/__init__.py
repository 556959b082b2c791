"""Read models for the interfaces: what the API and the dashboard show, as plain data.

The REST API serializes these and the dashboard renders them; neither
queries the state store itself, so both always show the same numbers.
"""
