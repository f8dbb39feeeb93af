"""The field's classic distillation methods, run from the command line (`bench distill`).

Each makes a fixed-IPC submission file from a dataset's training split: `herding` (a coreset),
`dm` (distribution matching), `dsa` (gradient matching with Siamese augmentation). They train
and embed with the evaluation network (ConvNetD3-W128) and augment with the protocol's DSA
operations, as the original implementations do. Sources and settings: docs/METHODS.md.
"""
from __future__ import annotations

METHODS = {
    "herding": "herding coreset in the features of a briefly trained ConvNet (Welling 2009; as in DC-BENCH)",
    "dm": "distribution matching: mean embeddings under random ConvNets (Zhao & Bilen, WACV 2023)",
    "dsa": "gradient matching with differentiable Siamese augmentation (Zhao & Bilen, ICML 2021)",
}
