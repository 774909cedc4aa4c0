"""The distributed runtime: which checkpoints and examples to attack, and the Ray actors that attack them.

``checkpoints`` finds and vets checkpoints, ``evaluation`` plans shards (``shards``) and runs them
on the ``pool`` of ``worker`` actors; ``ray_compat`` is the one place that touches Ray internals.
The models that go into attack keys are hashed by ``attack_workers.attack.identity``.
"""
