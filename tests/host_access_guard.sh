#!/usr/bin/env bash
# Fails when code under kernels/cuda/ calls a host-only accessor on a tensor: Tensor::data<T>()
# refuses CUDA tensors at run time, so such a call would only fail on a GPU, which CI lacks.
# CUDA launchers take their pointers through Tensor::ptr<T>() / ptr_or_null<T>() instead.
#   tests/host_access_guard.sh [SOURCE_ROOT]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}

# Prints every host-only access in the CUDA backend's sources under $1.
violations() {
  grep -rnE --include='*.cu' --include='*.cuh' --include='*.cpp' --include='*.h' \
    '(\.|->)data<|check_access\(' "$1/kernels/cuda" || true
}

# The check must be able to fail: a planted call has to be found.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
mkdir -p "$probe/kernels/cuda"
printf 'void f(const lethe::Tensor& t) { float* p = t.data<float>(); }\n' >"$probe/kernels/cuda/probe.cu"
if [[ -z $(violations "$probe") ]]; then
  echo "host_access_guard: the check missed a planted data<float>() call" >&2
  exit 1
fi

found=$(violations "$root")
if [[ -n $found ]]; then
  echo "host_access_guard: kernels/cuda/ calls host-only tensor access (use ptr<T>() / ptr_or_null<T>()):" >&2
  echo "$found" >&2
  exit 1
fi
echo "host_access_guard: $(find "$root/kernels/cuda" -type f | wc -l) CUDA backend files, no host-only access"
