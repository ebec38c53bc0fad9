"""Contracts between stages: canonical records, their Arrow schemas, stable ids. No Beam here."""
