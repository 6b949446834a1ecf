#include "unlearn/trajectory.h"

#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <variant>

#include "engine/error.h"

namespace lethe::unlearn {

namespace {

constexpr const char* kOp = "trajectory";

// A host view or copy of a parameter, outside autograd (detached: nothing is recorded).
Tensor host(const Tensor& t) {
  const Tensor d = t.detach();
  return d.is_cuda() ? d.to(Device::cpu()) : d.contiguous();
}

// The elements of a host tensor, typed: f32 and f64 are what parameters are kept in.
using Values = std::variant<const float*, const double*>;
Values values(const Tensor& t, const std::string& name) {
  if (t.dtype() == DType::f32) return t.data<float>();
  if (t.dtype() == DType::f64) return t.data<double>();
  LETHE_FAIL(kOp, "parameter '", name, "' is ", t.str(), ": only float32 and float64 weights are logged");
}

// Σ x² and Σ (x − y_r)² for the three references in one pass, the differences taken in float64
// as weight_distances does. Four independent sums, each added in index order (so the results are
// weight_distances' bit for bit), overlap in the pipeline: 3-4x faster than four passes. An absent
// reference is given as x itself (its sum stays 0 and is not written).
std::array<double, 4> sums(const Values& x, const std::array<Values, 3>& refs, int64_t n) {
  return std::visit(
      [n](auto* a, auto* r0, auto* r1, auto* r2) {
        std::array<double, 4> s{};
        for (int64_t k = 0; k < n; ++k) {
          const double v = static_cast<double>(a[k]);
          const double d0 = v - static_cast<double>(r0[k]), d1 = v - static_cast<double>(r1[k]),
                       d2 = v - static_cast<double>(r2[k]);
          s[0] += v * v;
          s[1] += d0 * d0;
          s[2] += d1 * d1;
          s[3] += d2 * d2;
        }
        return s;
      },
      x, refs[0], refs[1], refs[2]);
}

// Shortest round-trip decimal: exact when read back, and the same bytes for the same value.
std::string number(double v) {
  char buf[32];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

// A CSV field: quoted only when it has to be (labels are free text; layer names never need it).
std::string field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (const char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace

NamedTensors snapshot(const NamedTensors& params) {
  NamedTensors out;
  out.reserve(params.size());
  for (const auto& [name, t] : params) {
    const Tensor d = t.detach();
    out.emplace_back(name, d.is_cuda() ? d.to(Device::cpu()) : d.clone());
  }
  return out;
}

NamedTensors checkpoint_parameters(const nn::Checkpoint& checkpoint) {
  // Loading the model sorts parameters from buffers and checks the names and shapes.
  return nn::load_model(checkpoint, Device::cpu()).net().named_parameters();
}

TrajectoryLog::TrajectoryLog(const std::filesystem::path& csv, TrajectoryReferences refs, int64_t every, bool append)
    : path_(csv), every_(every) {
  LETHE_CHECK(every >= 1, kOp, "every = ", every, ": must be at least 1 (record every K-th step)");
  refs_ = {{"start", snapshot(refs.start)}, {"original", snapshot(refs.original)},
           {"retrained", snapshot(refs.retrained)}};
  std::error_code ec;
  const bool has_rows = append && std::filesystem::exists(csv, ec) && std::filesystem::file_size(csv, ec) > 0 && !ec;
  if (has_rows) {
    // Appending rows under another header would silently shift every column.
    std::ifstream in(csv);
    std::string first;
    std::getline(in, first);
    LETHE_CHECK(first == kHeader, kOp, csv.string(), ": cannot append: its first line is not the trajectory header '",
                kHeader, "'");
  }
  // Always written in append mode, after truncating when not appending: several logs may share
  // one file (one per model of a batched run), and each record must land at the end, not over
  // another log's rows. Every write is checked (a full disk is an error, and leaves no half row).
  out_.emplace(csv.string(), kOp, !append);
  if (!has_rows) out_->write(std::string(kHeader) + '\n');
}

void TrajectoryLog::record(const std::string& run, const std::string& phase, int64_t step, const NamedTensors& params,
                           bool force) {
  if (!force && step % every_ != 0) return;
  for (const Reference& ref : refs_) {
    if (ref.tensors.empty()) continue;
    LETHE_CHECK(ref.tensors.size() == params.size(), kOp, "the ", ref.label, " reference has ", ref.tensors.size(),
                " parameter tensors, the model ", params.size(), " (a state dict with buffers, or another model?)");
    for (size_t i = 0; i < params.size(); ++i)
      LETHE_CHECK(ref.tensors[i].first == params[i].first && ref.tensors[i].second.shape() == params[i].second.shape(),
                  kOp, "parameter ", i, " is ", params[i].first, params[i].second.shape().str(), " in the model but ",
                  ref.tensors[i].first, ref.tensors[i].second.shape().str(), " in the ", ref.label, " reference");
  }
  const std::string prefix = field(run) + "," + field(phase) + "," + std::to_string(step) + ",";
  std::string rows;
  std::array<double, 4> model{};  // Σ x², then Σ (x − y_r)² per reference
  int64_t total = 0;
  auto row = [&](const std::string& layer, int64_t numel, const std::array<double, 4>& s) {
    // Appended piece by piece (GCC 12 warns falsely on `"," + std::string` here: -Wrestrict).
    rows += prefix;
    rows += field(layer);
    rows += ',';
    rows += std::to_string(numel);
    rows += ',';
    rows += number(std::sqrt(s[0]));
    for (size_t r = 0; r < refs_.size(); ++r) {
      rows += ',';
      if (!refs_[r].tensors.empty()) rows += number(std::sqrt(s[r + 1]));
    }
    rows += '\n';
  };
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& [name, tensor] = params[i];
    const Tensor p = host(tensor);
    const Values x = values(p, name);
    std::array<Values, 3> y = {x, x, x};
    for (size_t r = 0; r < refs_.size(); ++r)
      if (!refs_[r].tensors.empty()) y[r] = values(refs_[r].tensors[i].second, name);
    const std::array<double, 4> s = sums(x, y, p.numel());
    row(name, p.numel(), s);
    total += p.numel();
    for (size_t j = 0; j < s.size(); ++j) model[j] += s[j];
  }
  row("model", total, model);
  out_->write(rows);  // one write per record: an interrupted run loses at most the record in flight
}

}  // namespace lethe::unlearn
