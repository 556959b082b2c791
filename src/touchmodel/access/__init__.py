"""Who may do what: API tokens, ingestion write keys and their roles."""
