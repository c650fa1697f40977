"""Training: pseudo-label pretraining (paper §3.4) and MOS fine-tuning (§3.5), as configurations of one loop.

Modules, lower ones first (each imports only those above it; tests/test_training_structure.py checks it):

- ``distributed``, ``losses``, ``transforms``, ``data`` (label tables, MOS tables, :class:`data.MosSplit`),
  ``feature_cache`` — the pieces;
- ``trainer`` — :class:`trainer.Trainer`, the one loop: epochs, learning-rate schedule, best-metric tracking,
  rank-0 checkpoints, atomic resume;
- ``sources`` — what an epoch trains on: images through a DataLoader, or cached backbone features;
- ``mos`` — fine-tuning pieces shared by the loops and the ridge (trainable parameters, optimizer, cached MOS
  trainer);
- ``cached`` — the feature-cache configurations (frozen backbone) of pretraining and fine-tuning;
- ``ridge`` — the ridge MOS head, a closed-form post-fit step after fine-tuning;
- ``pretrain``, ``finetune`` — the public entry points ``pretrain(cfg, labels, out_dir)`` and
  ``finetune(cfg, init_checkpoint, out_dir, data=None)``; the LP-FT polish is a second Trainer on images.

The path of an image through ``attiqa train``: ``config.load_config`` (every value checked) -> ``runner.run``
-> degrade / label (pseudo-labels) -> ``pretrain`` (a Trainer on an ImageBatches or CachedBatches source,
then calibration) -> ``finetune`` (the split read or handed over in memory, a Trainer with five-crop
validation each epoch, then the optional ridge post-fit) -> ``finetune/last.safetensors``.
"""
