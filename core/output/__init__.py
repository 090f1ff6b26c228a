"""What leaves the answer: rendering, the outbox, destinations and their writers, secrets, the audit trail."""
