"""Pandera models of tradegap's tables, one per artifact."""
