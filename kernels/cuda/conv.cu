// conv2d on CUDA, two deterministic implementations chosen by set_conv_backend:
//  - cudnn: cuDNN with algorithms reporting CUDNN_DETERMINISTIC, FMA math for float32 (no TF32:
//    the CPU reference is full fp32), default math for float64; descriptors and algorithm
//    choices cached per shape;
//  - im2col: lethe's own lowering (the same column layout as the CPU) + cuBLAS GEMMs.
#include <array>
#include <climits>
#include <map>
#include <memory>
#include <mutex>

#include "kernels/conv.h"
#include "kernels/cuda/common.cuh"
#include "kernels/matmul.h"

namespace lethe::cuda {

namespace {

// ---- cuDNN

struct CudnnPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd_data{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
  size_t fwd_bytes = 0, bwd_data_bytes = 0, bwd_filter_bytes = 0;
};

int as_int(int64_t v) {
  LETHE_CHECK(v >= 0 && v <= INT_MAX, "conv2d", "extent ", v, " too large for cuDNN");
  return static_cast<int>(v);
}

// The fastest candidate (cuDNN lists them fastest first) that is deterministic and uses exactly
// the math we asked for.
template <class Perf>
const Perf& pick(const Perf* perf, int count, cudnnMathType_t math, const char* pass) {
  for (int i = 0; i < count; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].determinism == CUDNN_DETERMINISTIC &&
        perf[i].mathType == math)
      return perf[i];
  LETHE_FAIL("conv2d", "cuDNN offers no deterministic ", pass,
             " algorithm for this shape; use set_conv_backend(ConvBackend::im2col)");
}

CudnnPlan make_plan(cudnnHandle_t h, DType dtype, int64_t N, const ConvGeometry& g) {
  const cudnnDataType_t type = dtype == DType::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  const cudnnMathType_t math = dtype == DType::f64 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  CudnnPlan p;
  LETHE_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.x));
  LETHE_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.y));
  LETHE_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.bias));
  LETHE_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p.w));
  LETHE_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p.conv));
  LETHE_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p.x, CUDNN_TENSOR_NCHW, type, as_int(N), as_int(g.channels),
                                               as_int(g.height), as_int(g.width)));
  LETHE_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p.y, CUDNN_TENSOR_NCHW, type, as_int(N),
                                               as_int(g.out_channels), as_int(g.out_h), as_int(g.out_w)));
  LETHE_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p.bias, CUDNN_TENSOR_NCHW, type, 1,
                                               as_int(g.out_channels), 1, 1));
  LETHE_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p.w, type, CUDNN_TENSOR_NCHW, as_int(g.out_channels),
                                               as_int(g.channels / g.groups), as_int(g.kernel_h),
                                               as_int(g.kernel_w)));
  LETHE_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
      p.conv, as_int(g.pad_h), as_int(g.pad_w), as_int(g.stride_h), as_int(g.stride_w),
      as_int(g.dilation_h), as_int(g.dilation_w), CUDNN_CROSS_CORRELATION, type));
  LETHE_CUDNN_CHECK(cudnnSetConvolutionGroupCount(p.conv, as_int(g.groups)));
  LETHE_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, math));

  int count = 0;
  cudnnConvolutionFwdAlgoPerf_t fwd[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  LETHE_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, p.x, p.w, p.conv, p.y,
                                                           CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, fwd));
  p.fwd = pick(fwd, count, math, "forward").algo;
  LETHE_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, p.x, p.w, p.conv, p.y, p.fwd, &p.fwd_bytes));

  cudnnConvolutionBwdDataAlgoPerf_t data[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  LETHE_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
      h, p.w, p.y, p.conv, p.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, data));
  p.bwd_data = pick(data, count, math, "backward-data").algo;
  LETHE_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(h, p.w, p.y, p.conv, p.x, p.bwd_data,
                                                                 &p.bwd_data_bytes));

  cudnnConvolutionBwdFilterAlgoPerf_t filter[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  LETHE_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
      h, p.x, p.y, p.conv, p.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, filter));
  p.bwd_filter = pick(filter, count, math, "backward-filter").algo;
  LETHE_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p.x, p.y, p.conv, p.w,
                                                                   p.bwd_filter, &p.bwd_filter_bytes));
  return p;
}

