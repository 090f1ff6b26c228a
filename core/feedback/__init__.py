"""The feedback loop: ratings and corrections, the regression set and its drift check, local metrics,
alerts, and what IT receives of them (never a word of anyone's work)."""
