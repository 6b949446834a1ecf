// The kernels of lethe's sgemm (kernels/cpu/sgemm.h), written once over a vector instruction set's
// traits V and compiled once per set: kernels/cpu/sgemm_<isa>.cpp defines LETHE_SGEMM_TARGET (its
// __attribute__((target(...)))), includes this file, defines V and instantiates sgemm_isa<V>().
// Why a file included per set rather than one template: GCC inlines a set's intrinsics only into
// functions compiled for that set, and a target attribute cannot depend on a template argument,
// so each set needs its own definitions with its own attribute. Hence no #pragma once: everything
// here has internal linkage, a copy per includer (and no code compiled for one set can stand in
// for another's at link time).
//
// V provides the vector type Vec, its lane count kLanes and a lane mask type Mask; its register
// block kRows × kCols (kCols a multiple of kLanes) and its dot block kDotRows × kDotCols; and,
// always inlined: zero(), broadcast(x), mask(count) (the lanes below count, none when count <= 0),
// load(p), load(p, mask), store(p, v), store(p, v, mask), fmadd(a, b, c) = a·b + c, add, mul. A
// masked load or store neither reads nor writes the memory of the lanes masked off.
//
// Two micro-kernels, neither needing packed operands:
//  - a kRows × kCols block of C held in accumulators; each step over k broadcasts kRows elements
//    of op(A) and loads one row of kCols of op(B), so op(A) may be read with any strides (plain or
//    transposed) and op(B) is read by rows. The last columns are masked, the last rows use a
//    shorter block. Blocks of kSgemmKBlock steps keep op(B)'s strip in L1 while every row block
//    reuses it. With both operands transposed, B is first copied into row-major order.
//  - for C = A·Bᵀ with a long k (linear's forward), where both operands' rows run along k: blocks
//    of dot products.
// Each lane of the first computes its element of C by itself, and the second sums 16-wide chunks of
// k with one fixed order whatever the vector width, so every set's kernel gives the same bits.
#ifndef LETHE_SGEMM_TARGET
#error "define LETHE_SGEMM_TARGET before including kernels/cpu/sgemm_kernel.h"
#endif

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/sgemm.h"

// The traits' operations (and this file's helpers): compiled for the set, always inlined into its kernels.
#define LETHE_SGEMM_OP LETHE_SGEMM_TARGET __attribute__((always_inline)) static inline

namespace lethe::cpu {

namespace {

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

// A load or store of a whole vector, or of its lanes in `mask` only.
template <class V, bool kMasked>
LETHE_SGEMM_OP typename V::Vec load(const float* p, typename V::Mask mask) {
  if constexpr (kMasked) {
    return V::load(p, mask);
  } else {
    return V::load(p);
  }
}
template <class V, bool kMasked>
LETHE_SGEMM_OP void store(float* p, typename V::Vec v, typename V::Mask mask) {
  if constexpr (kMasked) {
    V::store(p, v, mask);
  } else {
    V::store(p, v);
  }
}

// A k block's steps that a product sums: [begin, end) from the block's first.
struct Segment {
  int64_t begin, end;
};
struct Segments {
  const Segment* p;
  int64_t count;
};

// C[0:R, 0:cols] = alpha·Σ_k A·B + (first ? beta·C : C) over the k-steps of `steps`, cols <= kCols;
// kTail: cols < kCols, so loads and stores of B and C are masked (AVX2's masked ones are slower).
template <class V, int R, bool kTableB, bool kTail>
LETHE_SGEMM_TARGET void block(Segments steps, AView a, BView b, float* c, int64_t ldc, int64_t cols, float alpha,
                              float beta, bool first) {
  using Vec = typename V::Vec;
  constexpr int N = V::kCols / V::kLanes;  // vectors per row of the block
  typename V::Mask mask[N];
  Vec acc[R][N];
  const float* arow[R];
#pragma GCC unroll 4
  for (int v = 0; v < N; ++v) mask[v] = V::mask(cols - v * V::kLanes);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < N; ++v) acc[r][v] = V::zero();
    arow[r] = a.p + (a.rows ? a.rows[r] : r * a.stride);
  }
  for (int64_t s = 0; s < steps.count; ++s)
    for (int64_t k = steps.p[s].begin; k < steps.p[s].end; ++k) {
      const float* bk = kTableB ? b.p + b.rows[k] : b.p + k * b.ld;
      Vec bv[N];
#pragma GCC unroll 4
      for (int v = 0; v < N; ++v) bv[v] = load<V, kTail>(bk + v * V::kLanes, mask[v]);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const Vec x = V::broadcast(arow[r][k * a.step]);
#pragma GCC unroll 4
        for (int v = 0; v < N; ++v) acc[r][v] = V::fmadd(x, bv[v], acc[r][v]);
      }
    }
  const Vec va = V::broadcast(alpha), vb = V::broadcast(beta);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < N; ++v) {
      float* cv = c + r * ldc + v * V::kLanes;
      Vec y = V::mul(va, acc[r][v]);
      if (!first) {  // a later k block: add to what the earlier blocks left
        y = V::add(load<V, kTail>(cv, mask[v]), y);
      } else if (beta != 0) {
        y = V::add(V::mul(vb, load<V, kTail>(cv, mask[v])), y);
      }
      store<V, kTail>(cv, y, mask[v]);
    }
  }
}

