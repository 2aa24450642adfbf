"""The REST API and the dashboard, over the same services as the command line."""
