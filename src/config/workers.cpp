// workers = 0: the CPUs pgmux may use, from sched_getaffinity and /sys/fs/cgroup/cpu.max.
#include "pgmux/config/workers.h"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>
#include <string>

namespace pgmux::config {

int autoWorkers(int affinityCpus, std::string_view cpuMax) {
  int n = std::max(affinityCpus, 1);
  const size_t space = cpuMax.find(' ');
  if (space != std::string_view::npos && cpuMax.substr(0, space) != "max") {
    long quota = 0;
    long period = 0;
    const std::string_view q = cpuMax.substr(0, space);
    std::string_view p = cpuMax.substr(space + 1);
    while (!p.empty() && (p.back() == '\n' || p.back() == ' ')) p.remove_suffix(1);
    const bool okQuota = std::from_chars(q.data(), q.data() + q.size(), quota).ec == std::errc{};
    const bool okPeriod = std::from_chars(p.data(), p.data() + p.size(), period).ec == std::errc{};
    if (okQuota && okPeriod && quota > 0 && period > 0) {
      n = static_cast<int>(std::min<long>(n, (quota + period - 1) / period));
    }
  }
  return std::clamp(n, 1, kMaxAutoWorkers);
}

int resolveWorkers(int configured) {
  if (configured > 0) return configured;
  cpu_set_t set;
  CPU_ZERO(&set);
  const int cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
  std::ifstream f("/sys/fs/cgroup/cpu.max");
  const std::string cpuMax((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return autoWorkers(cpus, cpuMax);
}

}  // namespace pgmux::config