using BlockFn = void (*)(Segments, AView, BView, float*, int64_t, int64_t, float, float, bool);
// block<V, rows, ...> at index rows (1 to kRows).
template <class V, bool kTableB, bool kTail, int... R>
constexpr std::array<BlockFn, V::kRows + 1> blocks(std::integer_sequence<int, R...>) {
  return {nullptr, block<V, R + 1, kTableB, kTail>...};
}
template <class V, bool kTableB, bool kTail>
constexpr auto kBlocks = blocks<V, kTableB, kTail>(std::make_integer_sequence<int, V::kRows>());

// Where C's column blocks start, and their widths: every kCols columns, the last one partial; or,
// with column runs (kernels/cpu/sgemm.h), wherever a run next needs one, each whole.
template <class V>
struct ColumnBlocks {
  int64_t n;
  Runs runs;
  int64_t width(int64_t j0) const { return runs.length > 0 ? V::kCols : std::min<int64_t>(V::kCols, n - j0); }
  int64_t next(int64_t j0) const {
    const int64_t j = j0 + V::kCols;
    return runs.length == 0 || j % runs.stride < runs.length ? j : (j / runs.stride + 1) * runs.stride;
  }
};

// The steps of the k block [k0, k0 + steps) in k runs (all of them without runs, or with runs
// that leave no gaps), relative to k0. Runs with gaps have at most one segment per 2 steps, plus
// the two the block's ends cut.
using KBlockSegments = std::array<Segment, kSgemmKBlock / 2 + 2>;
Segments k_segments(int64_t k0, int64_t steps, Runs runs, KBlockSegments& segments) {
  if (runs.length == 0 || runs.length == runs.stride) {
    segments[0] = {0, steps};
    return {segments.data(), 1};
  }
  int64_t count = 0;
  for (int64_t start = k0 / runs.stride * runs.stride; start < k0 + steps; start += runs.stride) {
    const int64_t begin = std::max(start, k0), end = std::min(start + runs.length, k0 + steps);
    if (begin < end) segments[static_cast<size_t>(count++)] = {begin - k0, end - k0};
  }
  return {segments.data(), count};
}

