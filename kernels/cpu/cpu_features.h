#pragma once
// The instruction sets this CPU has among those lethe's own vector kernels are compiled for (by
// target attributes): what the float32 GEMM kernels (blas.cpp) and the Philox normals
// (normal_blocks.cpp) choose from at run time.
namespace lethe::cpu {

inline bool has_avx512f() { return __builtin_cpu_supports("avx512f") != 0; }
inline bool has_avx2_fma() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

}  // namespace lethe::cpu
