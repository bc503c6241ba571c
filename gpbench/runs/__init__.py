"""Run folders: the files a run leaves, who may write them, and how they are read and summarised.

The layer below the harness (which writes runs) and the reports (which read them); it imports
neither. A run folder holds:

- ``run.json``: settings and provenance, ``status`` (``running``; ``complete``; ``writing``
  while a complete run replaces the folder's run) and ``episodes`` (the count, once complete).
- ``episodes.jsonl``: one finished episode a line, appended and flushed as each one finishes.
- ``inflight.jsonl``: while ``gpbench eval`` runs, the answered turns of the episodes still in
  flight, appended after every backend call. A resume replays them, so a killed run loses at
  most the turn in progress. Compacted as episodes finish, removed before the run is complete.
- ``.lock``: the writer lock.

Modules:

- :mod:`gpbench.runs.folder`   the file names and statuses, provenance, ``--meta`` values
- :mod:`gpbench.runs.lock`     one writer at a time (:class:`~gpbench.runs.lock.RunLock`)
- :mod:`gpbench.runs.read`     reading a run, every line checked against its run.json
- :mod:`gpbench.runs.summary`  the summary of a run's episodes (rates, intervals, statuses)

Writing a run is the harness's (:mod:`gpbench.harness.writer`).
"""
