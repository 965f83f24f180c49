"""What every protocol is given (``ProtocolInputs``) and what it returns (``ProtocolResult``), each built in
one place with the same field names for every protocol.

    result = run_linear_probe(ProtocolInputs(encoder, budget_cfg, imagenet_root, work_dir, seed=1))

    return ProtocolResult(
        PROTOCOL, seed, metrics, recipe=r, load_report=report, timings=timings, data=data,
        world_size=1, batch_size=r["batch_size"], precision="fp32", device=str(device),
        final=FinalStep(epoch=r["epochs"], train_loss=history[-1], metrics=metrics),
    ).to_dict()

The dict is what ``reproduce.pipeline.protocol_record`` writes into a record and what the tests read:
``protocol``, ``seed``, ``metrics``, ``final_epoch``, ``recipe`` (every value used, ``name`` included),
``load_report`` (the strict loader's), ``timings``, ``data``, ``provenance_inputs`` (the keyword arguments of
``reproduce.provenance.provenance`` besides the dataset hash), and where a protocol has them ``history``,
``protocol_detail`` and the protocol's own keys (``extra``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tables.records import DEFAULT_RECIPE


@dataclass(frozen=True)
class ProtocolInputs:
    """One protocol run: the encoder file, the budget (the protocol's section holds the recipe), the
    protocol's dataset root, where the run writes, its seed and recipe (``downstream.recipe``), and how it
    runs. ``launcher``, ``log_level`` and ``hooks`` (added to the Runner) matter to the Runner-based protocols
    only (fine-tune, ADE20K, COCO); the k-NN writes no files (``work_dir`` unused)."""

    encoder_path: str | os.PathLike
    budget_cfg: Mapping[str, Any]
    data_root: str | os.PathLike
    work_dir: str | os.PathLike | None = None
    seed: int = 0
    recipe: str = DEFAULT_RECIPE
    progress: bool = True
    device: Any = None  # a torch device or its name; None: CUDA when available (where the protocol allows)
    launcher: str = "none"
    log_level: str = "WARNING"
    hooks: Sequence[Any] = ()  # mmengine hooks

    def where(self) -> tuple[str | os.PathLike, Mapping[str, Any], str | os.PathLike, Any, int, str]:
        """(encoder_path, budget_cfg, data_root, work_dir, seed, recipe): what every protocol starts from."""
        return self.encoder_path, self.budget_cfg, self.data_root, self.work_dir, self.seed, self.recipe


@dataclass(frozen=True)
class FinalStep:
    """Where training ended and what was measured there: ``epoch`` (epoch-based protocols) or ``iteration``
    (iteration-based ones), the last training loss (absent when the protocol does not train) and metrics."""

    epoch: int | None = None
    iteration: int | None = None
    train_loss: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        where = {"epoch": self.epoch, "iteration": self.iteration, "train_loss": self.train_loss}
        return {**{k: v for k, v in where.items() if v is not None}, **self.metrics}


@dataclass
class ProtocolResult:
    protocol: str
    seed: int
    metrics: dict[str, float]
    recipe: dict[str, Any]
    load_report: dict[str, Any]
    timings: dict[str, Any]
    data: dict[str, Any]
    # how the run was made (the provenance inputs; their config is the recipe)
    world_size: int
    batch_size: int
    precision: str
    device: str
    final: FinalStep | None = None
    history: list[float] | None = None
    protocol_detail: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # the protocol's own keys (e.g. DAVIS's results_dir)

    def to_dict(self) -> dict[str, Any]:
        out = dict(
            protocol=self.protocol,
            seed=self.seed,
            metrics=self.metrics,
            final_epoch=None if self.final is None else self.final.to_dict(),
            recipe=self.recipe,
            load_report=self.load_report,
            timings=self.timings,
            data=self.data,
            provenance_inputs=dict(
                config=self.recipe,
                world_size=self.world_size,
                batch_size=self.batch_size,
                precision=self.precision,
                seed=self.seed,
                device=self.device,
            ),
        )
        if self.history is not None:
            out["history"] = self.history
        if self.protocol_detail is not None:
            out["protocol_detail"] = self.protocol_detail
        return {**out, **self.extra}
