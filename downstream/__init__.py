"""Downstream protocols on the exported encoder.

One sub-package per benchmark: ``in1k/`` (linear probe, fine-tune, k-NN), ``ade20k/`` (mmsegmentation
UperNet), ``coco/`` (mmdet Mask R-CNN) and ``davis/`` (label propagation). They read an encoder only through
``methods.backbone`` and the exported checkpoint format, never a method folder's internals, and write one
result record per run (``tables.records``). Nothing here is built yet beyond this package marker; each
protocol lands with its issue.
"""