// C = alpha·op(A)·op(B) + beta·C with the register blocks; row blocks in parallel, each worth at
// least ~1 MFLOP.
template <class V, bool kTableB>
void run_blocks(int64_t m, int64_t n, int64_t k, float alpha, AView av, BView bv, float beta, float* c, int64_t ldc,
                Runs column_runs = {}, Runs k_runs = {}) {
  const int64_t row_blocks = (m + V::kRows - 1) / V::kRows;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 19) / std::max<int64_t>(1, V::kRows * n * k));
  const ColumnBlocks<V> columns{n, column_runs};
  parallel_for(row_blocks, grain, [&](int64_t first_block, int64_t end_block) {
    KBlockSegments segments;
    for (int64_t k0 = 0; k0 < k; k0 += kSgemmKBlock) {
      const Segments steps = k_segments(k0, std::min(kSgemmKBlock, k - k0), k_runs, segments);
      for (int64_t j0 = 0; j0 < n; j0 = columns.next(j0)) {
        const int64_t cols = columns.width(j0);
        const auto& kernels = cols < V::kCols ? kBlocks<V, kTableB, true> : kBlocks<V, kTableB, false>;
        for (int64_t ib = first_block; ib < end_block; ++ib) {
          // Row blocks as even as they can be (32 rows on AVX2: 6, 6, 5, 5, 5, 5, not five of 6 and
          // one of 2, whose 4 accumulators wait on the FMA latency): the rows are independent.
          const int64_t i0 = ib * m / row_blocks, rows = (ib + 1) * m / row_blocks - i0;
          kernels[rows](steps, av.at(i0, k0), bv.at(k0, j0), c + i0 * ldc + j0, ldc, cols, alpha, beta, k0 == 0);
        }
      }
    }
  });
}

// The dot products' chunk of k: 16 lanes, one vector or several, summed pairwise in one order.
constexpr int kChunk = 16;
template <class V, int H>
LETHE_SGEMM_OP float chunk_sum(const typename V::Vec (&v)[H]) {
  float x[kChunk];
#pragma GCC unroll 4
  for (int h = 0; h < H; ++h) V::store(x + h * V::kLanes, v[h]);
  for (int width = kChunk / 2; width >= 1; width /= 2)
    for (int i = 0; i < width; ++i) x[i] += x[i + width];
  return x[0];
}

// acc[r][q] += the products of one chunk of `steps` (<= kChunk) k-steps of A's row r and B's row q.
template <class V, int R, int Q, bool kMasked, int H = kChunk / V::kLanes>
LETHE_SGEMM_OP void dot_chunk(typename V::Vec (&acc)[R][Q][H], const float* a, int64_t lda, const float* b,
                              int64_t ldb, int64_t steps) {
#pragma GCC unroll 4
  for (int h = 0; h < H; ++h) {
    const typename V::Mask mask = V::mask(steps - h * V::kLanes);
    typename V::Vec bv[Q];
#pragma GCC unroll 4
    for (int q = 0; q < Q; ++q) bv[q] = load<V, kMasked>(b + q * ldb + h * V::kLanes, mask);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const typename V::Vec av = load<V, kMasked>(a + r * lda + h * V::kLanes, mask);
#pragma GCC unroll 4
      for (int q = 0; q < Q; ++q) acc[r][q][h] = V::fmadd(av, bv[q], acc[r][q][h]);
    }
  }
}

// op(B) = Bᵀ with A plain (C = A·Bᵀ: both operands' rows run along k) is a block of dot
// products instead: an R × Q block of C from R rows of A and Q rows of B, one fused multiply-add
// per lane and k-step, each accumulator summed across its chunk at the end. No copy of either.
template <class V, int R, int Q>
LETHE_SGEMM_TARGET void dot_block(int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                                  int64_t ldc, float alpha, float beta) {
  constexpr int H = kChunk / V::kLanes;
  typename V::Vec acc[R][Q][H];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < Q; ++q)
#pragma GCC unroll 4
      for (int h = 0; h < H; ++h) acc[r][q][h] = V::zero();
  const int64_t whole = k - k % kChunk;
  for (int64_t s = 0; s < whole; s += kChunk) dot_chunk<V, R, Q, false>(acc, a + s, lda, b + s, ldb, kChunk);
  if (whole < k) dot_chunk<V, R, Q, true>(acc, a + whole, lda, b + whole, ldb, k - whole);
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < Q; ++q) {
      float& y = c[r * ldc + q];
      const float sum = alpha * chunk_sum<V, H>(acc[r][q]);
      y = beta == 0 ? sum : sum + beta * y;
    }
}

