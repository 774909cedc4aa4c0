"""The sweep service: Ray Tune + Optuna over VDA's hyperparameters, with attacks pipelined on checkpoints.

    python tune/sweep.py                                   # the embedded default (tune/configs/default.yaml)
    python tune/sweep.py --config tune/configs/optuna.yaml sweep.num_samples=20
    python -m tune.analysis --store results/vda-default/store   # table and plots from a store alone

Modules, one job each: ``config`` (the sweep YAML, validated once), ``space`` (search block ->
Tune domains, sampled values -> ``TrainConfig``), ``search`` (searcher, scheduler, objectives),
``trainable`` (``vda.train.fit`` reporting to Tune), ``pipeline`` (hands finished checkpoints to
the attack pool while trials train), ``analysis`` (table and plots), ``sweep`` (the entry point).
Importing this package starts nothing; only ``sweep.run_sweep`` connects to Ray.
"""
