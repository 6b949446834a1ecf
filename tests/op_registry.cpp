// The checks every registered op case runs (tests/op_registry.h), and the test that every op of
// engine/ops.h has a case.
#include "op_registry.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "engine/device.h"

using namespace lethe;
using namespace lethe::test;

namespace lethe::test {

namespace {

std::map<std::string, CaseGroup>& groups() {
  static std::map<std::string, CaseGroup> by_name;  // ordered by name: one order in every run
  return by_name;
}

}  // namespace

bool register_op_cases(const char* group, CaseGroup cases) {
  groups().emplace(group, cases);
  return true;
}

const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> all = [] {
    std::vector<OpCase> out;
    for (const auto& [name, cases] : groups())
      for (OpCase& c : cases()) out.push_back(std::move(c));
    return out;
  }();
  return all;
}

Input Input::grad() const {
  Input out = *this;
  out.requires_grad = true;
  return out;
}

Input Input::fixed_dtype() const {
  Input out = *this;
  out.keep_dtype = true;
  return out;
}

Input uniform(const Shape& shape, uint64_t seed, double lo, double hi) {
  std::ostringstream what;
  what << "uniform [" << lo << ", " << hi << ") " << shape.str() << " seed " << seed;
  return {what.str(), [=] { return random_tensor(shape, seed, lo, hi); }};
}

Input distinct(const Shape& shape, uint64_t seed, double gap) {
  std::ostringstream what;
  what << "distinct (gap " << gap << ") " << shape.str() << " seed " << seed;
  return {what.str(), [=] { return distinct_tensor(shape, seed, gap); }};
}

Input made(std::string what, std::function<Tensor()> make) { return {std::move(what), std::move(make)}; }

Input absent(std::string what) { return {std::move(what), [] { return Tensor(); }}; }

Tensor expected(const std::vector<double>& values, const Shape& shape, DType dtype) {
  return Tensor::from_vector(values, shape).to(dtype);
}

}  // namespace lethe::test

