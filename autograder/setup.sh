#!/usr/bin/env bash
# Gradescope image setup (Ubuntu 22.04 base; also Debian 12): Python 3.11 in a venv with the
# pinned packages of requirements.txt and a CPU-only PyTorch. No conda, LaTeX or browser.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SOURCE="${AUTOGRADER_ROOT:-/autograder}/source"
TORCH_INDEX="${TORCH_INDEX-https://download.pytorch.org/whl/cpu}"  # "" skips it

apt-get update
if ! apt-cache show python3.11-venv >/dev/null 2>&1; then
    # Ubuntu 22.04 ships Python 3.10; 3.11 comes from the deadsnakes archive.
    apt-get install -y --no-install-recommends software-properties-common gpg-agent
    add-apt-repository -y ppa:deadsnakes/ppa
    apt-get update
fi
apt-get install -y --no-install-recommends python3.11 python3.11-venv
rm -rf /var/lib/apt/lists/*

python3.11 -m venv /opt/hwkit
extra=()
[ -n "$TORCH_INDEX" ] && extra=(--extra-index-url "$TORCH_INDEX")
/opt/hwkit/bin/pip install --no-cache-dir --disable-pip-version-check "${extra[@]}" -r "$SOURCE/requirements.txt"
chmod -R a+rX /opt/hwkit
# Fail the build, not the first submission, if anything is missing.
PYTHONPATH="$SOURCE" /opt/hwkit/bin/python -c "import torch, otter, IPython, jsonschema, hwkit.sandbox.run; assert not torch.cuda.is_available() or True; print('torch', torch.__version__)"
