#!/bin/sh
# Peers of the benchmark that need Debian packages (run as root, once):
#   - wrk, the cheap load generator of the throughput rows;
#   - FastAPI + PyTorch eager (python3-torch, python3-torchvision, python3-fastapi,
#     python3-uvicorn) for the ResNet-18 peer, and the same torchvision ResNet-18 (random
#     weights, fixed seed) exported to ONNX for the agent: bench/peers/resnet18/ (not in git).
# The bench skips what is missing with a line saying which package to install.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" = 0 ]; then
  apt-get install -y --no-install-recommends wrk python3-torch python3-torchvision python3-fastapi python3-uvicorn python3-onnx python3-numpy || \
    apt-get install -y --no-install-recommends wrk python3-torch python3-torchvision python3-fastapi python3-uvicorn python3-numpy
else
  echo "setup-peers: not root; skipping apt-get (install wrk python3-torch python3-torchvision python3-fastapi python3-uvicorn yourself)" >&2
fi
# Debian's packages are for the system interpreter, not a pyenv/virtualenv one.
PY=/usr/bin/python3
"$PY" "$HERE/peers/export_resnet18.py" "$HERE/peers"
