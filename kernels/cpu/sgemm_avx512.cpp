// The AVX-512 float GEMM of kernels/cpu/sgemm.h. Two micro-kernels, neither needing packed
// operands:
//  - an 8 × 32 block of C held in 16 zmm accumulators; each step over k broadcasts 8 elements of
//    op(A) and loads one row of 32 of op(B), so op(A) may be read with any strides (plain or
//    transposed) and op(B) is read by rows. The last columns are masked, the last rows use a
//    shorter block. Blocks of kSgemmKBlock steps keep op(B)'s 32-column strip in L1 while every
//    row block reuses it. With both operands transposed, B is first copied into row-major order.
//  - for C = A·Bᵀ with a long k (linear's forward), where both operands' rows run along k:
//    4 × 4 blocks of dot products.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/sgemm.h"

namespace lethe::cpu {

namespace {

constexpr int kRows = 8;     // rows of C per block
constexpr int kCols = 32;    // columns of C per block: two zmm vectors
#define LETHE_AVX512 __attribute__((target("avx512f")))

// Element (i, k) of op(A) at p[row(i) + k·step] with row(i) = rows[i], or i·stride without a
// table (convolutions address the rows of their implicit column matrix through one).
struct AView {
  const float* p;
  int64_t stride, step;
  const int64_t* rows = nullptr;
  AView at(int64_t i, int64_t k) const {
    return rows ? AView{p + k * step, stride, step, rows + i} : AView{p + i * stride + k * step, stride, step};
  }
};
// Row s of op(B), its columns contiguous, at p + rows[s], or p + s·ld without a table.
struct BView {
  const float* p;
  int64_t ld;
  const int64_t* rows = nullptr;
  BView at(int64_t s, int64_t j) const { return rows ? BView{p + j, ld, rows + s} : BView{p + s * ld + j, ld}; }
};

// The lanes of a 16-wide vector that hold one of `cols` remaining columns.
__mmask16 tail_mask(int64_t cols) {
  return cols >= 16 ? __mmask16(0xFFFF) : cols <= 0 ? __mmask16(0) : __mmask16((1u << cols) - 1);
}

// C[0:R, 0:32] (masked by m0, m1) = alpha·Σ_k A·B + (first ? beta·C : C) over `steps` k-steps.
template <int R, bool kTableB>
LETHE_AVX512 void block(int64_t steps, AView a, BView b, float* c, int64_t ldc, __mmask16 m0, __mmask16 m1,
                        float alpha, float beta, bool first) {
  __m512 lo[R], hi[R];
  const float* arow[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    lo[r] = hi[r] = _mm512_setzero_ps();
    arow[r] = a.p + (a.rows ? a.rows[r] : r * a.stride);
  }
  for (int64_t k = 0; k < steps; ++k) {
    const float* bk = kTableB ? b.p + b.rows[k] : b.p + k * b.ld;
    const __m512 b0 = _mm512_maskz_loadu_ps(m0, bk);
    const __m512 b1 = _mm512_maskz_loadu_ps(m1, bk + 16);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(arow[r][k * a.step]);
      lo[r] = _mm512_fmadd_ps(x, b0, lo[r]);
      hi[r] = _mm512_fmadd_ps(x, b1, hi[r]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    float* cr = c + r * ldc;
    __m512 y0 = _mm512_mul_ps(va, lo[r]), y1 = _mm512_mul_ps(va, hi[r]);
    if (!first) {  // a later k block: add to what the earlier blocks left
      y0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, cr), y0);
      y1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, cr + 16), y1);
    } else if (beta != 0) {
      y0 = _mm512_add_ps(_mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m0, cr)), y0);
      y1 = _mm512_add_ps(_mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16)), y1);
    }
    _mm512_mask_storeu_ps(cr, m0, y0);
    _mm512_mask_storeu_ps(cr + 16, m1, y1);
  }
}

using BlockFn = void (*)(int64_t, AView, BView, float*, int64_t, __mmask16, __mmask16, float, float, bool);
template <bool kTableB>
constexpr std::array<BlockFn, kRows + 1> blocks() {
  return {nullptr,
          block<1, kTableB>,
          block<2, kTableB>,
          block<3, kTableB>,
          block<4, kTableB>,
          block<5, kTableB>,
          block<6, kTableB>,
          block<7, kTableB>,
          block<8, kTableB>};
}
constexpr std::array<BlockFn, kRows + 1> kBlocks[2] = {blocks<false>(), blocks<true>()};

// C = alpha·op(A)·op(B) + beta·C with the 8 × 32 kernel; row blocks in parallel, each worth at
// least ~1 MFLOP.
void run_blocks(int64_t m, int64_t n, int64_t k, float alpha, AView av, BView bv, float beta, float* c, int64_t ldc) {
  const int64_t row_blocks = (m + kRows - 1) / kRows;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 19) / std::max<int64_t>(1, kRows * n * k));
  const auto& kernels = kBlocks[bv.rows != nullptr];
  parallel_for(row_blocks, grain, [&](int64_t first_block, int64_t end_block) {
    for (int64_t k0 = 0; k0 < k; k0 += kSgemmKBlock) {
      const int64_t steps = std::min(kSgemmKBlock, k - k0);
      for (int64_t j0 = 0; j0 < n; j0 += kCols) {
        const __mmask16 m0 = tail_mask(n - j0), m1 = tail_mask(n - j0 - 16);
        for (int64_t ib = first_block; ib < end_block; ++ib) {
          const int64_t i0 = ib * kRows, rows = std::min<int64_t>(kRows, m - i0);
          kernels[rows](steps, av.at(i0, k0), bv.at(k0, j0), c + i0 * ldc + j0, ldc, m0, m1, alpha, beta, k0 == 0);
        }
      }
    }
  });
}

