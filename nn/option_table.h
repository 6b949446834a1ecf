#pragma once
// One declaration per hyper-parameter of an options struct (nn::Recipe, unlearn::MethodOptions,
// unlearn::RelearnOptions): its name, the field it sets, the range its text must lie in or the
// values it may take, its help text, and what its initial value is (a default --help shows, or a
// placeholder resolve() replaces). Everything else is made from the declaration, so a name is
// written once:
//  - the flag --NAME with its help, range check and default (unlearn/study/option_flags.h), which is
//    also the key NAME of TOML configs and study tables (they are read through the flags);
//  - the JSON key: NAME with '_' for '-' in output JSON, NAME itself in checkpoint metadata
//    (nn/option_json.h);
//  - the name in the struct's validation errors (option_name).
// The surfaces are the table's: every option of a table is a flag of the subcommand that registers
// it (train: the recipe; unlearn: the methods' options; relearn, and `lethe run`'s [relearn]
// table: the relearning options) and a key of its struct's JSON. Dependency-free, so the library
// declares its options without knowing the CLI.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace lethe::nn {

// Counts, sizes and step numbers: no option needs more, and a tensor index of this times a batch
// still fits in int64.
inline constexpr int64_t kMaxCount = int64_t{1} << 31;

// The range of a numeric option, checked on its text before any conversion (unlearn/study/option_range.h).
struct OptionRange {
  enum class Kind { any, integer, seed, real } kind = Kind::any;
  int64_t lo = 0, hi = 0;             // integer: a decimal integer in [lo, hi]
  double real_lo = 0, real_hi = 0;    // real: NaN never, ±inf only when that bound is itself infinite
  bool lo_open = false, hi_open = false;
};
// A decimal integer in [lo, hi] (no hex, octal or exponent: "010" is ten, "1e3" is refused).
constexpr OptionRange integer_in(int64_t lo, int64_t hi) { return {OptionRange::Kind::integer, lo, hi}; }
// A seed: a decimal integer in [0, 2^64−1].
constexpr OptionRange seed_range() { return {OptionRange::Kind::seed}; }
// A real number in the interval.
constexpr OptionRange real_in(double lo, double hi, bool lo_open = false, bool hi_open = false) {
  return {OptionRange::Kind::real, 0, 0, lo, hi, lo_open, hi_open};
}
// A fraction in [0, 1].
constexpr OptionRange fraction() { return real_in(0, 1); }
// A momentum or a β: [0, 1).
constexpr OptionRange unit_open() { return real_in(0, 1, false, true); }
// A positive real up to `hi`: (0, hi].
constexpr OptionRange positive_up_to(double hi) { return real_in(0, hi, true, false); }

template <class S>
using OptionField = std::variant<int64_t S::*, int S::*, uint64_t S::*, double S::*, std::string S::*, bool S::*>;

// The field's initial value, which decides how --help shows the option and how a bool is given.
enum class Initial {
  shown,        // a default, shown by --help
  placeholder,  // NaN, 0 or "" that the struct's resolve() replaces: not shown
  flag,         // a bool, false: given as the flag --NAME, which sets it
};

template <class S>
struct OptionSpec {
  // (A constructor, not an aggregate with default member initializers: GCC 12 crashes on those.)
  OptionSpec(const char* name_, OptionField<S> field_, const char* help_, OptionRange range_ = {},
             std::vector<std::string> choices_ = {}, Initial initial_ = Initial::shown)
      : name(name_), field(field_), help(help_), range(range_), choices(std::move(choices_)), initial(initial_) {}
  // A flag.
  OptionSpec(const char* name_, bool S::*field_, const char* help_, Initial initial_)
      : name(name_), field(field_), help(help_), initial(initial_) {}

  const char* name;  // the flag without "--", the TOML key; lower case, words joined by '-'
  OptionField<S> field;
  const char* help;
  OptionRange range;                 // numbers
  std::vector<std::string> choices;  // strings: the values allowed (empty: any)
  Initial initial;
};

template <class S>
using OptionTable = std::vector<OptionSpec<S>>;

// The declaration of `field` in `table`; a field without one is a bug (std::logic_error).
template <class S, class T>
const OptionSpec<S>& option_spec(const OptionTable<S>& table, T S::*field) {
  for (const OptionSpec<S>& spec : table)
    if (const auto* f = std::get_if<T S::*>(&spec.field); f != nullptr && *f == field) return spec;
  throw std::logic_error("an option field without a declaration");
}
template <class S, class T>
const char* option_name(const OptionTable<S>& table, T S::*field) {
  return option_spec(table, field).name;
}

}  // namespace lethe::nn
