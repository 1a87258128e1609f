"""The results store and what a run's record holds, used by :mod:`cvbench.run` (which records
runs) and :mod:`cvbench.bench` (which reads them), and owned by neither.

- :mod:`cvbench.store.record`: the record's fields, the config hash, the run-specific config
  keys, a new record from a run's config.
- :mod:`cvbench.store.database`: the SQLite file, safe with several writers; reaping of dead
  runs; opening the store from a config or the environment.
- :mod:`cvbench.store.recorded`: a run's record started once and ended once.
- :mod:`cvbench.store.faults`: a full disk, an I/O error, a lock held too long, a read-only,
  corrupt or foreign file, each told apart in one line naming the file.
"""
