#pragma once
// Shape: up to kMaxDims extents (or strides) stored inline, so tensors never allocate for metadata.
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "engine/error.h"

namespace lethe {

inline constexpr int kMaxDims = 6;

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) {
    LETHE_CHECK(dims.size() <= kMaxDims, "shape", "at most ", kMaxDims, " dims, got ", dims.size());
    for (int64_t d : dims) v_[n_++] = d;
  }
  template <class It>
  Shape(It first, It last) {
    for (; first != last; ++first) push_back(static_cast<int64_t>(*first));
  }

  int size() const { return n_; }
  bool empty() const { return n_ == 0; }
  int64_t& operator[](int i) { return v_[i]; }
  int64_t operator[](int i) const { return v_[i]; }
  int64_t back() const { return v_[n_ - 1]; }
  const int64_t* begin() const { return v_.data(); }
  const int64_t* end() const { return v_.data() + n_; }
  int64_t* begin() { return v_.data(); }
  int64_t* end() { return v_.data() + n_; }

  void push_back(int64_t d) {
    LETHE_CHECK(n_ < kMaxDims, "shape", "at most ", kMaxDims, " dims");
    v_[n_++] = d;
  }
  void insert(int pos, int64_t d) {
    LETHE_CHECK(n_ < kMaxDims, "shape", "at most ", kMaxDims, " dims");
    for (int i = n_; i > pos; --i) v_[i] = v_[i - 1];
    v_[pos] = d;
    ++n_;
  }
  void erase(int pos) {
    for (int i = pos; i + 1 < n_; ++i) v_[i] = v_[i + 1];
    --n_;
  }

  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < n_; ++i) n *= v_[i];
    return n;
  }

  bool operator==(const Shape& o) const {
    if (n_ != o.n_) return false;
    for (int i = 0; i < n_; ++i)
      if (v_[i] != o.v_[i]) return false;
    return true;
  }
  bool operator!=(const Shape& o) const { return !(*this == o); }

  std::string str() const {
    std::string s = "[";
    for (int i = 0; i < n_; ++i) {
      if (i) s += ',';
      s += std::to_string(v_[i]);
    }
    s += ']';
    return s;
  }

 private:
  std::array<int64_t, kMaxDims> v_{};
  int n_ = 0;
};

// Row-major strides of a contiguous tensor of this shape.
inline Shape contiguous_strides(const Shape& shape) {
  Shape s = shape;
  int64_t stride = 1;
  for (int i = shape.size() - 1; i >= 0; --i) {
    s[i] = stride;
    stride *= shape[i];
  }
  return s;
}

// Normalises a possibly negative dim index against a rank; throws with the op's name otherwise.
inline int normalize_dim(int dim, int rank, const char* op) {
  int d = dim < 0 ? dim + rank : dim;
  LETHE_CHECK(d >= 0 && d < rank, op, "dim ", dim, " out of range for a ", rank, "-d tensor");
  return d;
}

// NumPy broadcasting of two shapes; throws naming the op and both shapes when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace lethe
