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

namespace {
// The ParameterStatus messages in `bytes`, as name=value strings in order.
std::vector<std::string> parameterStatuses(const std::string& bytes) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos + 5 <= bytes.size()) {
    const auto len = (static_cast<uint32_t>(static_cast<uint8_t>(bytes[pos + 1])) << 24) |
                     (static_cast<uint32_t>(static_cast<uint8_t>(bytes[pos + 2])) << 16) |
                     (static_cast<uint32_t>(static_cast<uint8_t>(bytes[pos + 3])) << 8) |
                     static_cast<uint32_t>(static_cast<uint8_t>(bytes[pos + 4]));
    if (bytes[pos] == 'S') {
      const std::string body = bytes.substr(pos + 5, len - 4);
      const std::string name = body.c_str();
      const std::string value = body.c_str() + name.size() + 1;
      out.push_back(name + "=" + value);
    }
    pos += 1 + len;
  }
  return out;
}
}  // namespace

TEST_CASE("RESET ALL brings a client's view back to its welcome values, reporting each change", "[pool][params]") {
  const TrackedParams tracked({});
  ParamList welcome;
  welcome.set("TimeZone", "Europe/Paris");  // from the startup packet
  welcome.set("DateStyle", "ISO, MDY");
  ParamList current = welcome;
  ParamList defaults = welcome;
  std::string out;
  // Nothing changed: nothing to report, and the lists stay one.
  REQUIRE(resetToDefaults(tracked, current, defaults, out));
  CHECK(out.empty());
  CHECK(current.sharesWith(defaults));

  // A statement of the client changed two values.
  applyReportedValue(current, defaults, "DateStyle", "German, DMY", false);
  applyReportedValue(current, defaults, "TimeZone", "UTC", false);
  CHECK(*defaults.get("DateStyle") == "ISO, MDY");
  REQUIRE(resetToDefaults(tracked, current, defaults, out));
  CHECK(parameterStatuses(out) == std::vector<std::string>{"DateStyle=ISO, MDY", "TimeZone=Europe/Paris"});
  CHECK(*current.get("TimeZone") == "Europe/Paris");
  CHECK(current.sharesWith(defaults));
}

TEST_CASE("the server's spelling of a value pgmux set for the client becomes its default too", "[pool][params]") {
  const TrackedParams tracked({});
  ParamList current;
  current.set("client_encoding", "utf8");  // as the startup packet had it
  ParamList defaults = current;
  // pgmux's SET of the client's value, reported back in the server's spelling.
  applyReportedValue(current, defaults, "client_encoding", "UTF8", true);
  CHECK(*current.get("client_encoding") == "UTF8");
  CHECK(*defaults.get("client_encoding") == "UTF8");
  CHECK(current.sharesWith(defaults));
  // So RESET ALL has nothing to report, and the next server needs no SET for it.
  std::string out;
  REQUIRE(resetToDefaults(tracked, current, defaults, out));
  CHECK(out.empty());

  // After a change by the client, pgmux's SET of the new value on another server does not move
  // the default, whatever the spelling.
  applyReportedValue(current, defaults, "client_encoding", "latin1", false);
  applyReportedValue(current, defaults, "client_encoding", "LATIN1", true);
  CHECK(*current.get("client_encoding") == "LATIN1");
  CHECK(*defaults.get("client_encoding") == "UTF8");
}

TEST_CASE("RESET ALL of a value the welcome did not have is left to a server", "[pool][params]") {
  const TrackedParams tracked({"search_path"});
  ParamList current;
  current.set("TimeZone", "UTC");
  ParamList defaults = current;
  applyReportedValue(current, defaults, "search_path", "app", false);
  applyReportedValue(current, defaults, "TimeZone", "Asia/Tokyo", false);
  std::string out;
  CHECK_FALSE(resetToDefaults(tracked, current, defaults, out));
  CHECK(out.empty());
  CHECK(*current.get("TimeZone") == "Asia/Tokyo");
}
