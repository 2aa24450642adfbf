"""Frames turned into decisions, per camera, with no database: faces and traffic."""
