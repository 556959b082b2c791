"""Operations: turning decisions into state, work, books, touchpoints and messages."""
