#!/usr/bin/env bash
# Prepare, on this CPU machine, what a GPU device call carries besides the working tree: the `.gpu/` folder
# (git-ignored), named in the call's `carry`.
#
#   .gpu/wheels/  pure-Python wheels of the packages `bench train` imports that the GPU image lacks
#   .gpu/data/    CIFAR-10's training split, packed by scripts/gpu_data.py into groups of <= GPU_DATA_GROUP_MIB
#   .gpu/commit   the commit the tree is at (the copy a GPU machine gets has no .git; cards record this instead):
#                 run this script (with --no-data once the data is packed) right before the device call
#
# Which packages: the distributions that importing bench.cli, bench.train and every training method loads here,
# less those the GPU image already has (the list below is the image's, from the device notes of 2026-11-17; the
# image's torch, numpy, safetensors, pyyaml, tqdm and typer are used as they are). Versions are this venv's.
# Each wheel is built with `pip wheel --no-deps` (grad-cam ships only an sdist); a wheel that is not pure Python
# stops the script, since it would not install on the GPU machine's Python 3.12.
#
# It ends by printing what a device call would carry (tracked files, untracked files that git does not ignore,
# .gpu/), against the device's 64 MiB limit per call.
#
# Usage: scripts/gpu_wheels.sh [--no-data]     (env: PY, GPU_DATA_SRC, GPU_DATA_GROUP_MIB)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA_SRC=${GPU_DATA_SRC:-../shared/data/cifar10_train.npz}
GROUP_MIB=${GPU_DATA_GROUP_MIB:-44}
mkdir -p .gpu/wheels
dirty=$(git status --porcelain --untracked-files=no -- bench)
commit=$(git rev-parse HEAD)
[ "$(git branch --show-current)" = gpu-slim ] && commit=$(git rev-parse HEAD~1)  # scripts/gpu_tree.sh: main's commit
echo "$commit${dirty:++dirty}" > .gpu/commit

missing=$("$PY" - <<'PYEOF'
import importlib.metadata as md
import sys

import bench.cli  # noqa: F401
import bench.train  # noqa: F401
from bench.methods import METHODS

for entry in METHODS:  # every method module, PGD-AT and FGSM-AT included
    METHODS.create(entry.name)
ON_GPU_IMAGE = set("""absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build
certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock
flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub
humanize hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping
jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown
markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch
mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro nvidia-ml-py onnx onnx-ir
onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging
pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11
py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock
pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors
scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham
simplejson six sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore
threadpoolctl tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics
torchvision tqdm transformers treescope triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig
werkzeug wheel wrapt xarray xxhash yarl zipp""".split())
ALIASES = {"opencv-python": "opencv-python-headless"}  # the image's OpenCV provides cv2 too
normal = lambda name: name.lower().replace("_", "-")  # noqa: E731
loaded = md.packages_distributions()
dists = {d for m in {m.split(".")[0] for m in sys.modules} & set(loaded) for d in loaded[m]}
for dist in sorted(dists):
    name = normal(dist)
    if name == "ribench" or name.startswith("nvidia-") or ALIASES.get(name, name) in ON_GPU_IMAGE:
        continue
    print(f"{dist}=={md.version(dist)}")
PYEOF
)
rm -f .gpu/wheels/*.whl
if [ -n "$missing" ]; then
  echo "wheels to carry: $(echo $missing)"
  # shellcheck disable=SC2086
  "$PY" -m pip wheel -q --no-deps -w .gpu/wheels $missing
  if ls .gpu/wheels/*.whl | grep -v -- '-py3-none-any.whl$'; then
    echo "error: the wheels above are not pure Python; download them for cp312 manylinux (device README)" >&2
    exit 1
  fi
else
  echo "wheels to carry: none (the GPU image has every package bench train imports)"
fi

if [ "${1:-}" != "--no-data" ]; then
  "$PY" scripts/gpu_data.py pack "$DATA_SRC" .gpu/data --group-mib "$GROUP_MIB"
fi

tracked=$(git ls-files -z | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
untracked=$(git ls-files -z --others --exclude-standard | xargs -0 -r stat -c %s | awk '{s+=$1} END {print s+0}')
wheels=$(du -sb .gpu/wheels | cut -f1)
echo "a device call carries: tracked $((tracked >> 20)) MiB + untracked-not-ignored $((untracked >> 20)) MiB" \
  "+ .gpu/wheels $((wheels >> 10)) KiB + the data group it names (limit: 64 MiB per call)"
for group in .gpu/data/*/; do
  [ -d "$group" ] && echo "  data group ${group%/}: $(($(du -sb "$group" | cut -f1) >> 20)) MiB"
done
if [ $(((tracked + untracked + wheels) >> 20)) -ge 64 ]; then
  echo "warning: the working tree alone is over the device's 64 MiB per call; no device call can start from it (scripts/gpu_tree.sh enter)" >&2
fi
