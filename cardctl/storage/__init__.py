"""Storage layer: models, engine set-up, migrations and the audit chain."""