// The sum of the 16 lanes, pairwise in a fixed order.
LETHE_AVX512 float lane_sum(__m512 v) {
  alignas(64) float x[16];
  _mm512_store_ps(x, v);
  for (int width = 8; width >= 1; width /= 2)
    for (int i = 0; i < width; ++i) x[i] += x[i + width];
  return x[0];
}

// op(B) = Bᵀ with A plain (C = A·Bᵀ: both operands' rows run along k) is a block of dot
// products instead: an R × Q block of C from R rows of A and Q rows of B, 16 k-steps a vector
// fused multiply-add, each accumulator summed across its lanes at the end. No copy of either.
template <int R, int Q>
LETHE_AVX512 void dot_block(int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                            int64_t ldc, float alpha, float beta) {
  __m512 acc[R][Q];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < Q; ++q) acc[r][q] = _mm512_setzero_ps();
  for (int64_t s = 0; s < k; s += 16) {
    const __mmask16 mask = tail_mask(k - s);
    __m512 bv[Q];
#pragma GCC unroll 4
    for (int q = 0; q < Q; ++q) bv[q] = _mm512_maskz_loadu_ps(mask, b + q * ldb + s);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_maskz_loadu_ps(mask, a + r * lda + s);
#pragma GCC unroll 4
      for (int q = 0; q < Q; ++q) acc[r][q] = _mm512_fmadd_ps(av, bv[q], acc[r][q]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < Q; ++q) {
      float& y = c[r * ldc + q];
      const float sum = alpha * lane_sum(acc[r][q]);
      y = beta == 0 ? sum : sum + beta * y;
    }
}

constexpr int kDot = 4;  // rows of A and of B per dot block
// Below this k the 16 lane sums of a dot block cost more than copying Bᵀ for the other kernel
// (cnn-s: conv2's weight gradient, k = 196, runs 3× slower as dot products; fc1's forward,
// k = 1568, 2× faster than with the copy).
constexpr int64_t kDotMinSteps = 512;
using DotFn = void (*)(int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, float, float);
template <int R>
constexpr std::array<DotFn, kDot + 1> dot_row() {
  return {nullptr, dot_block<R, 1>, dot_block<R, 2>, dot_block<R, 3>, dot_block<R, 4>};
}
constexpr std::array<DotFn, kDot + 1> kDots[kDot + 1] = {{}, dot_row<1>(), dot_row<2>(), dot_row<3>(), dot_row<4>()};

// C = beta·C (k == 0: nothing to multiply).
void scale(int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0 ? 0.0f : beta * c[i * ldc + j];
}

}  // namespace

bool has_avx512_sgemm() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}

void sgemm_avx512(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) return scale(m, n, beta, c, ldc);
  if (trans_b && !trans_a && k >= kDotMinSteps) {  // C = A·Bᵀ: dot products of rows
    const int64_t row_blocks = (m + kDot - 1) / kDot;
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 19) / std::max<int64_t>(1, kDot * n * k));
    parallel_for(row_blocks, grain, [&](int64_t first_block, int64_t end_block) {
      for (int64_t ib = first_block; ib < end_block; ++ib) {
        const int64_t i0 = ib * kDot, rows = std::min<int64_t>(kDot, m - i0);
        for (int64_t j0 = 0; j0 < n; j0 += kDot)
          kDots[rows][std::min<int64_t>(kDot, n - j0)](k, a + i0 * lda, lda, b + j0 * ldb, ldb, c + i0 * ldc + j0, ldc,
                                                       alpha, beta);
      }
    });
    return;
  }
  // Otherwise op(B) is read by rows: a transposed B ([n,k] in memory) is copied to [k,n] first.
  thread_local std::vector<float> b_rows;
  if (trans_b) {
    b_rows.resize(static_cast<size_t>(k * n));
    for (int64_t j = 0; j < n; ++j)
      for (int64_t s = 0; s < k; ++s) b_rows[static_cast<size_t>(s * n + j)] = b[j * ldb + s];
    b = b_rows.data();
    ldb = n;
  }
  run_blocks(m, n, k, alpha, trans_a ? AView{a, 1, lda} : AView{a, lda, 1}, BView{b, ldb}, beta, c, ldc);
}

void sgemm_avx512_rows(int64_t m, int64_t n, int64_t k, float alpha, const float* a, const int64_t* a_rows,
                       int64_t lda, const float* b, const int64_t* b_rows, int64_t ldb, float beta, float* c,
                       int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) return scale(m, n, beta, c, ldc);
  run_blocks(m, n, k, alpha, AView{a, lda, 1, a_rows}, BView{b, ldb, b_rows}, beta, c, ldc);
}

}  // namespace lethe::cpu
