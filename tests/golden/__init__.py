"""Golden traces: CI fails on any change to what a method or a protocol computes.

A golden trace is what one method (or protocol) computes on a fixed, test-owned setting, recorded once and
committed: every method and variant (and every Table 5 ablation) pretrains for 24 steps through the real
harness (``reproduce/pretrain.py``: model construction, optimizer and parameter groups, lr schedule,
``set_progress``, ``after_train_step``, the method's mask generator and teachers) on the micro architecture,
32 SynthScenes images, seed 0, one thread, float32 (``tests/golden/budget.py``). The trace holds every logged
value of every step (each ``loss_*`` term, the total, the other logged scalars, the lr) and, at the end,
fingerprints (sum, sum of squares, sum of absolute values, sha256) of the exported encoder file and of
every other network of the model (decoders, EMA and CLIP teachers). The protocols are traced the same way:
the linear probe, the k-NN, the fine-tune, ADE20K (mmseg) and COCO (mmdet) on a fixed random-init encoder, and
the table renderer on a fixed set of records. DAVIS propagation is covered by its parity fixtures
(``tests/test_davis_*.py``).

A current run matches its trace when every value agrees within a relative 1e-5 (losses and logged values)
and every float fingerprint within a relative 1e-6; the sha256 is reported, not required, since another CPU
may sum in another order. A mismatch names the trace, the first step and term that diverged, and both values.

    python -m tests.golden --list                 # the traces
    python -m tests.golden                        # compare every trace with its committed file
    python -m tests.golden --update [--only NAME] # rewrite trace files, printing what moved and by how much

**When to refresh.** Only after a deliberate change of what is computed (a fixed bug, a new default, a changed
recipe), in a commit whose message says what changed and why; the diff of the JSON files is part of the
review. **Never to make a refactor pass**: a refactor changes no number, and a trace that moved under one is
the bug the traces exist to catch. The mutation suite (``tests/golden/mutations.py``, run by
``tests/test_golden.py``) proves the comparison bites: each known fault (mask polarity, loss scope, EMA
direction, random-init substitution, ...) is applied in-process and must fail exactly the traces whose code
it touches.
"""
