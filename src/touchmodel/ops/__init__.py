"""Operations: turning decisions into touchpoints the team and automation act on."""
