"""The dashboard: templates, static files and page routes."""
