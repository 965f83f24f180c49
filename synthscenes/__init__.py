"""SynthScenes: the embedded, deterministic default dataset.

A seeded generator of scenes of coloured geometric shapes on textured backgrounds, written to disk in the
real dataset layouts (ImageNet class folders, ADE20K's mmsegmentation layout, COCO instances json,
DAVIS-2017), so the loaders that read it are the ones that read the real datasets. Imports nothing else of
the project.
"""
