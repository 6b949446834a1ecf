#include <cmath>

#include "harness.h"

using namespace lethe;

TEST_CASE("autograd: backward accumulates into .grad") {
  Tensor w = Tensor::from_vector<double>({1, 2, 3}, {3}).set_requires_grad();
  Tensor x = Tensor::from_vector<double>({4, 5, 6}, {3});
  sum(w * x).backward();
  CHECK(w.grad().to_vector<double>() == std::vector<double>{4, 5, 6});
  sum(w * w).backward();  // accumulates: + 2w
  CHECK(w.grad().to_vector<double>() == std::vector<double>{6, 9, 12});
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("autograd: a tensor used twice gets both contributions (diamond graph)") {
  Tensor a = Tensor::from_vector<double>({2}, {1}).set_requires_grad();
  const Tensor b = a * 3.0, c = exp(a);
  sum(b * c).backward();
  const double e2 = std::exp(2.0);
  CHECK(a.grad().item() == doctest::Approx(3 * e2 + 6 * e2));
}

TEST_CASE("autograd: grad() returns gradients without touching .grad") {
  Tensor w = test::random_tensor({4, 3}, 1).set_requires_grad();
  Tensor unused = test::random_tensor({2}, 2).set_requires_grad();
  const Tensor x = test::random_tensor({5, 4}, 3);
  const Tensor loss_r = sum(relu(matmul(x, w)));
  const Tensor loss_f = sum(tanh(matmul(x, w)));
  // two gradients for the same parameters, as IEU needs (retain and forget)
  const auto g_r = autograd::grad(loss_r, {w, unused});
  const auto g_f = autograd::grad(loss_f, {w});
  CHECK_FALSE(w.grad().defined());
  CHECK(g_r[1].to_vector<double>() == std::vector<double>{0, 0});  // unreached inputs get zeros
  Tensor w2 = w.detach().clone().set_requires_grad();
  sum(relu(matmul(x, w2))).backward();
  test::expect_close(g_r[0], w2.grad(), 0, 0);
  CHECK(g_f[0].shape() == w.shape());
}

TEST_CASE("autograd: gradients can accumulate into a preallocated buffer view") {
  Tensor arena = Tensor::zeros({10}, DType::f64);
  Tensor w = Tensor::from_vector<double>({1, 2}, {2}).set_requires_grad();
  w.set_grad(arena.narrow(0, 4, 2));
  sum(w * w).backward();
  CHECK(arena.to_vector<double>() == std::vector<double>{0, 0, 0, 0, 2, 4, 0, 0, 0, 0});
}

TEST_CASE("autograd: errors for freed graphs, no grad, in-place misuse") {
  Tensor w = Tensor::from_vector<double>({1, 2}, {2}).set_requires_grad();
  const Tensor loss = sum(exp(w));
  loss.backward();
  CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("was already freed by an earlier backward"), Error);
  const Tensor kept = sum(exp(w));
  kept.backward(Tensor(), /*retain_graph=*/true);
  kept.backward();  // allowed once more after retain_graph
  CHECK_THROWS_WITH_AS(sum(Tensor::ones({2})).backward(), doctest::Contains("does not require grad"), Error);
  CHECK_THROWS_WITH_AS(exp(w).backward(), doctest::Contains("an implicit gradient needs a one-element tensor"), Error);
  CHECK_THROWS_WITH_AS(w.fill_(0), doctest::Contains("fill_: in-place write to a tensor that requires grad"), Error);
  CHECK_THROWS_WITH_AS(Tensor::zeros({2}, DType::i64).set_requires_grad(), doctest::Contains("only floating tensors"), Error);
  // a saved tensor changed in place is detected at backward
  Tensor x = Tensor::from_vector<double>({1, 2}, {2});
  const Tensor y = sum(w * x);
  x.fill_(5);
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("was modified in place after it was saved"), Error);
}

TEST_CASE("autograd: NoGradGuard records nothing, and in-place writes are allowed under it") {
  Tensor w = Tensor::ones({3}).set_requires_grad();
  {
    NoGradGuard no_grad;
    const Tensor y = w * 2.0;
    CHECK_FALSE(y.requires_grad());
    w.add_(Tensor::ones({3}), -0.5);
  }
  CHECK(w.to_vector<float>() == std::vector<float>{0.5f, 0.5f, 0.5f});
  CHECK((w * 2.0).requires_grad());
  CHECK(autograd::grad_enabled());
}

TEST_CASE("autograd: view ops propagate gradients") {
  Tensor x = test::random_tensor({2, 3, 4}, 5).set_requires_grad();
  test::gradcheck([](const std::vector<Tensor>& in) { return in[0].transpose(0, 2).reshape({4, 6}); }, {x});
  test::gradcheck([](const std::vector<Tensor>& in) { return in[0].permute({2, 0, 1}) * 2.0; }, {x});
  test::gradcheck([](const std::vector<Tensor>& in) { return in[0].narrow(1, 1, 2).select(0, 1); }, {x});
  test::gradcheck([](const std::vector<Tensor>& in) { return in[0].unsqueeze(0).squeeze(0).flatten(); }, {x});
  test::gradcheck([](const std::vector<Tensor>& in) { return in[0].narrow(2, 0, 1).expand({2, 3, 5}); }, {x});
  test::gradcheck([](const std::vector<Tensor>& in) { return in[0].to(DType::f32).to(DType::f64); }, {x}, 1e-3, 1e-3, 1e-4);
  test::gradcheck([](const std::vector<Tensor>& in) { return in[0].t().contiguous(); }, {test::random_tensor({3, 4}, 6).set_requires_grad()});
}

TEST_CASE("autograd: a small MLP learns a synthetic problem to a stated loss") {
  // y = sign(x0 * x1) on 256 points; a 2-16-2 MLP with plain SGD must fit it well.
  const int n = 256;
  const Tensor x = test::random_tensor({n, 2}, 10, -1, 1, DType::f32);
  const std::vector<float> xv = x.to_vector<float>();
  std::vector<int64_t> labels(n);
  for (int i = 0; i < n; ++i) labels[i] = xv[2 * i] * xv[2 * i + 1] > 0 ? 1 : 0;
  const Tensor y = Tensor::from_vector(labels, {n});
  Tensor w1 = mul(Tensor::randn({16, 2}, 1), 0.7).set_requires_grad(), b1 = Tensor::zeros({16}).set_requires_grad();
  Tensor w2 = mul(Tensor::randn({2, 16}, 2), 0.25).set_requires_grad(), b2 = Tensor::zeros({2}).set_requires_grad();
  std::vector<Tensor> params{w1, b1, w2, b2};
  double loss_value = 0;
  for (int step = 0; step < 600; ++step) {
    const Tensor loss = cross_entropy(linear(relu(linear(x, w1, b1)), w2, b2), y);
    for (Tensor& p : params) p.set_grad(Tensor());
    loss.backward();
    NoGradGuard no_grad;
    for (Tensor& p : params) p.add_(p.grad(), -0.5);
    loss_value = loss.item();
  }
  CHECK(loss_value < 0.15);
}
