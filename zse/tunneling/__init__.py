"""Tunneling (SE 1.2 D.6): the wire, the sans-IO cores of both sides, and their shells."""
