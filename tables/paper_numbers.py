"""Load and check ``paper_numbers.yaml``: the numbers the papers report, each with its source and protocol.

The schema is described at the top of the yaml file. Every problem is one line naming the entry (its ``id``,
or its position when the id itself is missing), so a typo in the yaml is found before a table quotes it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PATH = Path(__file__).resolve().parent / "paper_numbers.yaml"
# libyaml's safe loader when PyYAML was built with it (10x faster than the pure-Python one); both are safe.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SCHEMA_VERSION = 1

# The protocol vocabulary of quoted numbers, with the metrics each reports. The names say *which* protocol,
# because numbers under different protocols (ViTDet vs Li et al. 2021 Mask R-CNN) are not comparable.
PROTOCOLS: dict[str, tuple[str, ...]] = {
    "in1k_finetune": ("top1", "top5"),
    "in1k_linear_probe": ("top1", "top5"),
    "in1k_knn": ("top1", "top5"),
    "ade20k_upernet": ("mIoU", "aAcc"),
    "coco_maskrcnn_vitdet": ("AP_box", "AP_mask", "AP50_box", "AP75_box", "AP50_mask", "AP75_mask"),
    "coco_maskrcnn_fpn_li2021": ("AP_box", "AP_mask", "AP50_box", "AP75_box", "AP50_mask", "AP75_mask"),
    "davis2017_label_propagation": ("JF_mean", "J_mean", "F_mean"),
}

# Human-readable protocol names, used in table notes and RESULTS.md.
PROTOCOL_TITLES: dict[str, str] = {
    "in1k_finetune": "ImageNet-1K end-to-end fine-tuning",
    "in1k_linear_probe": "ImageNet-1K linear probe",
    "in1k_knn": "ImageNet-1K k-NN",
    "ade20k_upernet": "ADE20K, UperNet",
    "coco_maskrcnn_vitdet": "COCO, Mask R-CNN with ViTDet",
    "coco_maskrcnn_fpn_li2021": "COCO, Mask R-CNN + FPN on a plain ViT (Li et al. 2021)",
    "davis2017_label_propagation": "DAVIS-2017 val, label propagation on frozen features",
}

# How each number was read (the yaml's `tag`): in the paper's own text, the official repository's README or
# code, Papers-with-Code's copy of the paper's table; or only through a third-party summary (3P), from memory
# (REC) or by inference (INF). Numbers read only through these last three cannot be verified.
TAGS = ("PAPER", "README", "CODE", "PwC", "3P", "REC", "INF")
UNVERIFIED_TAGS = frozenset({"3P", "REC", "INF"})

_REQUIRED = ("id", "method", "paper", "model", "epochs", "protocol", "metric", "value", "source", "tag")
_REQUIRED_BOOL = ("verified", "headline")
_OPTIONAL = ("img_size", "variant", "spread", "note")
_PAPER_KEYS = ("short", "title", "arxiv", "venue", "url", "method")


class PaperNumbersError(ValueError):
    """A malformed ``paper_numbers.yaml`` (the message names the file and the entry)."""


@dataclass(frozen=True)
class Paper:
    key: str
    short: str
    title: str
    arxiv: str | None
    venue: str
    url: str
    method: str | None  # the method the paper proposes, or None (e.g. a re-implementation's README)

    @property
    def citation(self) -> str:
        return f"{self.short} (arXiv {self.arxiv})" if self.arxiv else f"{self.short} ({self.venue})"


@dataclass(frozen=True)
class PaperNumber:
    id: str
    method: str
    paper: Paper
    model: str
    epochs: int | None
    protocol: str
    metric: str
    value: float
    source_url: str
    source_where: str
    tag: str
    verified: bool
    headline: bool
    img_size: int = 224
    variant: str | None = None
    spread: dict[str, Any] = field(default_factory=dict)
    note: str | None = None

    @property
    def epochs_label(self) -> str:
        return f"{self.epochs} ep" if self.epochs is not None else "ep n/s"


@dataclass(frozen=True)
class PaperNumbers:
    papers: dict[str, Paper]
    numbers: tuple[PaperNumber, ...]
    path: Path

    def select(self, **filters: Any) -> list[PaperNumber]:
        """Entries whose attributes equal every filter (e.g. method='mae', protocol='in1k_finetune')."""
        return [n for n in self.numbers if all(getattr(n, k) == v for k, v in filters.items())]

    def headline(
        self, method: str, protocol: str, metric: str, model: str = "ViT-B/16", img_size: int = 224
    ) -> PaperNumber | None:
        """The number the tables quote for this setting, from the method's own paper, or None."""
        found = self.select(
            method=method, protocol=protocol, metric=metric, model=model, img_size=img_size, headline=True
        )
        return found[0] if found else None  # the loader guarantees at most one


