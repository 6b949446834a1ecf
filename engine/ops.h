#pragma once
// The ops of lethe. Every op: checks its inputs (throwing lethe::Error with the op, shapes, dtypes
// and devices), makes inputs contiguous where its kernels need it, runs the CPU or CUDA launcher,
// and records its backward rule with autograd (except the fused updates of the last section).
#include <cstdint>
#include <vector>

#include "engine/tensor.h"
#include "kernels/common/data.h"
#include "kernels/common/ieu.h"
#include "kernels/common/optim.h"

namespace lethe {

// ---- elementwise (NumPy broadcasting; both operands on one device with one dtype)
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
// Comparisons give 0/1 in a's dtype and carry no gradient.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);

Tensor add(const Tensor& a, double s);
Tensor sub(const Tensor& a, double s);
Tensor rsub(double s, const Tensor& a);  // s - a
Tensor mul(const Tensor& a, double s);
Tensor div(const Tensor& a, double s);
Tensor rdiv(double s, const Tensor& a);  // s / a

Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor silu(const Tensor& x);  // x·sigmoid(x) (PyTorch's SiLU)

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, double s) { return add(a, s); }
inline Tensor operator-(const Tensor& a, double s) { return sub(a, s); }
inline Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
inline Tensor operator/(const Tensor& a, double s) { return div(a, s); }
inline Tensor operator+(double s, const Tensor& a) { return add(a, s); }
inline Tensor operator-(double s, const Tensor& a) { return rsub(s, a); }
inline Tensor operator*(double s, const Tensor& a) { return mul(a, s); }
inline Tensor operator/(double s, const Tensor& a) { return rdiv(s, a); }
inline Tensor operator-(const Tensor& a) { return neg(a); }

// ---- reductions. Empty `dims` means all dims. Sums accumulate in float64 in a fixed order,
// so results do not depend on the thread count.
Tensor sum(const Tensor& x, const std::vector<int>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int>& dims = {}, bool keepdim = false);
Tensor var(const Tensor& x, const std::vector<int>& dims = {}, int64_t correction = 1,
           bool keepdim = false);
Tensor max(const Tensor& x, const std::vector<int>& dims = {}, bool keepdim = false);
Tensor min(const Tensor& x, const std::vector<int>& dims = {}, bool keepdim = false);
// Index (int64) of the first maximum along `dim`; of the flattened tensor when dim is absent.
Tensor argmax(const Tensor& x, int dim, bool keepdim = false);
Tensor argmax(const Tensor& x);
// Sums a broadcast gradient back to `shape` (the inverse of broadcasting).
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- linear algebra (OpenBLAS on CPU, cuBLAS on CUDA)
// [M,K]x[K,N], [B,M,K]x[B,K,N], and [B,M,K]x[K,N]. Transposed views are used without copying.
Tensor matmul(const Tensor& a, const Tensor& b);
// The eigenvalues, ascending, of a symmetric float64 matrix a [n,n] (LAPACK's dsyevd, run on the
// CPU whatever a's device), as float64 [n] on a's device. No gradient. The matrix must be
// symmetric: LAPACK reads one triangle only.
Tensor eigvalsh(const Tensor& a);
// The principal square root S (symmetric, positive semi-definite, S·S = A) of a symmetric positive
// semi-definite float64 a [n,n]: V·diag(√λ)·Vᵀ from LAPACK's dsyevd, on the CPU, result on a's
// device; eigenvalues that rounding made slightly negative count as 0. No gradient.
Tensor sqrtmh(const Tensor& a);
// The Cholesky factor L (lower triangular, A = L·Lᵀ) of a symmetric positive definite float64
// a [n,n], and the solution X of A·X = B from it, b [n] or [n,k] (LAPACK's dpotrf and dpotrs, on
// the CPU; results on the inputs' device). No gradient. cholesky throws lethe::Error for a matrix
// that is not positive definite.
Tensor cholesky(const Tensor& a);
Tensor cholesky_solve(const Tensor& b, const Tensor& factor);
// x [N,in] (or [B,N,in] with w [B,out,in]), w [out,in], bias [out] (or [B,out]) or undefined.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias = Tensor());

// ---- convolution and pooling (NCHW)
struct Conv2dOptions {
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;
  int dilation_h = 1, dilation_w = 1;
  int groups = 1;
};
// x [N,C,H,W], w [O,C/groups,kh,kw], bias [O] or undefined.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias = Tensor(),
              const Conv2dOptions& opt = {});

struct Pool2dOptions {
  int kernel_h = 2, kernel_w = 2;
  int stride_h = 2, stride_w = 2;
  int pad_h = 0, pad_w = 0;
};
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opt);
// max_pool2d(relu(conv2d(x, w, bias, opt)), 2×2, stride 2): the same values and gradients, bit for
// bit (nn::Sequential takes it for Conv2d, ReLU, MaxPool2d(2) in a row). On the CPU each image's
// convolution output stays in cache and is never stored whole: one pass for bias, ReLU, pool and
// argmax, and one for the backward's mask and scatter, where the three ops take four and three.
Tensor conv2d_relu_max_pool2(const Tensor& x, const Tensor& w, const Tensor& bias = Tensor(),
                             const Conv2dOptions& opt = {});
