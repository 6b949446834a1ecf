#pragma once
// Philox normals for many consecutive counter blocks at once, on the CPU: the noise of the fused
// IEU step (kernels/cpu/ieu.cpp) and of randn. The same bits as philox::normal4
// (kernels/common/philox.h), block by block, on every path: the vector paths do the scalar path's
// IEEE operations (correctly rounded + - * / sqrt and fma) lane by lane, in the same order, so CPU
// and CUDA noise stay bit-identical whichever path a CPU takes.
#include <cstdint>

namespace lethe::cpu {

// How normal_blocks runs: AVX-512 (64 blocks a step, then 16), AVX2 + FMA (16, then 8) or scalar.
// Chosen at run time from the CPU's features, like the float32 GEMM kernels (kernels/cpu/blas.h).
enum class NormalPath { avx512, avx2, scalar };
// Every path, best first.
inline constexpr NormalPath kNormalPaths[] = {NormalPath::avx512, NormalPath::avx2, NormalPath::scalar};
const char* normal_path_name(NormalPath path);  // "avx512", "avx2", "scalar"
bool cpu_has(NormalPath path);                 // whether this CPU has the features the path needs
NormalPath normal_path();                       // the path normal_blocks takes: the best this CPU has

// out[4 * k .. 4 * k + 3] = philox::normal4(seed, stream, first_block + k) for k < blocks, by the
// best path this CPU has.
void normal_blocks(uint64_t seed, uint64_t stream, uint64_t first_block, int64_t blocks, float* out);
// The same by `path` (tests and benchmarks compare the paths); throws lethe::Error where the CPU
// lacks it.
void normal_blocks(NormalPath path, uint64_t seed, uint64_t stream, uint64_t first_block, int64_t blocks,
                   float* out);

namespace detail {
// The vector paths (kernels/cpu/normal_blocks_<isa>.cpp): they fill whole steps (AVX-512: 64 blocks,
// then 16; AVX2: 16, then 8) and return how many blocks they filled; the caller fills the rest.
int64_t normal_blocks_avx2(uint64_t seed, uint64_t stream, uint64_t first_block, int64_t blocks, float* out);
int64_t normal_blocks_avx512(uint64_t seed, uint64_t stream, uint64_t first_block, int64_t blocks, float* out);
}  // namespace detail

}  // namespace lethe::cpu