// Plans live for the process (like the handles in runtime.cu), so their descriptors are never
// destroyed during static destruction.
const CudnnPlan& plan(int device, DType dtype, int64_t N, const ConvGeometry& g) {
  using Key = std::array<int64_t, 16>;
  static auto* const plans = new std::map<Key, std::unique_ptr<CudnnPlan>>();
  static std::mutex mutex;
  const Key key{device, static_cast<int64_t>(dtype), N, g.channels, g.height, g.width,
                g.out_channels, g.kernel_h, g.kernel_w, g.stride_h, g.stride_w, g.pad_h, g.pad_w,
                g.dilation_h, g.dilation_w, g.groups};
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = (*plans)[key];
  if (!slot) {
    // Algorithms are chosen before a capture, by running the work eagerly once at each shape
    // (relearning's StepRunner does): what cuDNN does to choose is not ours to vouch for in a
    // capture, and a failed choice must not leave a half-captured graph.
    LETHE_CHECK(!capturing(device), "conv2d", "no cuDNN plan for input [", N, ",", g.channels, ",", g.height, ",",
                g.width, "] yet, and the stream is capturing a CUDA graph: run the work once eagerly first");
    slot = std::make_unique<CudnnPlan>(make_plan(cudnn(device), dtype, N, g));
  }
  return *slot;
}

// A workspace from the caching allocator; the Tensor keeps it alive for the call, and blocks
// freed on the host are only reused by work queued after this on the same stream.
Tensor workspace(size_t bytes, Device device) {
  return Tensor::empty({static_cast<int64_t>(bytes)}, DType::u8, device);
}

void cudnn_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                   const ConvGeometry& g) {
  const int device = x.device().index;
  const CudnnPlan& p = plan(device, x.dtype(), x.size(0), g);
  const cudnnHandle_t h = cudnn(device);
  const Tensor ws = workspace(p.fwd_bytes, x.device());
  LETHE_DISPATCH_FLOAT(x.dtype(), "conv2d", {
    const scalar_t one = 1, zero = 0;
    LETHE_CUDNN_CHECK(cudnnConvolutionForward(h, &one, p.x, x.data_ptr(), p.w, w.data_ptr(), p.conv, p.fwd,
                                              ws.data_ptr(), p.fwd_bytes, &zero, p.y, y.data_ptr()));
    if (bias.defined())
      LETHE_CUDNN_CHECK(cudnnAddTensor(h, &one, p.bias, bias.data_ptr(), &one, p.y, y.data_ptr()));
  });
}

void cudnn_backward(const Tensor& x, const Tensor& w, const Tensor& gy, const Tensor& gx,
                    const Tensor& gw, const ConvGeometry& g) {
  const int device = x.device().index;
  const CudnnPlan& p = plan(device, x.dtype(), x.size(0), g);
  const cudnnHandle_t h = cudnn(device);
  LETHE_DISPATCH_FLOAT(x.dtype(), "conv2d_backward", {
    const scalar_t one = 1, zero = 0;
    if (gx.defined()) {
      const Tensor ws = workspace(p.bwd_data_bytes, x.device());
      LETHE_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, p.w, w.data_ptr(), p.y, gy.data_ptr(), p.conv,
                                                     p.bwd_data, ws.data_ptr(), p.bwd_data_bytes, &zero,
                                                     p.x, gx.data_ptr()));
    }
    if (gw.defined()) {
      const Tensor ws = workspace(p.bwd_filter_bytes, x.device());
      LETHE_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, p.x, x.data_ptr(), p.y, gy.data_ptr(), p.conv,
                                                       p.bwd_filter, ws.data_ptr(), p.bwd_filter_bytes,
                                                       &zero, p.w, gw.data_ptr()));
    }
  });
}

// ---- im2col + cuBLAS (the CPU's lowering; see kernels/common/conv.h)

// Column matrices of up to 64M elements: a whole training batch of a small CNN in one chunk.
constexpr int64_t kColBudget = int64_t{1} << 26;

template <class T>
__global__ void im2col_kernel(ConvGeometry g, const T* x, int64_t images, T* col) {
  const int64_t L = g.out_pixels(), cols = images * L;
  const int64_t total = g.col_rows() * cols;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total; idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = idx / cols, q = idx % cols;
    col[idx] = im2col_value(g, x + (q / L) * g.image_size(), r, q % L);
  }
}

template <class T>
__global__ void col2im_kernel(ConvGeometry g, const T* dcol, int64_t images, T* dx) {
  const int64_t total = images * g.image_size();
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total; idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t w = idx % g.width, h = (idx / g.width) % g.height;
    const int64_t c = (idx / (g.width * g.height)) % g.channels, n = idx / g.image_size();
    dx[idx] = col2im_value(g, dcol, images * g.out_pixels(), n, c, h, w);
  }
}

template <class T>
__global__ void gemm_to_nchw_kernel(ConvGeometry g, int64_t images, const T* out, const T* bias, T* y) {
  const int64_t L = g.out_pixels();
  const int64_t total = images * g.out_channels * L;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x)
    y[e] = out[conv_gemm_offset(g, images, e)] + (bias ? bias[(e / L) % g.out_channels] : T(0));
}

template <class T>
__global__ void nchw_to_gemm_kernel(ConvGeometry g, int64_t images, const T* gy, T* dy) {
  const int64_t total = images * g.out_channels * g.out_pixels();
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x)
    dy[conv_gemm_offset(g, images, e)] = gy[e];
}