def _fail(path: Path, where: str, message: str) -> PaperNumbersError:
    return PaperNumbersError(f"{path}: {where}: {message}")


def _load_papers(raw: Any, path: Path) -> dict[str, Paper]:
    if not isinstance(raw, dict) or not raw:
        raise _fail(path, "papers", "must be a non-empty mapping of paper keys")
    papers = {}
    for key, entry in raw.items():
        if not isinstance(entry, dict):
            raise _fail(path, f"paper '{key}'", "must be a mapping")
        keys = set(entry)
        if missing := [k for k in _PAPER_KEYS if k not in keys]:
            raise _fail(path, f"paper '{key}'", f"lacks {', '.join(missing)}")
        if unknown := sorted(keys - set(_PAPER_KEYS)):
            raise _fail(path, f"paper '{key}'", f"unknown keys {unknown}")
        for k in ("short", "title", "venue", "url"):
            if not isinstance(entry[k], str) or not entry[k]:
                raise _fail(path, f"paper '{key}'", f"'{k}' must be a non-empty string")
        if entry["arxiv"] is not None and not isinstance(entry["arxiv"], str):
            raise _fail(path, f"paper '{key}'", "'arxiv' must be a quoted string id or null")
        papers[key] = Paper(key=key, **entry)
    return papers


