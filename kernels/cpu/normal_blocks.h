#pragma once
// Philox normals for many consecutive counter blocks at once, on the CPU: the noise of the fused
// IEU step (kernels/cpu/ieu.cpp). The same bits as philox::normal4 (kernels/common/philox.h), block
// by block: the vector path does the scalar path's IEEE operations (correctly rounded + - * / sqrt
// and fma) lane by lane, in the same order, so CPU and CUDA noise stay bit-identical.
#include <cstdint>

namespace lethe::cpu {

// out[4 * k .. 4 * k + 3] = philox::normal4(seed, stream, first_block + k) for k < blocks.
void normal_blocks(uint64_t seed, uint64_t stream, uint64_t first_block, int64_t blocks, float* out);

// The path normal_blocks takes on this build: "avx2" (8 blocks a step, where the host code is
// compiled for x86-64-v3) or "scalar".
const char* normal_blocks_path();

}  // namespace lethe::cpu
