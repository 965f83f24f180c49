"""SynthScenes: the embedded, deterministic default dataset.

A seeded generator of scenes of coloured geometric shapes on textured backgrounds, written to disk in the
real dataset layouts (ImageNet class folders, ADE20K's mmsegmentation layout, COCO instances json,
DAVIS-2017), so the loaders that read it are the ones that read the real datasets. Imports nothing else of
the project.

Entry points: ``generate.generate`` / ``generate.ensure`` (write or reuse a dataset from a budget's
``data`` dict), ``config.load_config`` (that dict, validated), ``manifest`` (hashes, ``verify``) and
``bench.bench_generation``.
The pieces: ``shapes`` (the classes and their rasterisation), ``appearance`` (colours, backgrounds, palette),
``scene`` (sampling, rendering, captions), ``video`` (clips), ``layouts/`` (one writer per real layout).
See README.md.
"""
