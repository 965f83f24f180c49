"""What every protocol returns, built in one place with the same field names.

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

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


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
