// Which simple queries may run behind another client's on one server (server_pipelining).
#include <catch2/catch.hpp>

#include <string_view>

#include "pgmux/pool/pipeline.h"

using namespace pgmux::pool;

TEST_CASE("one SELECT statement may be pipelined", "[pool][pipeline]") {
  const std::string_view accepted[] = {
      "SELECT abalance FROM pgbench_accounts WHERE aid = 42;",
      "select 1",
      "  \n\tSeLeCt * from t where a = 'x'  ;  \n",
      "SELECT(1)",
      "SELECT*FROM t",
      "SELECT pg_sleep(0.1)",
      // Near misses of set_config.
      "SELECT set_confi FROM s_e_t", "SELECT settings, config FROM t",
  };
  for (std::string_view sql : accepted) {
    INFO(sql);
    CHECK(pipelinableQuery(sql));
  }
}

TEST_CASE("anything that could leave the session changed is not pipelined", "[pool][pipeline]") {
  const std::string_view refused[] = {
      // A transaction block, or several statements (one of which could open one).
      "BEGIN", "START TRANSACTION; SELECT 1", "SELECT 1; BEGIN", "SELECT 1;;",
      // A `;` in a literal is refused too: the check does not parse SQL.
      "SELECT 'a;b'",
      // Settings: SET, or set_config in any case.
      "SET TimeZone = 'UTC'", "SELECT set_config('timezone', 'UTC', false)",
      "select SET_CONFIG('search_path', 'x', false)", "SELECT Set_Config", "SELECT pg_catalog.set_config('a', 'b', true)",
      // Other statements, names that merely start with the keyword, nothing at all.
      "INSERT INTO t VALUES (1)", "WITH x AS (SELECT 1) SELECT * FROM x", "selection", "select", "", "   ",
  };
  for (std::string_view sql : refused) {
    INFO(sql);
    CHECK_FALSE(pipelinableQuery(sql));
  }
}
