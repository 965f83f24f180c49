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
