#include "engine/arena.h"
#include "harness.h"

using namespace lethe;

TEST_CASE("arena: parameters become aligned views of one buffer, values kept") {
  Tensor a = Tensor::from_vector<float>({1, 2, 3}, {3}).set_requires_grad();
  Tensor b = Tensor::from_vector<float>({4, 5, 6, 7}, {2, 2}).set_requires_grad();
  ParamArena arena({a, b}, 2);
  CHECK(arena.size() == 32);
  CHECK(arena.offset(1) == 16);
  CHECK(a.data_ptr() == arena.data().data_ptr());
  CHECK(static_cast<float*>(b.data_ptr()) == static_cast<float*>(arena.data().data_ptr()) + 16);
  CHECK(a.to_vector<float>() == std::vector<float>{1, 2, 3});
  CHECK(b.to_vector<float>() == std::vector<float>{4, 5, 6, 7});
  CHECK(a.requires_grad());
  // A write through the flat buffer is a write to the parameters: one pass updates everything.
  {
    NoGradGuard no_grad;
    Tensor flat = arena.data();
    flat.copy_(mul(flat, 2.0));
  }
  CHECK(b.to_vector<float>() == std::vector<float>{8, 10, 12, 14});
  CHECK(arena.data().to_vector<float>()[3] == 0);  // padding stays zero
}

TEST_CASE("arena: two gradient buffers filled by two backward passes") {
  Tensor w = Tensor::from_vector<double>({1, 2}, {2}).set_requires_grad();
  Tensor v = Tensor::from_vector<double>({3}, {1}).set_requires_grad();
  ParamArena arena({w, v}, 2);
  sum(mul(w, v)).backward();  // into buffer 0
  arena.bind_grads(1);
  sum(mul(mul(w, w), v)).backward();  // into buffer 1
  const std::vector<double> g0 = arena.grad(0).to_vector<double>(), g1 = arena.grad(1).to_vector<double>();
  CHECK(g0[0] == 3);
  CHECK(g0[1] == 3);
  CHECK(g0[16] == 3);  // d/dv = w0 + w1
  CHECK(g1[0] == 6);
  CHECK(g1[1] == 12);
  CHECK(g1[16] == 5);
  arena.zero_grad(0);
  CHECK(sum(arena.grad(0)).item() == 0);
  CHECK_THROWS_WITH_AS(arena.grad(2), doctest::Contains("arena: no gradient buffer 2 (2 allocated)"), Error);
  CHECK_THROWS_WITH_AS(ParamArena({w, Tensor::zeros({2})}), doctest::Contains("arena: parameter 1 is float32[2] on cpu, expected float64"), Error);
}
