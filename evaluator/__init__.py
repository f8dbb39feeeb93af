"""The trusted scoring core: datasets, the ConvNet, DSA augmentation and the training protocol.

It knows nothing of the command line; `benchmark` orchestrates it.
"""
from .evaluate import Evaluation, evaluate
from .files import ImageSet, load_image_set
from .recipe import DsaParams, Recipe
from .train import RunResult, Task, TrainConfig, train_and_test

__all__ = ["DsaParams", "Evaluation", "ImageSet", "Recipe", "RunResult", "Task", "TrainConfig", "evaluate",
           "load_image_set", "train_and_test"]