namespace {

std::string describe(const Inputs& inputs) {
  std::string out;
  for (size_t i = 0; i < inputs.size(); ++i)
    out += "\n  input " + std::to_string(i) + ": " + inputs[i].what + (inputs[i].requires_grad ? ", requires grad" : "");
  return out;
}

// One run's inputs: made afresh, floating ones in the precision's dtype, integer ones in its index
// dtype (when set), on `device`, requiring grad where the case says so and `recorded` is set.
std::vector<Tensor> make_inputs(const Inputs& inputs, const Precision& precision, Device device, bool recorded) {
  std::vector<Tensor> out;
  for (const Input& in : inputs) {
    Tensor t = in.make();
    if (t.defined()) {
      if (!in.keep_dtype && is_floating(t.dtype())) t = t.to(precision.dtype);
      if (!in.keep_dtype && precision.index && (t.dtype() == DType::i32 || t.dtype() == DType::i64))
        t = t.to(*precision.index);
      t = t.to(device);
      if (recorded && in.requires_grad) t.set_requires_grad();
    }
    out.push_back(t);
  }
  return out;
}

// What the reference reads: float64 CPU copies (integers as they are), taken before fn runs, since
// an op may write into its inputs.
std::vector<Tensor> host_copies(const std::vector<Tensor>& inputs) {
  NoGradGuard no_grad;
  std::vector<Tensor> out;
  for (const Tensor& t : inputs) {
    if (!t.defined()) {
      out.push_back(t);
      continue;
    }
    const Tensor host = t.detach().to(Device::cpu());
    out.push_back((is_floating(host.dtype()) ? host.to(DType::f64) : host).clone());
  }
  return out;
}

void check_forward(const OpCase& c, Device device) {
  const ForwardCheck& check = *c.forward;
  INFO("inputs:", describe(check.inputs));
  const bool any_grad = std::any_of(check.inputs.begin(), check.inputs.end(), [](const Input& i) { return i.requires_grad; });
  for (const Precision& precision : check.precisions) {
    for (const bool recorded : {false, true}) {
      if (recorded && !any_grad) continue;
      std::string run = std::string(dtype_name(precision.dtype));
      if (precision.index) run += ", indices " + std::string(dtype_name(*precision.index));
      run += (recorded ? ", recorded for autograd on " : " on ") + device.str();
      INFO("run: ", run);
      const std::vector<Tensor> in = make_inputs(check.inputs, precision, device, recorded);
      const Tensor want = check.reference(host_copies(in));
      const Tensor got = c.fn(in);
      const DType dtype = want.dtype() == DType::f64 ? precision.dtype : want.dtype();
      CHECK_MESSAGE(got.dtype() == dtype, "dtype ", std::string(dtype_name(got.dtype())), ", expected ",
                    std::string(dtype_name(dtype)));
      CHECK_MESSAGE(got.device() == device, "on ", got.device().str(), ", expected ", device.str());
      expect_close(got, want, precision.rtol, precision.atol);
    }
  }
}

void check_gradient(const OpCase& c) {
  const GradCheck& check = *c.gradcheck;
  INFO("inputs:", describe(check.inputs));
  gradcheck(c.fn, make_inputs(check.inputs, Precision{}, Device::cpu(), true), check.eps, check.rtol, check.atol);
}

std::vector<bool> kept_dtypes(const Inputs& inputs) {
  std::vector<bool> keep_dtype;
  for (const Input& in : inputs) keep_dtype.push_back(in.keep_dtype);
  return keep_dtype;
}

void check_cpu_cuda_parity(const OpCase& c) {
  const ParityCheck& check = *c.parity;
  INFO("inputs:", describe(check.inputs));
  check_parity(c.fn, make_inputs(check.inputs, Precision{}, Device::cpu(), true), check.rtol, check.atol,
               kept_dtypes(check.inputs));
}

// Without a GPU: inputs that do not fit the case's op fail here too, not first on a GPU.
void check_parity_inputs(const OpCase& c) {
  const ParityCheck& check = *c.parity;
  INFO("inputs:", describe(check.inputs));
  check_parity_cpu_side(c.fn, make_inputs(check.inputs, Precision{}, Device::cpu(), true), kept_dtypes(check.inputs));
}

// Runs `check` on every case that has the check (`has`), each as a subcase named after the case.
template <class Has, class Check>
void for_each_case(Has has, Check check) {
  for (const OpCase& c : op_cases()) {
    if (!has(c)) continue;
    SUBCASE(c.name.c_str()) {
      INFO("op case ", c.name);
      try {
        if (c.within)
          c.within([&] { check(c); });
        else
          check(c);
      } catch (const std::exception& e) {
        FAIL_CHECK("op case ", c.name, " threw: ", std::string(e.what()));
      } catch (...) {
        // A failed REQUIRE, reported already. Caught so that the case's subcase ends normally and
        // doctest goes on to the next case.
      }
    }
  }
}

int count_cases(bool (*has)(const OpCase&)) {
  return static_cast<int>(std::count_if(op_cases().begin(), op_cases().end(), has));
}

bool has_forward(const OpCase& c) { return c.forward.has_value(); }
bool has_gradcheck(const OpCase& c) { return c.gradcheck.has_value(); }
bool has_parity(const OpCase& c) { return c.parity.has_value(); }

// The names of the functions a header declares or defines at namespace scope, the operators
// (sugar over add, sub, ...) left out: comments and preprocessor lines dropped, every statement at
// brace depth 1 (inside `namespace lethe {`) cut at ';' or at a body, and in each the identifier
// before its first '(' taken when a return type precedes it.
std::set<std::string> declared_functions(const std::string& header) {
  std::string code;
  for (size_t i = 0; i < header.size(); ++i) {
    if (header.compare(i, 2, "//") == 0) {
      i = header.find('\n', i);
      if (i == std::string::npos) break;
    } else if (header.compare(i, 2, "/*") == 0) {
      i = header.find("*/", i);
      if (i == std::string::npos) break;
      ++i;
      continue;
    } else if (header[i] == '#' && (i == 0 || header[i - 1] == '\n')) {
      i = header.find('\n', i);
      if (i == std::string::npos) break;
    }
    code += header[i];
  }
  std::vector<std::string> statements;
  std::string statement;
  int braces = 0, parens = 0;
  for (const char ch : code) {
    if (ch == '(') ++parens;
    if (ch == ')') --parens;
    if (ch == '{' && parens == 0 && ++braces == 2) statements.push_back(std::exchange(statement, ""));
    if (ch == '}' && parens == 0 && braces-- == 2) continue;
    if (braces == 1 && ch != '{') {
      if (ch == ';' && parens == 0)
        statements.push_back(std::exchange(statement, ""));
      else
        statement += ch;
    }
  }
  std::set<std::string> names;
  auto is_word = [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_'; };
  for (const std::string& s : statements) {
    size_t open = s.find('(');
    if (open == std::string::npos) continue;
    size_t end = open;
    while (end > 0 && std::isspace(static_cast<unsigned char>(s[end - 1]))) --end;
    size_t begin = end;
    while (begin > 0 && is_word(s[begin - 1])) --begin;
    const std::string name = s.substr(begin, end - begin);
    const bool has_return_type = s.find_first_not_of(" \t\n", 0) < begin;
    if (!name.empty() && has_return_type && name != "operator" && !std::isdigit(static_cast<unsigned char>(name[0])))
      names.insert(name);
  }
  return names;
}

std::string read_text(const char* path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot read ", std::string(path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

TEST_CASE("op registry: forward against float64") {
  for_each_case(has_forward, [](const OpCase& c) { check_forward(c, Device::cpu()); });
}

TEST_CASE("op registry: forward on CUDA against float64") {
  if (!cuda_available()) {
    record_skip("no CUDA device: the forward checks of " + std::to_string(count_cases(has_forward)) + " op cases on cuda:0");
    return;
  }
  for_each_case(has_forward, [](const OpCase& c) { check_forward(c, Device::cuda(0)); });
}

TEST_CASE("op registry: gradcheck") { for_each_case(has_gradcheck, check_gradient); }

TEST_CASE("op registry: CPU/CUDA parity") {
  if (!cuda_available()) {
    record_skip("no CUDA device: CPU/CUDA parity of " + std::to_string(count_cases(has_parity)) +
                " op cases (their CPU side ran)");
    for_each_case(has_parity, check_parity_inputs);
    return;
  }
  for_each_case(has_parity, check_cpu_cuda_parity);
}

TEST_CASE("op registry: every op in engine/ops.h has a case, and every case names one") {
  const std::set<std::string> declared = declared_functions(read_text(LETHE_OPS_HEADER));
  // The parser still reads the header: ops of its first, middle and last sections.
  for (const char* op : {"add", "conv2d", "cross_entropy", "gather"})
    REQUIRE_MESSAGE(declared.count(op) == 1, "the parse of ", LETHE_OPS_HEADER, " misses ", std::string(op));
  std::set<std::string> covered, names;
  for (const OpCase& c : op_cases()) {
    covered.insert(c.op());
    CHECK_MESSAGE(names.insert(c.name).second, "two op cases are named ", c.name);
    CHECK_MESSAGE(declared.count(c.op()) == 1, "op case ", c.name, ": engine/ops.h declares no op ", c.op());
    CHECK_MESSAGE(c.name.find_first_of(",*?") == std::string::npos, "op case ", c.name,
                  ": ',', '*' and '?' would break doctest's subcase filters");
    CHECK_MESSAGE((c.forward || c.gradcheck || c.parity), "op case ", c.name, " checks nothing");
  }
  std::vector<std::string> missing;
  for (const std::string& op : declared)
    if (covered.count(op) == 0) missing.push_back(op);
  CHECK_MESSAGE(missing.empty(), "ops declared in engine/ops.h without a case in tests/op_cases_*.cpp: ", joined(missing));
}
