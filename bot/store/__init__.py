"""Redis-backed state: sessions with per-conversation locks, dedupe, rate limits, room settings."""
