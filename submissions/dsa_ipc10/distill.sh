#!/bin/sh
# Regenerates photodigits.safetensors in this folder, as shipped: bench distill, seed 0.
# The same images and labels, bit for bit, on the machine and torch version that made it
# (its metadata names them).
set -e
cd "$(dirname "$0")"
exec bench distill dsa --dataset photodigits --seed 0 --out . --iterations 20
