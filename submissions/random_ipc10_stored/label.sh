#!/bin/sh
# Writes this folder's files: random_ipc10's images with the soft labels of the protocol's teacher
# (trained on first use and cached; bench teacher train). The same labels on the machine and
# torch version that trained the teacher (its weights' sha256 is in each file's metadata).
set -e
cd "$(dirname "$0")"
for d in photodigits digits; do
  bench teacher label "$d" ../random_ipc10/"$d".safetensors --out "$d".safetensors
done
