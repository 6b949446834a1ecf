#pragma once
// Progress of a long loop on stderr: a redrawn bar (items/s, loss, ETA) on a terminal, a plain
// line every few seconds otherwise (logs stay readable). stdout stays free for results.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace lethe::study {

class Progress {
 public:
  // `quiet`: print nothing (e.g. --json runs that want a clean stderr too).
  Progress(std::string label, int64_t total_items, bool quiet = false);
  // `done` items so far. `loss` is called only when a line is about to be drawn (reading a
  // device loss synchronises), and may be empty.
  void update(int64_t done, const std::function<double()>& loss = {});
  // Ends the bar with a closing line.
  void finish(const std::string& summary);
  double seconds() const;

 private:
  void draw(int64_t done, double loss, bool has_loss);

  std::string label_;
  int64_t total_;
  bool quiet_, tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace lethe::study