void im2col_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                    const ConvGeometry& g) {
  const int64_t N = x.size(0), L = g.out_pixels(), R = g.group_rows(), Og = g.group_out_channels();
  const int64_t chunk = conv_chunk_images(g, N, kColBudget);
  const Tensor col = Tensor::empty({g.col_rows() * chunk * L}, x.dtype(), x.device());
  const Tensor out = Tensor::empty({g.out_channels * chunk * L}, x.dtype(), x.device());
  const cudaStream_t s = stream(x.device().index);
  LETHE_DISPATCH_FLOAT(x.dtype(), "conv2d", {
    const scalar_t* xp = static_cast<const scalar_t*>(x.data_ptr());
    const scalar_t* bp = bias.defined() ? static_cast<const scalar_t*>(bias.data_ptr()) : nullptr;
    scalar_t* yp = static_cast<scalar_t*>(y.data_ptr());
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
      const int64_t images = std::min(chunk, N - n0), cols = images * L;
      im2col_kernel<<<grid_for(g.col_rows() * cols), kThreads, 0, s>>>(
          g, xp + n0 * g.image_size(), images, static_cast<scalar_t*>(col.data_ptr()));
      LETHE_CUDA_CHECK_LAUNCH();
      gemm_batched(false, false, g.groups, Og, cols, R, w, R, Og * R, col, cols, R * cols, out, cols,
                   Og * cols, 0.0);
      gemm_to_nchw_kernel<<<grid_for(g.out_channels * cols), kThreads, 0, s>>>(
          g, images, static_cast<const scalar_t*>(out.data_ptr()), bp, yp + n0 * g.out_channels * L);
      LETHE_CUDA_CHECK_LAUNCH();
    }
  });
}

void im2col_backward(const Tensor& x, const Tensor& w, const Tensor& gy, const Tensor& gx,
                     const Tensor& gw, const ConvGeometry& g) {
  const int64_t N = x.size(0), L = g.out_pixels(), R = g.group_rows(), Og = g.group_out_channels();
  const int64_t chunk = conv_chunk_images(g, N, kColBudget);
  const Tensor col = Tensor::empty({g.col_rows() * chunk * L}, x.dtype(), x.device());
  const Tensor dy = Tensor::empty({g.out_channels * chunk * L}, x.dtype(), x.device());
  const cudaStream_t s = stream(x.device().index);
  LETHE_DISPATCH_FLOAT(x.dtype(), "conv2d_backward", {
    const scalar_t* xp = static_cast<const scalar_t*>(x.data_ptr());
    const scalar_t* gyp = static_cast<const scalar_t*>(gy.data_ptr());
    scalar_t* colp = static_cast<scalar_t*>(col.data_ptr());
    scalar_t* dyp = static_cast<scalar_t*>(dy.data_ptr());
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
      const int64_t images = std::min(chunk, N - n0), cols = images * L;
      nchw_to_gemm_kernel<<<grid_for(g.out_channels * cols), kThreads, 0, s>>>(
          g, images, gyp + n0 * g.out_channels * L, dyp);
      LETHE_CUDA_CHECK_LAUNCH();
      if (gw.defined()) {  // gw_g (+)= dy_g · col_gᵀ, chunks accumulated in order
        im2col_kernel<<<grid_for(g.col_rows() * cols), kThreads, 0, s>>>(
            g, xp + n0 * g.image_size(), images, colp);
        LETHE_CUDA_CHECK_LAUNCH();
        gemm_batched(false, true, g.groups, Og, R, cols, dy, cols, Og * cols, col, cols, R * cols, gw,
                     R, Og * R, n0 == 0 ? 0.0 : 1.0);
      }
      if (gx.defined()) {  // dcol_g = w_gᵀ · dy_g, then gathered back to pixels
        gemm_batched(true, false, g.groups, R, cols, Og, w, R, Og * R, dy, cols, Og * cols, col, cols,
                     R * cols, 0.0);
        col2im_kernel<<<grid_for(images * g.image_size()), kThreads, 0, s>>>(
            g, colp, images, static_cast<scalar_t*>(gx.data_ptr()) + n0 * g.image_size());
        LETHE_CUDA_CHECK_LAUNCH();
      }
    }
  });
}

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                    const ConvGeometry& g) {
  DeviceGuard guard(x.device().index);
  if (conv_backend() == ConvBackend::cudnn) {
    cudnn_forward(x, w, bias, y, g);
  } else {
    im2col_forward(x, w, bias, y, g);
  }
}

void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& gy, const Tensor& gx,
                     const Tensor& gw, const ConvGeometry& g) {
  DeviceGuard guard(x.device().index);
  if (conv_backend() == ConvBackend::cudnn) {
    cudnn_backward(x, w, gy, gx, gw, g);
  } else {
    im2col_backward(x, w, gy, gx, gw, g);
  }
}

}  // namespace lethe::cuda
