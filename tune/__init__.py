"""The sweep service: Ray Tune + Optuna over VDA's hyperparameters, with attacks pipelined on checkpoints.

    python tune/sweep.py                                   # the embedded default (tune/configs/default.yaml)
    python tune/sweep.py --config tune/configs/optuna.yaml sweep.num_samples=20
    python -m analysis --store results/vda-default/store        # table and plots from a store alone

Modules, one job each: ``config`` (the sweep YAML, validated once), ``space`` (search block ->
Tune domains, sampled values -> ``TrainConfig``), ``search`` (searcher, scheduler, objectives),
``trainable`` (``vda.train.fit`` reporting to Tune), ``pipeline`` (hands finished checkpoints to
the attack pool while trials train), ``sweep`` (the entry point). Tables and plots are the top-level
``analysis`` package's, which only ``sweep`` imports.
Importing this package starts nothing; only ``sweep.run_sweep`` connects to Ray.
"""
