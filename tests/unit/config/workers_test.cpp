// workers = 0: one worker per usable CPU, bounded by a cgroup v2 CPU quota.
#include <catch2/catch.hpp>

#include "pgmux/config/workers.h"

using pgmux::config::autoWorkers;
using pgmux::config::kMaxAutoWorkers;
using pgmux::config::resolveWorkers;

TEST_CASE("without a quota every CPU of the affinity mask gets a worker", "[config]") {
  CHECK(autoWorkers(2, "") == 2);
  CHECK(autoWorkers(2, "max 100000\n") == 2);
  CHECK(autoWorkers(0, "") == 1);
  CHECK(autoWorkers(64, "max 100000") == kMaxAutoWorkers);
}

TEST_CASE("a cgroup CPU quota caps the workers, rounded up", "[config]") {
  CHECK(autoWorkers(8, "100000 100000\n") == 1);  // a limit of one CPU
  CHECK(autoWorkers(8, "150000 100000\n") == 2);  // 1.5 CPUs
  CHECK(autoWorkers(8, "50000 100000") == 1);     // half a CPU
  CHECK(autoWorkers(2, "400000 100000") == 2);    // more quota than CPUs
  CHECK(autoWorkers(8, "garbage") == 8);
  CHECK(autoWorkers(8, "0 100000") == 8);
}

TEST_CASE("a configured count is kept as it is", "[config]") {
  CHECK(resolveWorkers(3) == 3);
  CHECK(resolveWorkers(1) == 1);
  CHECK(resolveWorkers(0) >= 1);
}
