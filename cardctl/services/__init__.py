"""Use cases: each function is one thing an operator or cron does, over plain arguments."""
