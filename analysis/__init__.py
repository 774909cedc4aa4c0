"""Analysis: every table, plot and page made from a results store, on top of everything else.

    python -m analysis --store results/vda-default/store            # summary.md/.csv, results.csv, plots/, report.html
    python -m analysis.reproduce --store results/table2-mr-small/store   # the paper's layout over seeds
    python -m analysis.figures --store S --out DIR                       # Figures 3 and 4 over seeds

``tables`` (the per-checkpoint table every surface prints), ``plots`` (ranking and the paper's
figures), ``summary`` (the sweep's files: ``write_report``), ``methods`` (which method,
configuration and seed each checkpoint is), ``reproduce`` (the paper's tables over seeds),
``figures`` (its Figures 3 and 4 over seeds, with intervals and the seed noise),
``verdicts`` (readers' verdicts and the reader-adjusted Att Acc), ``review`` (the blinded sample and
the terminal reader) and ``report`` (the self-contained HTML page with its Review tab).

This package reads the store (``attack_workers.results``) and the sweep's objectives
(``tune.config``); nothing but the command lines (``attack_workers.cli``, ``tune/sweep.py``)
imports it (docs/attacks.md#modules-and-tests; ``tests/test_layers.py`` checks it).
"""
