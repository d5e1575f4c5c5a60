"""Published figures (the RepVGG paper's, and MobileOne's), so reports can print paper vs measured side by side.

Source: Ding et al., "RepVGG: Making VGG-style ConvNets Great Again", CVPR 2021 (arXiv:2101.03697v3),
Table 4; the same table is the image `table.PNG` in the README of github.com/DingXiaoH/RepVGG.
Columns: top-1 accuracy on ImageNet (%), speed in examples/second on one GTX 1080Ti at batch 128 in
fp32, parameters (M) of the inference-time (deploy) form, and "Theo FLOPs (B)", which the paper counts
as multiply-adds (so they compare with our MACs, not with 2 * MACs).

Cross-checks against text sources: the paper's prose (RepVGG-A0 is 1.25% better and 33% faster than
ResNet-18; A2 is 83% faster than ResNet-50; B1g4 101% faster than ResNet-101; B1g2 2.66x faster than
ResNet-152 at equal accuracy) agrees with these speeds and top-1s; PaddleClas' "Reference top1" column
agrees with the top-1s. The paper truncates parameters to two decimals (A0: 8,309,384 -> 8.30,
ResNet-101: 44,496,488 -> 44.49), so a deploy form rounds *down* to the paper's number.

The 120-epoch rows use simple augmentation; RepVGG-B3g4 and B3 appear only in the 200-epoch group
(autoaugment, label smoothing, mixup), whose top-1 is listed for them. RepVGG-D2se is not in the paper:
its top-1 (81.82% at 224x224) comes from the official README (update of Apr 25, 2021).

MobileOne S0-S4: Vasu et al., "MobileOne: An Improved One millisecond Mobile Backbone", CVPR 2023
(arXiv:2206.04040), Table 8 (ImageNet top-1, deploy parameters rounded to 0.1M, FLOPs in M that are
multiply-adds too); no 1080Ti speed. The official README lists S0 at 2.1M as well (2.08M exactly).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

TABLE4 = "RepVGG paper (CVPR 2021), Table 4, 120 epochs, simple augmentation"
TABLE4_200 = "RepVGG paper (CVPR 2021), Table 4, 200 epochs, autoaugment + label smoothing + mixup"
README_D2SE = "DingXiaoH/RepVGG README (Apr 25, 2021): 224x224 test; not in the paper"
MOBILEONE_TABLE8 = "MobileOne paper (CVPR 2023), Table 8; params rounded to 0.1M"
REPVGG_SOURCES: tuple[str, ...] = (TABLE4, TABLE4_200)
"""Sources whose parameters are truncated to two decimals (so a deploy form rounds down to them)."""


@dataclass(frozen=True)
class PaperFigures:
    """Published figures of one model; None where the source gives none."""

    top1: Optional[float]
    speed_1080ti_b128: Optional[float]
    params_m: Optional[float]
    gflops: Optional[float]
    source: str = TABLE4

    @property
    def gmacs(self) -> Optional[float]:
        """The paper's "FLOPs" are multiply-adds: this is the same number, named for what it is."""
        return self.gflops


def _row(top1: float, speed: float, params: float, gflops: float, source: str = TABLE4) -> PaperFigures:
    return PaperFigures(top1, speed, params, gflops, source)


PAPER: dict[str, PaperFigures] = {
    "repvgg_a0": _row(72.41, 3256, 8.30, 1.4),
    "repvgg_a1": _row(74.46, 2339, 12.78, 2.4),
    "repvgg_a2": _row(76.48, 1322, 25.49, 5.1),
    "repvgg_b0": _row(75.14, 1817, 14.33, 3.1),
    "repvgg_b1": _row(78.37, 685, 51.82, 11.8),
    "repvgg_b1g2": _row(77.78, 792, 41.36, 8.8),
    "repvgg_b1g4": _row(77.58, 868, 36.12, 7.3),
    "repvgg_b2": _row(78.78, 460, 80.31, 18.4),
    "repvgg_b2g4": _row(78.50, 581, 55.77, 11.3),
    "repvgg_b3": _row(80.52, 363, 110.96, 26.2, TABLE4_200),
    "repvgg_b3g4": _row(80.21, 464, 75.62, 16.1, TABLE4_200),
    "repvgg_d2se": PaperFigures(81.82, None, None, None, README_D2SE),
    "mobileone_s0": PaperFigures(71.4, None, 2.1, 0.275, MOBILEONE_TABLE8),
    "mobileone_s1": PaperFigures(75.9, None, 4.8, 0.825, MOBILEONE_TABLE8),
    "mobileone_s2": PaperFigures(77.4, None, 7.8, 1.299, MOBILEONE_TABLE8),
    "mobileone_s3": PaperFigures(78.1, None, 10.1, 1.896, MOBILEONE_TABLE8),
    "mobileone_s4": PaperFigures(79.4, None, 14.8, 2.978, MOBILEONE_TABLE8),
    "resnet18": _row(71.16, 2442, 11.68, 1.8),
    "resnet34": _row(74.17, 1419, 21.78, 3.7),
    "resnet50": _row(76.31, 719, 25.53, 3.9),
    "resnet101": _row(77.21, 430, 44.49, 7.6),
    "resnet152": _row(77.78, 297, 60.11, 11.3),
}
"""Keyed by registry name. RepVGG-B2g4 is also listed at 79.38% in the 200-epoch group (same speed,
params and FLOPs); the 120-epoch figure is kept so that all 120-epoch rows compare alike."""


def paper_figures(name: str) -> Optional[PaperFigures]:
    return PAPER.get(name)
