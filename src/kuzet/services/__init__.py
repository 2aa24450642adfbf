"""The application: one service per job over an audited unit of work (docs/architecture.md)."""
