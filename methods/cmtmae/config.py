"""CMT-MAE's own keys. The architecture, ``mask_ratio`` and ``norm_pix_loss`` belong to the budget.

No official code exists: every key below is one of the open choices of the reconstruction (README.md), set to
its most likely reading (README.md, fidelity table).
"""

#: the MIMModel subclass in model.py
model = "CMTMAE"
#: method-specific keys passed to the model's constructor (a budget key here is refused by the harness)
config: dict = dict(
    # ---- the frozen CLIP teacher
    # CLIP file (mim-suite teacher or OpenAI's release). None: the harness supplies it (micro/tiny: the
    # budget's teacher trained by reproduce/clip_teacher_training.py; real data: OpenAI's
    # checkpoints/clip/ViT-B-16.pt)
    teacher_file=None,
    # f^t: 'projected' = ln_post -> proj, the joint-space tokens MILAN regresses (512-d for ViT-B/16);
    # 'tokens' = open_clip's output tokens (after ln_post, before the projection)
    teacher_target="projected",
    # the block whose CLS->patch attention (head-averaged) guides the mask, teacher and momentum student alike
    attention_block=-1,
    # ---- the two stages: alpha is a pure function of the global step
    alpha=0.5,  # stage 2's alpha: A^c = (1 - alpha) A^t + alpha A^s; loss = (1 - alpha) L_t + alpha L_s
    alpha_schedule="step",  # 'step': 0 in stage 1, then alpha; 'linear': 0 -> alpha over stage 2
    stage1_fraction=0.25,  # stage 1 (alpha = 0, teacher-only) = this share of the planned steps
    loss_alpha=None,  # None: the loss uses the masking alpha; a number: stage 2's loss alpha (same schedule)
    # ---- masking from the attention map
    mask_source="collaborative",  # 'collaborative' (A^c), 'teacher' (A^t), 'student' (A^s), 'random' (MAE)
    mask_direction="keep_high",  # 'keep_high': high-attention patches stay visible (MILAN); 'mask_high'
    mask_sampling="sample",  # 'sample': without replacement, p ~ A (MILAN); 'topk': deterministic
    # ---- targets and loss
    target="both",  # 'both' (collaborative), 'teacher' (f^t only), 'student' (f^s only), 'pixels' (MAE)
    feature_loss="cosine",  # 'cosine': 2 - 2 cos (MILAN); 'mse': MSE to layer-normalised targets
    loss_on="masked",  # 'masked' patches only, or 'all' patches (MILAN averages over every token)
    # ---- the momentum student
    # 'budget': the harness's teacher_momentum (the budget's EMA rule) when set, else `momentum`;
    # 'constant': always `momentum`; 'cosine': `momentum` -> 1 over the run (DINO)
    momentum_schedule="budget",
    momentum=0.996,
    export="student",  # the encoder written to the encoder file: 'student' or 'momentum'
)
#: named variants: name -> overrides of the keys above; each becomes its own row in every table
variants: dict[str, dict] = {
    # alpha = 0 throughout: CLIP-guided masking and CLIP targets only, no momentum student (MILAN-like)
    "cmtmae-teacher-only": dict(alpha=0.0),
}
#: Table 5's ablations (reproduce/table5.py): built and pretrained by name like variants, but not part of the
#: default method list of the other tables. Each changes one choice of the default (collaborative masking,
#: both targets, alpha 0.5, stage 1 = 25 % of the run); alpha = 0 and stage 1 = the whole run are the
#: teacher-only variant above.
ablations: dict[str, dict] = {
    # masking source (the target stays collaborative)
    "cmtmae-mask-random": dict(mask_source="random"),
    "cmtmae-mask-teacher": dict(mask_source="teacher"),
    "cmtmae-mask-student": dict(mask_source="student"),
    # target (the masking stays collaborative)
    "cmtmae-target-pixels": dict(target="pixels"),
    "cmtmae-target-teacher": dict(target="teacher"),
    "cmtmae-target-student": dict(target="student"),
    # stage 2's alpha
    "cmtmae-alpha-0.25": dict(alpha=0.25),
    "cmtmae-alpha-0.75": dict(alpha=0.75),
    "cmtmae-alpha-1": dict(alpha=1.0),
    # stage-1 length (share of the planned steps)
    "cmtmae-stage1-0": dict(stage1_fraction=0.0),
    "cmtmae-stage1-0.5": dict(stage1_fraction=0.5),
}
