"""Downstream protocols on the exported encoder.

One sub-package per benchmark: ``in1k/`` (linear probe, fine-tune, k-NN), ``ade20k/`` (mmsegmentation
UperNet), ``coco/`` (mmdet Mask R-CNN) and ``davis/`` (label propagation). They read an encoder only through
``methods.backbone`` and the exported checkpoint format, never a method folder's internals (a method's own
evaluation recipe, its optional ``recipes.py``, is found by ``recipe.py``), and return one result each
(``result.py``), which ``reproduce`` writes as a record (``tables.records``). This layer imports ``methods``
and ``tables``, never ``reproduce`` (``tests/test_architecture.py``).

What the protocols share: ``recipe.py`` (a budget section -> the checked values a run uses), ``result.py``
(the result every protocol returns), ``mm_run.py`` (mmengine runs: device check, the guarding hook,
train-then-test), ``progress.py`` (progress bars), ``optim.py`` (layer decay, LARS, the lr schedule),
``backbone.py`` (the ViT as an mm backbone) and ``lazy.py`` (package exports resolved on first use).
"""
