#pragma once
// LETHE_HD marks the shared per-element math: compiled for the host by the C++ compiler and for
// the device by nvcc, so the CPU loop and the CUDA kernel run the same code.
#ifndef LETHE_HD
#if defined(__CUDACC__)
#define LETHE_HD __host__ __device__ __forceinline__
#else
#define LETHE_HD inline
#endif
#endif
