#include <cstring>

#include "harness.h"

using namespace lethe;

TEST_CASE("tensor: creation, dtypes and metadata") {
  const Tensor z = Tensor::zeros({2, 3}, DType::f64);
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.numel() == 6);
  CHECK(z.dtype() == DType::f64);
  CHECK(z.device() == Device::cpu());
  CHECK(z.is_contiguous());
  CHECK(z.str() == "float64[2,3] on cpu");
  CHECK(Tensor::full({2}, 7, DType::i32).to_vector<int32_t>() == std::vector<int32_t>{7, 7});
  CHECK(Tensor::ones({3}, DType::u8).to_vector<uint8_t>() == std::vector<uint8_t>{1, 1, 1});
  CHECK(Tensor::arange(0, 5, 2, DType::i64).to_vector<int64_t>() == std::vector<int64_t>{0, 2, 4});
  CHECK(Tensor::arange(1, 0, -0.25).to_vector<float>() == std::vector<float>{1, 0.75f, 0.5f, 0.25f});
  CHECK(Tensor::scalar(3.5).dim() == 0);
  CHECK(Tensor::scalar(3.5).item() == 3.5);
  // CPU buffers are 64-byte aligned
  CHECK(reinterpret_cast<uintptr_t>(Tensor::empty({5}).data_ptr()) % kCpuAlignment == 0);
  CHECK(Device::parse("cuda:1") == Device::cuda(1));
  CHECK_THROWS_WITH_AS(Device::parse("gpu"), doctest::Contains("device: cannot parse 'gpu'"), Error);
  CHECK_THROWS_WITH_AS(Tensor::from_vector<float>({1, 2, 3}, {2, 2}), doctest::Contains("3 values do not fill shape [2,2]"), Error);
  CHECK_THROWS_WITH_AS(Shape({1, 2, 3, 4, 5, 6, 7}), doctest::Contains("at most 6 dims"), Error);
}

TEST_CASE("tensor: views share storage and copy nothing") {
  Tensor x = Tensor::arange(0, 24).reshape({2, 3, 4});
  const Tensor v = x.view({6, 4});
  CHECK(v.data_ptr() == x.data_ptr());
  CHECK(x.view({-1, 12}).shape() == Shape{2, 12});
  const Tensor t = x.transpose(0, 2);
  CHECK(t.shape() == Shape{4, 3, 2});
  CHECK_FALSE(t.is_contiguous());
  CHECK(t.data_ptr() == x.data_ptr());
  CHECK(t.contiguous().to_vector<float>()[1] == 12);  // t[0,0,1] = x[1,0,0]
  const Tensor p = x.permute({1, 2, 0});
  CHECK(p.shape() == Shape{3, 4, 2});
  CHECK(p.contiguous().to_vector<float>()[1] == 12);
  const Tensor n = x.narrow(2, 1, 2);
  CHECK(n.shape() == Shape{2, 3, 2});
  CHECK(n.contiguous().to_vector<float>() == std::vector<float>{1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22});
  CHECK(x.select(0, 1).shape() == Shape{3, 4});
  CHECK(x.select(0, 1).to_vector<float>()[0] == 12);
  CHECK(x.unsqueeze(1).shape() == Shape{2, 1, 3, 4});
  CHECK(x.unsqueeze(-1).shape() == Shape{2, 3, 4, 1});
  CHECK(x.unsqueeze(0).squeeze(0).shape() == x.shape());
  CHECK(x.flatten(1).shape() == Shape{2, 12});
  const Tensor e = Tensor::arange(0, 3).view({3, 1}).expand({3, 4});
  CHECK(e.strides()[1] == 0);
  CHECK(e.contiguous().to_vector<float>()[5] == 1);
  // reshape of a non-contiguous tensor copies; view refuses
  CHECK(t.reshape({24}).to_vector<float>()[1] == 12);
  CHECK_THROWS_WITH_AS(t.view({24}), doctest::Contains("view: needs a contiguous tensor"), Error);
  CHECK_THROWS_WITH_AS(x.view({5, 5}), doctest::Contains("view: shape [5,5] does not hold 24 elements"), Error);
  CHECK_THROWS_WITH_AS(x.narrow(1, 2, 2), doctest::Contains("narrow: range [2, 4) outside dim 1 of [2,3,4]"), Error);
  CHECK_THROWS_WITH_AS(x.permute({0, 0, 1}), doctest::Contains("permute: dim 0 repeated"), Error);
}

