// What `workers = 0` (the default) means: one event-loop thread per CPU pgmux may use, as far
// as the scheduler lets it (CPU affinity) and the cgroup quota allows (a Kubernetes CPU limit),
// at most kMaxAutoWorkers.
#pragma once

#include <string_view>

namespace pgmux::config {

inline constexpr int kMaxAutoWorkers = 16;

// The worker count for the setting `configured` (0: automatic).
int resolveWorkers(int configured);

// The automatic count from the number of CPUs in the affinity mask and the contents of the
// cgroup v2 file cpu.max ("max 100000", or "150000 100000": quota and period in microseconds;
// empty when there is none): the quota rounded up, never more than the CPUs, at least 1, at
// most kMaxAutoWorkers.
int autoWorkers(int affinityCpus, std::string_view cpuMax);

}  // namespace pgmux::config