def _check_number(entry: Any, index: int, papers: dict[str, Paper], path: Path) -> PaperNumber:
    if not isinstance(entry, dict):
        raise _fail(path, f"numbers[{index}]", "must be a mapping")
    where = f"entry '{entry['id']}'" if isinstance(entry.get("id"), str) else f"numbers[{index}]"
    keys = set(entry)
    if missing := [k for k in (*_REQUIRED, *_REQUIRED_BOOL) if k not in keys]:
        raise _fail(path, where, f"lacks {', '.join(missing)}")
    if unknown := sorted(keys - set(_REQUIRED) - set(_REQUIRED_BOOL) - set(_OPTIONAL)):
        raise _fail(path, where, f"unknown keys {unknown}")
    if entry["paper"] not in papers:
        raise _fail(path, where, f"paper '{entry['paper']}' is not in 'papers'")
    if entry["protocol"] not in PROTOCOLS:
        raise _fail(path, where, f"protocol '{entry['protocol']}' is not one of {sorted(PROTOCOLS)}")
    if entry["metric"] not in PROTOCOLS[entry["protocol"]]:
        raise _fail(
            path, where, f"metric '{entry['metric']}' is not one of {list(PROTOCOLS[entry['protocol']])}"
        )
    value = entry["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(path, where, f"value must be a finite number, got {value!r}")
    if not 0 <= value <= 100:
        raise _fail(path, where, f"value {value} is not a percentage")
    epochs = entry["epochs"]
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= 0):
        raise _fail(path, where, f"epochs must be a positive integer or null, got {epochs!r}")
    source = entry["source"]
    if not isinstance(source, dict) or set(source) != {"url", "where"}:
        raise _fail(path, where, "source must be {url, where}")
    if not str(source["url"]).startswith(("https://", "http://")) or not source["where"]:
        raise _fail(path, where, "source needs an http(s) url and a non-empty 'where' (section/table)")
    if entry["tag"] not in TAGS:
        raise _fail(path, where, f"tag '{entry['tag']}' is not one of {list(TAGS)}")
    for k in _REQUIRED_BOOL:
        if not isinstance(entry[k], bool):
            raise _fail(path, where, f"'{k}' must be true or false")
    if entry["tag"] in UNVERIFIED_TAGS and entry["verified"]:
        raise _fail(path, where, f"tag {entry['tag']} (recalled/inferred/third party) cannot be verified")
    if not entry["verified"] and not entry.get("note"):
        raise _fail(path, where, "an unverified number needs a note saying why")
    paper = papers[entry["paper"]]
    # Tables quote a method's own paper; a baseline quoted by another paper is context, never the headline.
    if entry["headline"] and paper.method != entry["method"]:
        raise _fail(path, where, f"headline number must come from the method's own paper, not '{paper.key}'")
    if entry["headline"] and entry["tag"] in UNVERIFIED_TAGS:
        raise _fail(path, where, f"a {entry['tag']} number cannot be a headline")
    img_size = entry.get("img_size", 224)
    if isinstance(img_size, bool) or not isinstance(img_size, int):
        raise _fail(path, where, f"img_size must be an integer, got {img_size!r}")
    spread = entry.get("spread") or {}
    if spread and (set(spread) != {"std", "n", "over"} or not isinstance(spread["std"], (int, float))):
        raise _fail(path, where, "spread must be {std, n, over}")
    return PaperNumber(
        id=entry["id"],
        method=entry["method"],
        paper=paper,
        model=entry["model"],
        epochs=epochs,
        protocol=entry["protocol"],
        metric=entry["metric"],
        value=float(value),
        source_url=source["url"],
        source_where=str(source["where"]),
        tag=entry["tag"],
        verified=entry["verified"],
        headline=entry["headline"],
        img_size=img_size,
        variant=entry.get("variant"),
        spread=dict(spread),
        note=entry.get("note"),
    )


def _check_unique(numbers: Iterable[PaperNumber], path: Path) -> None:
    ids: set[str] = set()
    headlines: dict[tuple, str] = {}
    for n in numbers:
        if n.id in ids:
            raise _fail(path, f"entry '{n.id}'", "duplicate id")
        ids.add(n.id)
        if n.headline:
            key = (n.method, n.model, n.img_size, n.protocol, n.metric)
            if key in headlines:
                raise _fail(path, f"entry '{n.id}'", f"second headline for {key} (first: '{headlines[key]}')")
            headlines[key] = n.id


def load_paper_numbers(path: str | os.PathLike = DEFAULT_PATH) -> PaperNumbers:
    """Read and check the yaml; raises PaperNumbersError (one line naming the entry) on any problem."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(), Loader=_Loader)
    except FileNotFoundError:
        raise PaperNumbersError(f"{path}: no such file") from None
    except yaml.YAMLError as e:
        raise PaperNumbersError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    if not isinstance(raw, dict) or raw.get("schema_version") != SCHEMA_VERSION:
        raise PaperNumbersError(f"{path}: expected a mapping with schema_version {SCHEMA_VERSION}")
    if unknown := sorted(set(raw) - {"schema_version", "papers", "numbers"}):
        raise PaperNumbersError(f"{path}: unknown top-level keys {unknown}")
    papers = _load_papers(raw.get("papers"), path)
    entries = raw.get("numbers")
    if not isinstance(entries, list) or not entries:
        raise PaperNumbersError(f"{path}: 'numbers' must be a non-empty list")
    numbers = tuple(_check_number(e, i, papers, path) for i, e in enumerate(entries))
    _check_unique(numbers, path)
    return PaperNumbers(papers=papers, numbers=numbers, path=path)