// Padding counts towards the divisor (PyTorch's count_include_pad=True).
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opt);
Tensor global_avg_pool2d(const Tensor& x);  // [N,C,H,W] -> [N,C]
// Nearest-neighbour upsampling by an integer factor: x [N,C,H,W] -> [N,C,H·s,W·s], out(h, w) =
// x(h/s, w/s) (PyTorch's Upsample(scale_factor=s, mode="nearest")).
Tensor upsample_nearest2d(const Tensor& x, int scale);

// ---- normalisation and regularisation
// x [N,C] or [N,C,H,W]. In training, normalises with batch statistics and updates the running
// statistics in place (unbiased variance, PyTorch's convention); in eval, uses the running ones.
// weight/bias may be undefined (no affine); running_* may be undefined in training.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  double momentum = 0.1, double eps = 1e-5);
// x [N,C,...]: normalised per sample over each of `groups` groups of C/groups channels (biased
// variance, as PyTorch's GroupNorm), then weight [C] and bias [C] (either may be undefined) per
// channel. Its own kernels, as batch_norm: statistics in float64, the backward in two passes.
Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
// Inverted dropout with a Philox mask keyed by (seed, stream): identical on every device.
Tensor dropout(const Tensor& x, double p, bool training, uint64_t seed, uint64_t stream);

// ---- softmax and losses
Tensor softmax(const Tensor& x, int dim = -1);
Tensor log_softmax(const Tensor& x, int dim = -1);

enum class Reduction { none, mean, sum };
struct CrossEntropyOptions {
  Reduction reduction = Reduction::mean;
  // Optional per-sample weights [N], any sign (IEU and NegGrad+ ascend with negative weights).
  // With weights, mean is sum_i w_i·loss_i / N (divided by the count, not by the weights' sum).
  Tensor sample_weight;
  double label_smoothing = 0;
  // The caller has range-checked every label already (relearning checks its whole data set once):
  // skips the per-call check, which on CUDA reads back to the host and so waits for the GPU.
  bool labels_checked = false;
};
// logits [N,C] (float), labels [N] (int32 or int64).
Tensor cross_entropy(const Tensor& logits, const Tensor& labels,
                     const CrossEntropyOptions& opt = {});
Tensor nll_loss(const Tensor& log_probs, const Tensor& labels, Reduction reduction = Reduction::mean);
Tensor mse_loss(const Tensor& a, const Tensor& b, Reduction reduction = Reduction::mean);
// max(x, 0) − x·t + log(1 + exp(−|x|)) per element, logits x and targets t in [0, 1] of one shape
// (PyTorch's binary_cross_entropy_with_logits); stable for every x.
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets,
                                        Reduction reduction = Reduction::mean);
Tensor one_hot(const Tensor& labels, int64_t num_classes, DType dtype = DType::f32);

// ---- joining and indexing
Tensor concat(const std::vector<Tensor>& xs, int dim);
Tensor stack(const std::vector<Tensor>& xs, int dim);
// Selects slices of x along `dim` at positions `index` (1-d int tensor).
Tensor index_select(const Tensor& x, int dim, const Tensor& index);
// out[i][j] = x[i][index[i][j]] along dim (PyTorch's gather); index has x's rank.
Tensor gather(const Tensor& x, int dim, const Tensor& index);

// ---- fused updates (in place, non-differentiable, no autograd record), and the data pipeline's
// augmentation. A step is one pass over a flat parameter arena (engine/arena.h): contiguous
// operands of one floating dtype on one device. Its float64 `scalars` (learning rate, step count,
// and what the step derives from them) are advanced on that device before the update, so nothing
// syncs and a CUDA-graph-captured step stays right when they change; the caller keeps them and
// the state buffers (nn/optim.h, unlearn/ieu_update.h) and checks the scalars' values when it sets
// them (reading them here would sync).
// torch.optim.SGD's step. params, grad, momentum [n]; momentum undefined iff config.momentum == 0;
// scalars float64 [optim::kSgdScalars].
void sgd_step(const Tensor& params, const Tensor& grad, const Tensor& momentum,
              const Tensor& scalars, const SgdConfig& config);
// torch.optim.AdamW's step. params, grad, exp_avg, exp_avg_sq [n]; scalars float64
// [optim::kAdamWScalars].
void adamw_step(const Tensor& params, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, const Tensor& scalars, const AdamWConfig& config);
// PyTorch's clip_grad_norm_ on one contiguous floating gradient: the L2 norm (float64
// accumulation over fixed chunks, independent of the thread count), then grad *= min(1, max_norm
// / (norm + 1e-6)) in place. Returns the norm before clipping, float64 [] on grad's device.
Tensor clip_grad_norm(const Tensor& grad, double max_norm);
// The IEU update (kernels/common/ieu.h). params, grad_retain, grad_forget, momentum [n];
// grad_forget undefined: no forget gradient; momentum undefined iff config.momentum == 0; scalars
// float64 [ieu::kScalars]; forget_loss one float32 or float64 element ([] or [1]) read on the
// device by the bounded-ascent gate, or undefined: no gate.
void ieu_update(const Tensor& params, const Tensor& grad_retain, const Tensor& grad_forget,
                const Tensor& momentum, const Tensor& scalars, const Tensor& forget_loss,
                const IeuConfig& config);
// images uint8 [B,C,H,W] (C <= kMaxImageChannels) to float32 [B,C,H,W], (v/255 - mean_c) / std_c,
// on images' device; crops int32 [B,3] (dy, dx, flip per sample: kernels/common/data.h) there, or
// undefined for none.
Tensor augment_normalize(const Tensor& images, const Tensor& crops, const PixelNorm& norm);

}  // namespace lethe
