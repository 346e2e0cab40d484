// Tracked parameters: canonical names and the SET that re-applies a client's values.
#include <catch2/catch.hpp>

#include "pgmux/pool/params.h"

using namespace pgmux::pool;

TEST_CASE("tracked names are found case-insensitively in their reported spelling", "[pool][params]") {
  const TrackedParams tracked({"search_path"});
  CHECK(tracked.canonical("datestyle") == "DateStyle");
  CHECK(tracked.canonical("TIMEZONE") == "TimeZone");
  CHECK(tracked.canonical("Search_Path") == "search_path");
  CHECK(tracked.canonical("extra_float_digits").empty());
}

TEST_CASE("an extra parameter that is already built in is not listed twice", "[pool][params]") {
  const TrackedParams tracked({"IntervalStyle", "intervalstyle"});
  CHECK(std::count(tracked.names().begin(), tracked.names().end(), "IntervalStyle") == 1);
}

TEST_CASE("ParamList::set reports whether the value changed", "[pool][params]") {
  ParamList p;
  CHECK(p.set("TimeZone", "UTC"));
  CHECK_FALSE(p.set("TimeZone", "UTC"));
  CHECK(p.set("TimeZone", "Europe/Paris"));
  REQUIRE(p.get("TimeZone") != nullptr);
  CHECK(*p.get("TimeZone") == "Europe/Paris");
  CHECK(p.get("DateStyle") == nullptr);
}

TEST_CASE("buildSetQuery sets only the tracked values that differ", "[pool][params]") {
  const TrackedParams tracked({});
  ParamList want, have;
  want.set("TimeZone", "Europe/Paris");
  want.set("DateStyle", "ISO, MDY");
  want.set("work_mem", "64MB");  // not tracked: never set
  have.set("TimeZone", "UTC");
  have.set("DateStyle", "ISO, MDY");
  CHECK(buildSetQuery(tracked, want, have) == "SET TimeZone TO 'Europe/Paris'");
  have.set("TimeZone", "Europe/Paris");
  CHECK(buildSetQuery(tracked, want, have).empty());
}

TEST_CASE("buildSetQuery sets a value the server never reported", "[pool][params]") {
  const TrackedParams tracked({});
  ParamList want, have;
  want.set("application_name", "shop");
  CHECK(buildSetQuery(tracked, want, have) == "SET application_name TO 'shop'");
}

TEST_CASE("quoteLiteral escapes quotes and backslashes", "[pool][params]") {
  CHECK(quoteLiteral("plain") == "'plain'");
  CHECK(quoteLiteral("it's") == "'it''s'");
  CHECK(quoteLiteral("a\\b'c") == "E'a\\\\b''c'");
}

TEST_CASE("trackedKey is equal exactly when no SET is needed", "[pool][params]") {
  const TrackedParams tracked({"search_path"});
  ParamList client, server;
  client.set("TimeZone", "UTC");
  client.set("application_name", "app");
  server.set("server_version", "15.18");  // not tracked: does not count
  server.set("application_name", "app");
  server.set("TimeZone", "UTC");
  CHECK(client.trackedKey(tracked) == server.trackedKey(tracked));
  CHECK(buildSetQuery(tracked, client, server).empty());
  // A change is seen (the key is recomputed), and so is a value present on one side only.
  server.set("TimeZone", "Europe/Paris");
  CHECK(client.trackedKey(tracked) != server.trackedKey(tracked));
  CHECK_FALSE(buildSetQuery(tracked, client, server).empty());
  server.set("TimeZone", "UTC");
  CHECK(client.trackedKey(tracked) == server.trackedKey(tracked));
  client.set("search_path", "");
  CHECK(client.trackedKey(tracked) != server.trackedKey(tracked));
  server.set("search_path", "");
  CHECK(client.trackedKey(tracked) == server.trackedKey(tracked));
}
