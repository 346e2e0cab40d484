// A driver's reset query answered locally: what counts as one, and the bytes of the reply.
#include <catch2/catch.hpp>

#include "pgmux/pool/reset_query.h"

using namespace pgmux::pool;

namespace {
constexpr std::string_view kAsyncpg = "SELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET ALL;";

std::string bytes(std::initializer_list<std::string_view> parts) {
  std::string s;
  for (auto p : parts) s.append(p);
  return s;
}
}  // namespace

TEST_CASE("asyncpg's reset query gets PostgreSQL 15's reply, byte for byte", "[pool][reset]") {
  std::string out;
  bool resetAll = false;
  REQUIRE(answerResetQuery(kAsyncpg, out, resetAll));
  CHECK(resetAll);
  // Captured from PostgreSQL 15 for the same query, up to the ReadyForQuery that is the caller's.
  const std::string want = bytes({
      std::string_view("T\x00\x00\x00/\x00\x01pg_advisory_unlock_all\x00\x00\x00\x00\x00\x00\x00\x00\x00\x08\xe6"
                       "\x00\x04\xff\xff\xff\xff\x00\x00", 48),
      std::string_view("D\x00\x00\x00\n\x00\x01\x00\x00\x00\x00", 11),
      std::string_view("C\x00\x00\x00\rSELECT 1\x00", 14),
      std::string_view("C\x00\x00\x00\x15" "CLOSE CURSOR ALL\x00", 22),
      std::string_view("C\x00\x00\x00\rUNLISTEN\x00", 14),
      std::string_view("C\x00\x00\x00\nRESET\x00", 11),
  });
  CHECK(out == want);
}

TEST_CASE("case, whitespace, order and empty statements do not matter", "[pool][reset]") {
  std::string a, b;
  bool resetAll = false;
  REQUIRE(answerResetQuery("  reset all ; ;unlisten   *", a, resetAll));
  REQUIRE(answerResetQuery("RESET ALL;\tUNLISTEN *;", b, resetAll));
  CHECK(a == b);
  std::string c;
  resetAll = false;
  REQUIRE(answerResetQuery("select PG_ADVISORY_UNLOCK_ALL ( )", c, resetAll));
  CHECK_FALSE(resetAll);
  CHECK(c.substr(0, 1) == "T");
  CHECK(c.substr(c.size() - 9) == "SELECT 1" + std::string(1, '\0'));
}

TEST_CASE("anything else is left for the server, and the output is untouched", "[pool][reset]") {
  const char* others[] = {
      "",
      " ; ",
      "SELECT 1",
      "RESET ALL; SELECT 1",
      "CLOSE ALL; SET search_path = x",
      "RESET TimeZone",
      "DISCARD ALL",
      "UNLISTEN chan",
      "CLOSE cur",
      "SELECT pg_advisory_unlock_all(); -- done",
      "SELECT pg_advisory_unlock_all(1)",
      "SELECTpg_advisory_unlock_all()",
      "SELECT \"pg_advisory_unlock_all\"()",
      "SELECT pg_catalog.pg_advisory_unlock_all()",
      "RESET ALL ALL",
      "ROLLBACK;\nSELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET ALL;",
  };
  for (const char* sql : others) {
    INFO(sql);
    std::string out = "kept";
    bool resetAll = false;
    CHECK_FALSE(answerResetQuery(sql, out, resetAll));
    CHECK(out == "kept");
    CHECK_FALSE(resetAll);
  }
}

TEST_CASE("only a reset query with RESET ALL says so", "[pool][reset]") {
  std::string out;
  bool resetAll = true;
  REQUIRE(answerResetQuery("CLOSE ALL; UNLISTEN *", out, resetAll));
  CHECK_FALSE(resetAll);
  REQUIRE(answerResetQuery("UNLISTEN *; RESET ALL", out, resetAll));
  CHECK(resetAll);
}
