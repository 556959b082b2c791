"""Operations: delivering the outbox (webhook, Slack, email) and its configuration."""
