// The auth file: quoting, comments, line numbers in errors, and telling secret kinds apart.
#include "pgmux/auth/auth_file.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "pgmux/auth/md5.h"

using namespace pgmux;
using namespace pgmux::auth;

namespace {

constexpr const char* kScram =
    "SCRAM-SHA-256$4096:vxy8t314ZZwhxJ3q8TOnvA==$ajOs6zAlmK8ZWtIhxKan3oOj/GI3gJ8DFyPvqNo9BSQ=:"
    "iI+44OA5CWBpjKIqWDn8VQmt9CRUjCsSk3x6fkQZ7ws=";

}  // namespace

TEST_CASE("parseAuthFile reads one user and secret a line, and classifies them", "[auth][file]") {
  const std::string text = std::string("\"alice\" \"plain-text-password\"\n") +
                           "\"bob\"   \"md59e8b47dd245ed6fdb3fd1657224800c4\"\n" +
                           "\"carol\"\t\"" + kScram + "\"\n";
  auto file = parseAuthFile(text, "userlist.txt");
  REQUIRE(file.isOk());
  REQUIRE(file->size() == 3);
  CHECK(file->at("alice").kind == SecretKind::Plain);
  CHECK(file->at("alice").text == "plain-text-password");
  CHECK_FALSE(file->at("alice").scram.has_value());
  CHECK(file->at("bob").kind == SecretKind::Md5);
  CHECK(file->at("bob").text == md5Secret("bob", "pw"));
  const UserSecret& carol = file->at("carol");
  CHECK(carol.kind == SecretKind::Scram);
  CHECK(carol.text == kScram);
  REQUIRE(carol.scram.has_value());
  CHECK(carol.scram->iterations == 4096);
  CHECK(formatScramSecret(*carol.scram) == kScram);
}

TEST_CASE("parseAuthFile unescapes doubled quotes inside a field", "[auth][file]") {
  auto file = parseAuthFile(R"("a""b" "p""w""")" "\n" R"("""" "")", "u");
  REQUIRE(file.isOk());
  REQUIRE(file->count("a\"b") == 1);
  CHECK(file->at("a\"b").text == "p\"w\"");
  REQUIRE(file->count("\"") == 1);
  CHECK(file->at("\"").text.empty());
}

TEST_CASE("parseAuthFile skips comments and blank lines and ignores the rest of a line",
          "[auth][file]") {
  const std::string text =
      "; a comment\n"
      "# another\n"
      "\n"
      "   \t\n"
      "  ; an indented comment\n"
      "  \"alice\" \"pw1\" trailing words are ignored\r\n"
      "\"bob\"\t\"pw2\"\r\n"
      "\"carol\" \"pw3\"";  // no final newline
  auto file = parseAuthFile(text, "u");
  REQUIRE(file.isOk());
  REQUIRE(file->size() == 3);
  CHECK(file->at("alice").text == "pw1");
  CHECK(file->at("bob").text == "pw2");
  CHECK(file->at("carol").text == "pw3");
}

TEST_CASE("parseAuthFile keeps the later line for a user listed twice", "[auth][file]") {
  auto file = parseAuthFile("\"alice\" \"old\"\n\"alice\" \"new\"\n", "u");
  REQUIRE(file.isOk());
  REQUIRE(file->size() == 1);
  CHECK(file->at("alice").text == "new");
}

TEST_CASE("parseAuthFile names origin and line of a malformed line", "[auth][file]") {
  const auto [line, expected] = GENERATE(table<std::string, std::string>({
      {"alice \"pw\"", "userlist.txt:3: expected a double-quoted user name"},
      {"\"alice \"pw\"", "userlist.txt:3: expected a double-quoted secret after the user name"},
      {"\"alice\"", "userlist.txt:3: expected a double-quoted secret after the user name"},
      {"\"alice\" pw", "userlist.txt:3: expected a double-quoted secret after the user name"},
      {"\"alice\" \"pw", "userlist.txt:3: expected a double-quoted secret after the user name"},
      {"\"alice", "userlist.txt:3: expected a double-quoted user name"},
      {"\"\" \"pw\"", "userlist.txt:3: empty user name"},
  }));
  INFO(line);
  const std::string text = "; header\n\"ok\" \"fine\"\n" + line + "\n\"later\" \"fine\"\n";
  auto file = parseAuthFile(text, "userlist.txt");
  REQUIRE_FALSE(file.isOk());
  CHECK(file.status().sqlstate() == sqlstate::kConfigFileError);
  CHECK(file.status().message() == expected);
}

TEST_CASE("classifySecret takes only well-formed md5 and SCRAM secrets as such", "[auth][file]") {
  CHECK(classifySecret("md59e8b47dd245ed6fdb3fd1657224800c4").kind == SecretKind::Md5);
  CHECK(classifySecret("md59E8B47DD245ED6FDB3FD1657224800C4").kind == SecretKind::Md5);
  CHECK(classifySecret(kScram).kind == SecretKind::Scram);
  for (const char* plain : {"md59e8b47dd245ed6fdb3fd1657224800c", "md5 9e8b47dd245ed6fdb3fd16572248",
                            "md59e8b47dd245ed6fdb3fd1657224800cz", "SCRAM-SHA-256$4096:abc",
                            "SCRAM-SHA-256$0:vxy8t314ZZwhxJ3q8TOnvA==$x:y", "", "pencil"}) {
    INFO(plain);
    const UserSecret secret = classifySecret(plain);
    CHECK(secret.kind == SecretKind::Plain);
    CHECK(secret.text == plain);
    CHECK_FALSE(secret.scram.has_value());
  }
}

TEST_CASE("loadAuthFile reads a file and names it in errors", "[auth][file]") {
  char path[] = "/tmp/pgmux_auth_file_testXXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  FILE* f = fdopen(fd, "w");
  REQUIRE(f != nullptr);
  std::fputs("\"alice\" \"pw\"\nbroken\n", f);
  std::fclose(f);

  auto result = loadAuthFile(path);
  std::remove(path);
  REQUIRE_FALSE(result.isOk());
  CHECK(result.status().message() == std::string(path) + ":2: expected a double-quoted user name");

  auto missing = loadAuthFile("/nonexistent/pgmux/userlist.txt");
  REQUIRE_FALSE(missing.isOk());
  CHECK(missing.status().sqlstate() == sqlstate::kConfigFileError);
  CHECK(missing.status().message().find("/nonexistent/pgmux/userlist.txt") != std::string::npos);
}

TEST_CASE("loadAuthFile parses a good file", "[auth][file]") {
  char path[] = "/tmp/pgmux_auth_file_testXXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  FILE* f = fdopen(fd, "w");
  REQUIRE(f != nullptr);
  std::fputs("\"alice\" \"pw\"\n\"bob\" \"md59e8b47dd245ed6fdb3fd1657224800c4\"\n", f);
  std::fclose(f);

  auto result = loadAuthFile(path);
  std::remove(path);
  REQUIRE(result.isOk());
  CHECK(result->size() == 2);
  CHECK(result->at("bob").kind == SecretKind::Md5);
}
