"""The ``data:`` section of a training config, and the typed building blocks every section shares.

Sections are pydantic models with ``extra="forbid"`` and strict types, so a typo or a value
of the wrong kind fails at load time. Strict means what YAML wrote is what the run gets: no
``"7"`` read as an integer, no ``1`` read as ``true``; the two deliberate leniencies are
:data:`Number` (YAML 1.1 reads ``1e-4`` as a string) and :data:`Name` (patient ids and
column values such as ``12`` that YAML reads as numbers).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

__all__ = ["Section", "Number", "Name", "AugmentConfig", "SamplerConfig", "LabelMask", "Subgroup", "SourceConfig",
           "DataConfig", "SOURCE_KEYS"]


def _yaml_number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def _name(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


#: A float; ints and numeric strings (YAML 1.1 reads ``1e-4`` as one) are converted.
Number = Annotated[float, BeforeValidator(_yaml_number)]
#: A string; numbers are converted (patient ids, column values, mapping keys).
Name = Annotated[str, BeforeValidator(_name)]


class Section(BaseModel):
    """A config section: unknown keys and values of the wrong type are errors."""

    model_config = ConfigDict(extra="forbid", strict=True)


class AugmentConfig(Section):
    """Random training augmentation; a preset fills the values you do not set yourself."""

    #: Preset values; a key set explicitly in the config wins over its preset.
    PRESETS: ClassVar[dict[str, dict[str, float | bool]]] = {
        "none": {},
        # reproduce-chexnet: random horizontal flip only (images are resized to the input size).
        "chexnet": {"flip": True},
        # TorchXRayVision's training recipe: affine rotate +-45 deg, translate 15 %, scale 10 %.
        "xrv": {"rotate": 45.0, "translate": 0.15, "scale": 0.10},
        # augmented-chest-xray's "advanced" pipeline: flip, shifts, rotations, crops, scaling,
        # perspective, brightness and contrast (values are cxrkit's, not copied from theirs).
        "augmented": {
            "flip": True, "rotate": 10.0, "translate": 0.10, "scale": 0.10, "crop_scale": 0.80,
            "perspective": 0.10, "brightness": 0.10, "contrast": 0.10,
        },
    }

    preset: Literal["none", "chexnet", "xrv", "augmented"] = "none"
    rotate: Number | None = None  # degrees, +-
    translate: Number | None = None  # fraction of the side
    scale: Number | None = None  # +- fraction
    flip: bool | None = None  # horizontal flip with p=0.5
    crop_scale: Number | None = None  # RandomResizedCrop lower area bound (1.0 = off)
    brightness: Number | None = None  # +- fraction of the range
    contrast: Number | None = None
    perspective: Number | None = None  # distortion scale (0 = off)

    def resolved(self) -> dict[str, float | bool]:
        """The effective augmentation values: preset defaults overridden by explicit keys.

        Lives with the config (not in :mod:`.augment`) so validating a config never needs the
        transforms, and the two modules do not import each other.
        """
        values: dict[str, float | bool] = {"rotate": 0.0, "translate": 0.0, "scale": 0.0, "flip": False,
                                           "crop_scale": 1.0, "brightness": 0.0, "contrast": 0.0, "perspective": 0.0}
        values.update(self.PRESETS[self.preset])
        for name in values:
            value = getattr(self, name)
            if value is not None:
                values[name] = value
        return values


class SamplerConfig(Section):
    """How the training sampler draws images (with replacement unless ``kind`` is none).

    ``group``: every value of ``column`` equally often (group-balanced, so a large selected
    subgroup no longer dominates); ``weights``: each value of ``column`` drawn in proportion
    to ``weights[value]`` times its size (down-weighting, 0 drops it); ``labels``: label-aware
    oversampling, each image weighted by its rarest positive label (images with no
    positive count as one more class).
    """

    kind: Literal["none", "group", "weights", "labels"] = "none"
    column: str | None = None
    weights: dict[Name, Annotated[Number, Field(ge=0)]] = Field(default_factory=dict)


class LabelMask(Section):
    """Training labels set unknown (NaN: no loss, no gradient) on the images where ``column == value``.

    For a subgroup whose label *presence* was decided by how it was drawn (a collection
    that kept only Pneumonia or No Finding films), the confounded labels are better unknown
    than taught. Validation labels are never masked, so the metrics stay honest.
    """

    column: str = ""
    value: Name = ""
    labels: list[str] | str = "all"  # label names, or "all"
    keep: list[str] = Field(default_factory=list)  # labels exempt from "all"


class Subgroup(Section):
    """One value of one metadata column, e.g. ``{column: source, value: reproduce-chexnet-starter}``."""

    column: str = ""
    value: Name = ""


class SourceConfig(Section):
    """One entry of ``data.sources``: the keys that say where one dataset's images and labels are.

    Only checks the entry; the config keeps the mapping as written, so keys left out inherit
    the ``data:`` section's values.
    """

    dataset: str
    root: str | None = None
    label_file: str | None = None
    files: dict[Name, str] = Field(default_factory=dict)
    csv: dict[Name, Any] = Field(default_factory=dict)
    views: list[str] | str | None = None  # a list, or comma-separated as the dataset itself accepts


SOURCE_KEYS = tuple(SourceConfig.model_fields)


class DataConfig(Section):
    """Where the images and labels come from and how they are split and served."""

    dataset: str = "nih"  # a registered dataset name, "csv" or "folder"
    root: str | None = None
    label_file: str | None = None
    files: dict[Name, str] = Field(default_factory=dict)
    csv: dict[Name, Any] = Field(default_factory=dict)  # csv_dataset keyword arguments
    views: list[str] | None = None
    sources: list[dict[Name, Any]] = Field(default_factory=list)  # several datasets merged (keys as above)
    labels: list[str] | None = None  # head labels in order; default: the dataset's (union when merged)
    target: Literal["labels", "age", "orientation"] = "labels"  # age: regression; orientation: synthetic, multiclass
    negative_class: str | None = None  # multiclass: name of the class of rows with no positive label
    split: dict[Name, Number] | str = Field(default_factory=lambda: {"train": 0.8, "valid": 0.2})
    split_seed: int = 0
    exclude_patients: list[Name] = Field(default_factory=list)
    skip_missing: bool = True  # drop label rows whose image is not on disk (partial downloads)
    max_images: int | None = None
    cache: bool = True  # decode + resize every image once and keep it in memory (float16)
    batch_size: int = Field(default=16, gt=0)  # default= by keyword: type checkers read it as the default
    num_workers: int = 0
    oversample: bool = False  # multiclass: sample classes equally often (with replacement)
    metadata: list[str] = Field(default_factory=list)  # sidecar CSVs joined by image file name (site, source, scanner)
    stratify: str | None = None  # keep each value of this column's share in every split part
    select_on: Subgroup | None = None  # validation subgroup that picks the checkpoint and stops training
    mask_labels: list[LabelMask] = Field(default_factory=list)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
