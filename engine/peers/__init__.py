"""Adapters that run real peer engines on our inputs and normalize their records.

Each adapter imports its peer lazily, so the engine works without any peer installed.
"""
