"""Jobs: the job record, its stores (SQLite, PostgreSQL, Redis), the Huey queue and the
worker that runs queued jobs on a loaded engine.
"""
