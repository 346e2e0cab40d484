// conf/pgmux.ini against the settings table: every key listed with its default and help, and the
// file itself loads cleanly.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "pgmux/config/config.h"
#include "pgmux/config/settings.h"

using namespace pgmux::config;

namespace {

// This file lives in tests/unit/config/, three levels below the repository root.
std::string examplePath() {
  const std::filesystem::path here(__FILE__);
  return (here.parent_path().parent_path().parent_path().parent_path() / "conf" / "pgmux.ini")
      .string();
}

std::vector<std::string> exampleLines() {
  std::ifstream in(examplePath());
  REQUIRE(in.good());
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("conf/pgmux.ini lists every setting, commented, with its default and help", "[config]") {
  const std::vector<std::string> lines = exampleLines();
  for (const Setting& s : settings()) {
    INFO(s.name);
    const std::string def = s.defaultValue;
    const std::string wanted = ";" + std::string(s.name) + " =" + (def.empty() ? "" : " " + def);
    const auto it = std::find(lines.begin(), lines.end(), wanted);
    REQUIRE(it != lines.end());
    REQUIRE(it != lines.begin());
    const std::string help =
        ";; " + std::string(s.help) + (s.reloadable ? "" : " (restart needed)");
    CHECK(*(it - 1) == help);
  }
}

TEST_CASE("conf/pgmux.ini names no key the table does not know", "[config]") {
  std::set<std::string> known;
  for (const Setting& s : settings()) known.insert(s.name);
  bool inMain = false;
  for (const std::string& line : exampleLines()) {
    if (line.rfind('[', 0) == 0) inMain = line == "[pgbouncer]";
    if (!inMain || line.size() < 2 || line[0] != ';' || line[1] == ';') continue;
    const std::string key = line.substr(1, line.find(" =") - 1);
    INFO(line);
    CHECK(known.count(key) == 1);
  }
}

TEST_CASE("conf/pgmux.ini loads without warnings, and with its keys uncommented too", "[config]") {
  const auto cfg = loadConfig(examplePath());
  CHECK(cfg->warnings.empty());
  CHECK(cfg->listenPort == 6432);

  // Uncommenting every main-section line must give the defaults back.
  std::ostringstream text;
  bool inMain = false;
  for (const std::string& line : exampleLines()) {
    if (line.rfind('[', 0) == 0) inMain = line == "[pgbouncer]";
    const bool setting = inMain && line.size() > 1 && line[0] == ';' && line[1] != ';';
    text << (setting ? line.substr(1) : line) << "\n";
  }
  const auto uncommented = parseConfig(text.str(), "uncommented.ini");
  CHECK(uncommented->warnings.empty());
  const Config defaults;
  for (const Setting& s : settings()) {
    INFO(s.name);
    CHECK(s.show(*uncommented) == s.show(defaults));
  }
}
