"""Support code the engine stands on: errors, paths, atomic writes, caches, the job queue, progress, limits, the
CPU and network facts, the offline assets; none of it knows about models."""
