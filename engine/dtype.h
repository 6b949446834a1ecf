#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/error.h"

namespace lethe {

enum class DType : uint8_t { f32, f64, i32, i64, u8 };

constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::i32: return 4;
    case DType::i64: return 8;
    case DType::u8: return 1;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
    case DType::u8: return "uint8";
  }
  return "?";
}

constexpr bool is_floating(DType t) { return t == DType::f32 || t == DType::f64; }

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::u8; };
template <class T> inline constexpr DType dtype_v = dtype_of<T>::value;

}  // namespace lethe

// Runs `__VA_ARGS__` with `scalar_t` bound to the C++ type of `dtype`.
#define LETHE_CASE_DTYPE(enum_, type_, ...) \
  case ::lethe::DType::enum_: {             \
    using scalar_t = type_;                 \
    __VA_ARGS__;                            \
    break;                                  \
  }
#define LETHE_DISPATCH_FLOAT(dtype, op, ...)                                                  \
  switch (dtype) {                                                                            \
    LETHE_CASE_DTYPE(f32, float, __VA_ARGS__)                                                 \
    LETHE_CASE_DTYPE(f64, double, __VA_ARGS__)                                                \
    default: LETHE_FAIL(op, "expected a floating dtype, got ", ::lethe::dtype_name(dtype));   \
  }
#define LETHE_DISPATCH_ALL(dtype, op, ...)             \
  switch (dtype) {                                     \
    LETHE_CASE_DTYPE(f32, float, __VA_ARGS__)          \
    LETHE_CASE_DTYPE(f64, double, __VA_ARGS__)         \
    LETHE_CASE_DTYPE(i32, int32_t, __VA_ARGS__)        \
    LETHE_CASE_DTYPE(i64, int64_t, __VA_ARGS__)        \
    LETHE_CASE_DTYPE(u8, uint8_t, __VA_ARGS__)         \
    default: LETHE_FAIL(op, "unknown dtype");          \
  }
#define LETHE_DISPATCH_INDEX(dtype, op, ...)                                                   \
  switch (dtype) {                                                                             \
    LETHE_CASE_DTYPE(i32, int32_t, __VA_ARGS__)                                                \
    LETHE_CASE_DTYPE(i64, int64_t, __VA_ARGS__)                                                \
    default: LETHE_FAIL(op, "expected an int32 or int64 index tensor, got ", ::lethe::dtype_name(dtype)); \
  }
