"""Virtual Data Augmentation (Zhou et al., EMNLP 2021) for robust fine-tuning of HF classifiers.

Public entry points: ``vda.config.TrainConfig`` / ``load_config``, ``vda.train.fit``,
``vda.checkpoint.load_checkpoint``, ``vda.data.load_task``. This package never imports Ray,
TextAttack, ``tune`` or ``attack_workers``.
"""

__version__ = "0.1.0"
