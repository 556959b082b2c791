"""Operations: running the CS team day to day (CSM books, rebalancing)."""
