"""Training: typed configs, the loop, checkpoints and monitoring (`srgan train`, `plot`, `export`, `interpolate`).

- `config`: `TrainConfig` dataclasses, `load_config(path, overrides)`, `check_resources(config)`.
- `module`: `SRModule`, the networks, losses, EMA and the training step.
- `trainer`: `train(config, out_dir, resume)` and the `Trainer` that runs it.
- `checkpoint`: the training-state file, `export_generator`, `interpolate_generators`.
- `monitor`: progress bar, metrics.jsonl, TensorBoard, plots, sample grids.
- `runtime`: process rank, device, precision, seeds and RNG state.
- `distributed`: data-parallel training under torchrun, one process per GPU.

Nothing is imported here, so `import srgan.train` stays light.
"""