using DotFn = void (*)(int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, float, float);
// dot_block<V, r, q> at [r][q] (1 to kDotRows, 1 to kDotCols).
template <class V, int R, int... Q>
constexpr std::array<DotFn, V::kDotCols + 1> dot_row(std::integer_sequence<int, Q...>) {
  return {nullptr, dot_block<V, R, Q + 1>...};
}
template <class V, int... R>
constexpr std::array<std::array<DotFn, V::kDotCols + 1>, V::kDotRows + 1> dots(std::integer_sequence<int, R...>) {
  return {{{}, dot_row<V, R + 1>(std::make_integer_sequence<int, V::kDotCols>())...}};
}
template <class V>
constexpr auto kDots = dots<V>(std::make_integer_sequence<int, V::kDotRows>());

// Below this k the lane sums of a dot block cost more than copying Bᵀ for the other kernel
// (cnn-s on AVX-512: conv2's weight gradient, k = 196, runs 3× slower as dot products; fc1's
// forward, k = 1568, 2× faster than with the copy). The same on every set, for the same bits.
constexpr int64_t kDotMinSteps = 512;

// C = alpha·A·Bᵀ + beta·C by dot blocks; row blocks in parallel.
template <class V>
void run_dots(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b, int64_t ldb,
              float beta, float* c, int64_t ldc) {
  const int64_t row_blocks = (m + V::kDotRows - 1) / V::kDotRows;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 19) / std::max<int64_t>(1, V::kDotRows * n * k));
  parallel_for(row_blocks, grain, [&](int64_t first_block, int64_t end_block) {
    for (int64_t ib = first_block; ib < end_block; ++ib) {
      const int64_t i0 = ib * V::kDotRows, rows = std::min<int64_t>(V::kDotRows, m - i0);
      for (int64_t j0 = 0; j0 < n; j0 += V::kDotCols)
        kDots<V>[rows][std::min<int64_t>(V::kDotCols, n - j0)](k, a + i0 * lda, lda, b + j0 * ldb, ldb,
                                                               c + i0 * ldc + j0, ldc, alpha, beta);
    }
  });
}

template <class V>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (trans_b && !trans_a && k >= kDotMinSteps) return run_dots<V>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  // Otherwise op(B) is read by rows: a transposed B ([n,k] in memory) is copied to [k,n] first.
  thread_local std::vector<float> b_rows;
  if (trans_b) {
    b_rows.resize(static_cast<size_t>(k * n));
    for (int64_t j = 0; j < n; ++j)
      for (int64_t s = 0; s < k; ++s) b_rows[static_cast<size_t>(s * n + j)] = b[j * ldb + s];
    b = b_rows.data();
    ldb = n;
  }
  run_blocks<V, false>(m, n, k, alpha, trans_a ? AView{a, 1, lda} : AView{a, lda, 1}, BView{b, ldb}, beta, c, ldc);
}

template <class V>
void gemm_rows(int64_t m, int64_t n, int64_t k, float alpha, const float* a, const int64_t* a_rows, int64_t lda,
               const float* b, const int64_t* b_rows, int64_t ldb, float beta, float* c, int64_t ldc, Runs columns,
               Runs steps) {
  const AView av{a, lda, 1, a_rows};
  const BView bv{b, ldb, b_rows};
  if (b_rows != nullptr) return run_blocks<V, true>(m, n, k, alpha, av, bv, beta, c, ldc, columns, steps);
  run_blocks<V, false>(m, n, k, alpha, av, bv, beta, c, ldc, columns, steps);
}

// The set's entry in kernels/cpu/sgemm.h.
template <class V>
constexpr SgemmIsa sgemm_isa() {
  static_assert(V::kCols % V::kLanes == 0 && kChunk % V::kLanes == 0 && V::kCols <= kSgemmMaxCols);
  return {gemm<V>, gemm_rows<V>};
}

}  // namespace

}  // namespace lethe::cpu

