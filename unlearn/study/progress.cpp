#include "unlearn/study/progress.h"

#include <fmt/core.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace lethe::study {

namespace {
using Clock = std::chrono::steady_clock;
// Redraw a terminal bar 10 times a second; write a log line every 10 seconds.
constexpr std::chrono::milliseconds kTtyInterval{100}, kLogInterval{10000};
constexpr int kBarWidth = 24;

std::string clock_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60) : fmt::format("{:02}:{:02}", s / 60, s % 60);
}
}  // namespace

Progress::Progress(std::string label, int64_t total_items, bool quiet)
    : label_(std::move(label)),
      total_(total_items),
      quiet_(quiet),
      tty_(isatty(fileno(stderr)) != 0),
      start_(Clock::now()),
      last_draw_(start_) {}

double Progress::seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

void Progress::update(int64_t done, const std::function<double()>& loss) {
  if (quiet_) return;
  const auto now = Clock::now();
  if (now - last_draw_ < (tty_ ? kTtyInterval : kLogInterval)) return;
  last_draw_ = now;
  draw(done, loss ? loss() : 0, static_cast<bool>(loss));
}

void Progress::draw(int64_t done, double loss, bool has_loss) {
  const double elapsed = seconds();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : NAN;
  const double fraction = total_ > 0 ? static_cast<double>(done) / static_cast<double>(total_) : 1;
  const std::string loss_text = has_loss ? fmt::format("  loss {:.4f}", loss) : "";
  // Slow loops (relearning evaluates whole forget sets) run at a fraction of an item a second.
  const std::string rate_text = rate >= 10 ? fmt::format("{:.0f}", rate) : fmt::format("{:.2g}", rate);
  if (tty_) {
    const int filled = static_cast<int>(fraction * kBarWidth);
    fmt::print(stderr, "\r{} [{}{}] {:3.0f}%  {} items/s{}  ETA {}\033[K", label_, std::string(filled, '#'),
               std::string(kBarWidth - filled, '.'), 100 * fraction, rate_text, loss_text, clock_text(eta));
  } else {
    fmt::print(stderr, "{}: {}/{} ({:.0f}%)  {} items/s{}  ETA {}\n", label_, done, total_, 100 * fraction, rate_text,
               loss_text, clock_text(eta));
  }
  std::fflush(stderr);
}

void Progress::finish(const std::string& summary) {
  if (quiet_) return;
  if (tty_)
    fmt::print(stderr, "\r{}: {}\033[K\n", label_, summary);
  else
    fmt::print(stderr, "{}: {}\n", label_, summary);
  std::fflush(stderr);
}

}  // namespace lethe::study
