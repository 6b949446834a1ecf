// softmax, log_softmax and the classification and regression losses.
#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/index.h"
#include "kernels/softmax.h"

namespace lethe {

namespace {

Tensor softmax_op(const char* name, bool log_out, const Tensor& x_in, int dim) {
  LETHE_CHECK(x_in.defined(), name, "undefined input");
  LETHE_CHECK(is_floating(x_in.dtype()), name, "needs a floating tensor, got ", x_in.str());
  const int d = normalize_dim(dim, x_in.dim(), name);
  RowShape s;
  for (int k = 0; k < d; ++k) s.outer *= x_in.size(k);
  for (int k = d + 1; k < x_in.dim(); ++k) s.inner *= x_in.size(k);
  s.size = x_in.size(d);
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  LETHE_DISPATCH(x.device(), softmax_forward, x, s, log_out, y);
  autograd::record(name, y, {&x_in}, [s, log_out, sy = autograd::Saved(y)](const Tensor& g_in, autograd::Needs) {
    const Tensor yv = sy.get(), g = g_in.contiguous();
    Tensor gx = Tensor::empty(yv.shape(), yv.dtype(), yv.device());
    LETHE_DISPATCH(yv.device(), softmax_backward, yv, g, s, log_out, gx);
    return std::vector<Tensor>{gx};
  });
  return y;
}

// input [N,C] floating; labels int32/int64 [N] on its device, each in [0, C) (unless the caller
// checked the range itself: `check_range` false). Returns the labels contiguous.
Tensor checked_labels(const char* op, const Tensor& input, const Tensor& labels, bool check_range = true) {
  LETHE_CHECK(input.defined() && labels.defined(), op, "undefined input");
  LETHE_CHECK(is_floating(input.dtype()) && input.dim() == 2, op, "needs floating [N,C] scores, got ",
              input.str());
  const int64_t N = input.size(0), C = input.size(1);
  LETHE_CHECK((labels.dtype() == DType::i32 || labels.dtype() == DType::i64) && labels.shape() == Shape{N} &&
                  labels.device() == input.device(),
              op, "labels must be int32 or int64 [", N, "] on ", input.device().str(), " for scores ",
              input.str(), ", got ", labels.str());
  const Tensor l = labels.contiguous();
  if (!check_range) return l;
  const IndexCheck check{op, "label", "row", detail::concat(" (scores ", input.str(), ")")};
  LETHE_DISPATCH(l.device(), check_index_range, l, C, check);
  return l;
}

Tensor reduce(const Tensor& losses, Reduction reduction) {
  switch (reduction) {
    case Reduction::none: return losses;
    case Reduction::sum: return sum(losses);
    case Reduction::mean: return mean(losses);
  }
  LETHE_FAIL("loss", "unknown reduction");
}

// one_hot's values, for labels already checked.
Tensor one_hot_of(const Tensor& labels, int64_t num_classes, DType dtype) {
  Shape shape = labels.shape();
  shape.push_back(num_classes);
  Tensor out = Tensor::empty(shape, dtype, labels.device());
  LETHE_DISPATCH(labels.device(), one_hot, labels, num_classes, out);
  return out;
}

}  // namespace

Tensor softmax(const Tensor& x, int dim) { return softmax_op("softmax", false, x, dim); }
Tensor log_softmax(const Tensor& x, int dim) { return softmax_op("log_softmax", true, x, dim); }

// One kernel computes each row's (weighted, smoothed) loss; the reduction runs outside autograd
// and the backward kernel applies its scale, so the whole loss is one graph node.
Tensor cross_entropy(const Tensor& logits_in, const Tensor& labels_in, const CrossEntropyOptions& opt) {
  const Tensor labels = checked_labels("cross_entropy", logits_in, labels_in, !opt.labels_checked);
  const int64_t N = logits_in.size(0);
  LETHE_CHECK(opt.label_smoothing >= 0 && opt.label_smoothing <= 1, "cross_entropy",
              "label_smoothing must be in [0, 1], got ", opt.label_smoothing);
  const Tensor& w_in = opt.sample_weight;
  if (w_in.defined()) {
    LETHE_CHECK(w_in.shape() == Shape{N} && w_in.dtype() == logits_in.dtype() && w_in.device() == logits_in.device(),
                "cross_entropy", "sample_weight must be ", dtype_name(logits_in.dtype()), "[", N, "] on ",
                logits_in.device().str(), " for logits ", logits_in.str(), ", got ", w_in.str());
    LETHE_CHECK(!(w_in.requires_grad() && autograd::grad_enabled()), "cross_entropy",
                "sample_weight is a constant here and gets no gradient; pass it detached");
  }
  const Tensor logits = logits_in.contiguous();
  const Tensor w = w_in.defined() ? w_in.contiguous() : Tensor();
  const double smoothing = opt.label_smoothing;

  Tensor losses = Tensor::empty({N}, logits.dtype(), logits.device());
  LETHE_DISPATCH(logits.device(), cross_entropy_forward, logits, labels, w, smoothing, losses);
  Tensor out;
  {
    NoGradGuard no_grad;
    out = reduce(losses, opt.reduction);
  }
  // mean divides by the count N (not by the weights' sum, which may be zero or negative).
  const double g_scale = opt.reduction == Reduction::mean ? 1.0 / static_cast<double>(N) : 1.0;
  autograd::record("cross_entropy", out, {&logits_in},
                   [smoothing, g_scale, sx = autograd::Saved(logits), sl = autograd::Saved(labels),
                    sw = autograd::Saved(w)](const Tensor& g_in, autograd::Needs) {
                     const Tensor x = sx.get(), g = g_in.contiguous();
                     Tensor gx = Tensor::empty(x.shape(), x.dtype(), x.device());
                     LETHE_DISPATCH(x.device(), cross_entropy_backward, x, sl.get(), sw.get(), smoothing, g,
                                    g_scale, gx);
                     return std::vector<Tensor>{gx};
                   });
  return out;
}

// −log_probs[i, labels[i]], picked by a one-hot mask so autograd composes the gradient.
Tensor nll_loss(const Tensor& log_probs, const Tensor& labels_in, Reduction reduction) {
  const Tensor labels = checked_labels("nll_loss", log_probs, labels_in);
  const Tensor mask = one_hot_of(labels, log_probs.size(1), log_probs.dtype());
  return reduce(neg(sum(mul(log_probs, mask), {1})), reduction);
}

Tensor mse_loss(const Tensor& a, const Tensor& b, Reduction reduction) {
  LETHE_CHECK(a.defined() && b.defined(), "mse_loss", "undefined input");
  LETHE_CHECK(a.shape() == b.shape(), "mse_loss", "shapes differ: ", a.str(), " and ", b.str());
  const Tensor diff = sub(a, b);
  return reduce(mul(diff, diff), reduction);
}

Tensor one_hot(const Tensor& labels_in, int64_t num_classes, DType dtype) {
  LETHE_CHECK(labels_in.defined(), "one_hot", "undefined labels");
  LETHE_CHECK(labels_in.dtype() == DType::i32 || labels_in.dtype() == DType::i64, "one_hot",
              "labels must be int32 or int64, got ", labels_in.str());
  LETHE_CHECK(num_classes > 0, "one_hot", "num_classes must be positive, got ", num_classes);
  const Tensor labels = labels_in.contiguous();
  const IndexCheck check{"one_hot", "label", "position", ""};
  LETHE_DISPATCH(labels.device(), check_index_range, labels, num_classes, check);
  return one_hot_of(labels, num_classes, dtype);
}

}  // namespace lethe
