"""Structural re-parameterization: training-form blocks and the algebra that folds them into one conv.

Pure algebra in `algebra`; module adapters in `fold`; what every block shares in `base`; blocks in
`conv_bn`, `repvgg_block`, `ac_block`, `dbb_block`, `qarepvgg_block`, `mobileone_block` (their SE in
`se`); whole-model conversion in `convert`: third-party conventions in `conventions`, then folds of
neighbouring calls found in the traced forward (`graph_trace`, `graph_fold`), with module kinds proven
in `kinds`; `fold_report` says what a conversion removed. Nothing here times anything or touches files.
"""

from bench.reparam.ac_block import ACBlock
from bench.reparam.base import ReparamBlock
from bench.reparam.conv_bn import ConvBN
from bench.reparam.convert import Conversion, convert, fuse_sequential_conv_bn, to_deploy
from bench.reparam.dbb_block import DiverseBranchBlock
from bench.reparam.fold_report import FoldReport, fold_report
from bench.reparam.mobileone_block import MobileOneBlock
from bench.reparam.qarepvgg_block import QARepVGGBlock
from bench.reparam.repvgg_block import RepVGGBlock, SEBlock

__all__ = [
    "ACBlock", "Conversion", "ConvBN", "DiverseBranchBlock", "FoldReport", "MobileOneBlock", "QARepVGGBlock",
    "RepVGGBlock", "ReparamBlock", "SEBlock", "convert", "fold_report", "fuse_sequential_conv_bn", "to_deploy",
]
