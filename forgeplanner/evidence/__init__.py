"""Evidence records: a plan with measured runs and verdicts, sealed with SHA-256 digests."""
