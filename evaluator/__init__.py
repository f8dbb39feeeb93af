"""The trusted scoring core: datasets, the ConvNet, DSA augmentation and the training protocol.

It knows nothing of the command line; `benchmark` orchestrates it. Import its modules directly
(`evaluator.train`, `evaluator.data`, ...): the package itself imports nothing, so that a light
module of the core (its errors, its recipe) can be read without loading torch.
"""
