"""The one error every dataset loader and root check raises, and the layouts it names."""

from __future__ import annotations

IMAGENET_LAYOUT = "<root>/{train,val}/<class>/*.{JPEG,jpg,png} (ImageNet class folders)"
ADE20K_LAYOUT = (
    "<root>/images/{training,validation}/*.jpg + <root>/annotations/{training,validation}/*.png "
    "(mmseg ADE20K)"
)
COCO_LAYOUT = (
    "<root>/{train2017,val2017}/*.jpg + <root>/annotations/instances_{train2017,val2017}.json (COCO)"
)
DAVIS_LAYOUT = (
    "<root>/JPEGImages/480p/<seq>/%05d.jpg + <root>/Annotations/480p/<seq>/%05d.png "
    "(indexed 'P' PNGs, ids 0..K) + <root>/ImageSets/2017/{train,val}.txt (DAVIS-2017)"
)


class DatasetError(RuntimeError):
    """A missing or malformed dataset. The message is one line: the path, the problem, the expected layout.

    Takes a single string argument, so mmengine's registry (which re-raises a build error as
    ``type(e)(prefix + str(e))``) keeps the type."""

    @classmethod
    def at(cls, path: object, problem: str, layout: str) -> DatasetError:
        message = f"{path}: {problem} (expected {layout})"
        return cls(" ".join(message.split()))  # one line, whatever the problem text held


def raised_message(error: DatasetError) -> str:
    """The one line ``error`` was raised with, also when a DataLoader worker raised it (PyTorch re-raises it
    in the main process with the worker's traceback prepended to the message)."""
    text = str(error).strip()
    if "Original Traceback" in text:
        text = text.splitlines()[-1].split(f"{type(error).__name__}: ", 1)[-1]
    return text