TEST_CASE("tensor: copies, conversion and in-place writes") {
  Tensor x = Tensor::arange(0, 6).reshape({2, 3});
  Tensor c = x.clone();
  CHECK(c.data_ptr() != x.data_ptr());
  c.fill_(1);
  CHECK(x.to_vector<float>()[0] == 0);
  CHECK(x.to(DType::i32).to_vector<int32_t>() == std::vector<int32_t>{0, 1, 2, 3, 4, 5});
  CHECK(x.to(DType::f64).to(DType::u8).to_vector<uint8_t>()[5] == 5);
  // copy_ broadcasts and converts into a strided destination
  Tensor dst = Tensor::zeros({3, 2}, DType::f64);
  dst.t().copy_(Tensor::from_vector<float>({1, 2, 3}, {3}));
  CHECK(dst.to_vector<double>() == std::vector<double>{1, 1, 2, 2, 3, 3});
  dst.narrow(0, 1, 1).zero_();
  CHECK(dst.to_vector<double>() == std::vector<double>{1, 1, 0, 0, 3, 3});
  Tensor acc = Tensor::ones({3});
  acc.add_(Tensor::from_vector<float>({1, 2, 3}, {3}), 2);
  CHECK(acc.to_vector<float>() == std::vector<float>{3, 5, 7});
  CHECK_THROWS_WITH_AS(x.to_vector<double>(), doctest::Contains("to_vector: tensor is float32, asked for float64"), Error);
}

TEST_CASE("tensor: Philox random fills are reproducible and addressed by element") {
  const Tensor a = Tensor::randn({1000}, 42, 7), b = Tensor::randn({1000}, 42, 7);
  CHECK(a.to_vector<float>() == b.to_vector<float>());
  CHECK(Tensor::randn({1000}, 43, 7).to_vector<float>() != a.to_vector<float>());
  // Element i does not depend on the tensor's size: a prefix of a longer stream is the same.
  const std::vector<float> longer = Tensor::randn({1003}, 42, 7).to_vector<float>();
  CHECK(std::vector<float>(longer.begin(), longer.begin() + 1000) == a.to_vector<float>());
  const std::vector<float> u = Tensor::rand({10000}, 1).to_vector<float>();
  for (float v : u) REQUIRE((v >= 0 && v < 1));
  CHECK_THROWS_WITH_AS(Tensor::rand({2}, 1, 0, DType::i32), doctest::Contains("rand: needs a floating dtype"), Error);
}

TEST_CASE("tensor: CPU/CUDA transfers and random streams are identical") {
  if (!test::cuda_or_skip("device transfers")) return;
  const Tensor x = test::random_tensor({7, 9}, 3, -1, 1, DType::f32);
  const Tensor g = x.to(Device::cuda(0));
  CHECK(g.device() == Device::cuda(0));
  CHECK(g.to(Device::cpu()).to_vector<float>() == x.to_vector<float>());
  CHECK(g.t().contiguous().to(Device::cpu()).to_vector<float>() == x.t().contiguous().to_vector<float>());
  // bit-identical Philox numbers on both devices
  const std::vector<float> cpu_n = Tensor::randn({4099}, 5, 2).to_vector<float>();
  const std::vector<float> gpu_n = Tensor::randn({4099}, 5, 2, DType::f32, Device::cuda(0)).to_vector<float>();
  CHECK(std::memcmp(cpu_n.data(), gpu_n.data(), cpu_n.size() * sizeof(float)) == 0);
  CHECK(Tensor::rand({4099}, 5, 2).to_vector<float>() ==
        Tensor::rand({4099}, 5, 2, DType::f32, Device::cuda(0)).to_vector<float>());
  CHECK_THROWS_WITH_AS(add(x, g), doctest::Contains("add: devices differ"), Error);
}

TEST_CASE("tensor: launchers' ptr ignores the device, host data refuses a CUDA tensor") {
  // A CPU buffer labelled as CUDA memory, never dereferenced: what a CUDA launcher sees of an
  // optional operand, checkable without a GPU. The label is put back before the buffer is freed.
  Tensor t = Tensor::zeros({4});
  void* const raw = t.data_ptr();
  struct Relabel {
    StorageImpl& s;
    ~Relabel() { s.device = Device::cpu(); }
  } relabel{*t.impl().storage};
  relabel.s.device = Device::cuda(0);
  CHECK(t.ptr<float>() == raw);
  CHECK(ptr_or_null<const float>(t) == raw);
  CHECK(ptr_or_null<float>(Tensor()) == nullptr);
  CHECK_THROWS_WITH_AS(t.data<float>(), doctest::Contains("host access needs a cpu tensor"), Error);
  CHECK_THROWS_WITH_AS(t.ptr<double>(), doctest::Contains("tensor is float32, asked for float64"), Error);
}
