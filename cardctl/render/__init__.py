"""Renderers: every record-printing command goes through ``emit`` in one of four formats."""
