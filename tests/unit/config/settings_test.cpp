// The settings table: one row per key, defaults that agree with Config, and each type's parsing.
#include "pgmux/config/settings.h"

#include <catch2/catch.hpp>
#include <set>
#include <string>

using namespace pgmux::config;

namespace {

// Applies `value` to a fresh Config through the table; returns the error ("" when accepted).
std::string applyError(const char* key, std::string_view value, Config& cfg) {
  const Setting* s = findSetting(key);
  REQUIRE(s != nullptr);
  std::string error;
  const bool ok = s->apply(cfg, value, error);
  CHECK(ok == error.empty());
  return error;
}

std::string applyError(const char* key, std::string_view value) {
  Config cfg;
  return applyError(key, value, cfg);
}

std::string showAfter(const char* key, std::string_view value) {
  Config cfg;
  REQUIRE(applyError(key, value, cfg).empty());
  return findSetting(key)->show(cfg);
}

}  // namespace

TEST_CASE("the settings table has one lower-case row per name", "[config]") {
  std::set<std::string> names;
  for (const Setting& s : settings()) {
    const std::string name = s.name;
    INFO(name);
    CHECK(names.insert(name).second);
    for (char c : name) CHECK(((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'));
    CHECK(std::string(s.help).size() > 10);
  }
}

TEST_CASE("the table holds every PgBouncer key of the compat reference, plus pgmux's own",
          "[config]") {
  // The main-section keys of /work/shared/reference/pgbouncer-compat.md, group by group.
  const char* const kReferenceKeys[] = {"listen_addr",
                                        "listen_port",
                                        "unix_socket_dir",
                                        "unix_socket_mode",
                                        "unix_socket_group",
                                        "listen_backlog",
                                        "so_reuseport",
                                        "logfile",
                                        "pidfile",
                                        "user",
                                        "pool_mode",
                                        "max_client_conn",
                                        "default_pool_size",
                                        "min_pool_size",
                                        "reserve_pool_size",
                                        "reserve_pool_timeout",
                                        "max_db_connections",
                                        "max_db_client_connections",
                                        "max_user_connections",
                                        "max_user_client_connections",
                                        "server_round_robin",
                                        "track_extra_parameters",
                                        "ignore_startup_parameters",
                                        "application_name_add_host",
                                        "disable_pqexec",
                                        "max_prepared_statements",
                                        "auth_type",
                                        "auth_file",
                                        "auth_hba_file",
                                        "auth_ident_file",
                                        "auth_user",
                                        "auth_query",
                                        "auth_dbname",
                                        "scram_iterations",
                                        "admin_users",
                                        "stats_users",
                                        "syslog",
                                        "log_connections",
                                        "log_disconnections",
                                        "log_pooler_errors",
                                        "log_stats",
                                        "stats_period",
                                        "verbose",
                                        "server_reset_query",
                                        "server_reset_query_always",
                                        "server_check_delay",
                                        "server_check_query",
                                        "server_fast_close",
                                        "server_lifetime",
                                        "server_idle_timeout",
                                        "server_connect_timeout",
                                        "server_login_retry",
                                        "client_login_timeout",
                                        "client_idle_timeout",
                                        "query_wait_timeout",
                                        "query_wait_notify",
                                        "cancel_wait_timeout",
                                        "autodb_idle_timeout",
                                        "query_timeout",
                                        "idle_transaction_timeout",
                                        "transaction_timeout",
                                        "suspend_timeout",
                                        "pkt_buf",
                                        "max_packet_size",
                                        "sbuf_loopcnt",
                                        "tcp_defer_accept",
                                        "tcp_socket_buffer",
                                        "tcp_keepalive",
                                        "tcp_keepcnt",
                                        "tcp_keepidle",
                                        "tcp_keepintvl",
                                        "tcp_user_timeout",
                                        "client_tls_sslmode",
                                        "client_tls_key_file",
                                        "client_tls_cert_file",
                                        "client_tls_ca_file",
                                        "client_tls_protocols",
                                        "client_tls_ciphers",
                                        "server_tls_sslmode",
                                        "server_tls_ca_file",
                                        "server_tls_key_file",
                                        "server_tls_cert_file",
                                        "server_tls_protocols",
                                        "server_tls_ciphers",
                                        "workers",
                                        "http_addr",
                                        "http_port",
                                        "local_reset_query",
                                        "server_pipelining"};
  for (const char* key : kReferenceKeys) {
    INFO(key);
    CHECK(findSetting(key) != nullptr);
  }
  CHECK(settings().size() == std::size(kReferenceKeys));
}

TEST_CASE("every default parses with its own apply and prints back unchanged", "[config]") {
  const Config untouched;
  for (const Setting& s : settings()) {
    INFO(s.name);
    // A fresh Config already holds the default the table declares.
    CHECK(s.show(untouched) == s.defaultValue);
    Config cfg;
    std::string error;
    CHECK(s.apply(cfg, s.defaultValue, error));
    CHECK(error.empty());
    CHECK(s.show(cfg) == s.defaultValue);
  }
}

TEST_CASE("findSetting ignores case and knows only table names", "[config]") {
  REQUIRE(findSetting("LISTEN_PORT") != nullptr);
  CHECK(std::string(findSetting("Listen_Port")->name) == "listen_port");
  CHECK(findSetting("listen_por") == nullptr);
  CHECK(findSetting("") == nullptr);
}

TEST_CASE("restart-only keys are marked not reloadable", "[config]") {
  for (const char* key : {"listen_addr", "listen_port", "unix_socket_dir", "unix_socket_mode",
                          "listen_backlog", "so_reuseport", "pidfile", "user",
                          "track_extra_parameters", "disable_pqexec", "pkt_buf", "workers"}) {
    INFO(key);
    CHECK_FALSE(findSetting(key)->reloadable);
  }
  for (const char* key : {"pool_mode", "default_pool_size", "query_wait_timeout", "auth_type"}) {
    INFO(key);
    CHECK(findSetting(key)->reloadable);
  }
}

TEST_CASE("integer settings reject junk, negatives and out-of-range values", "[config]") {
  CHECK(applyError("listen_port", "abc") ==
        "invalid value for listen_port: 'abc' (expected an integer 1-65535)");
  CHECK(applyError("listen_port", "0") ==
        "invalid value for listen_port: '0' (expected an integer 1-65535)");
  CHECK_FALSE(applyError("listen_port", "65536").empty());
  CHECK_FALSE(applyError("listen_port", "64 32").empty());
  CHECK_FALSE(applyError("listen_port", "").empty());
  CHECK(applyError("default_pool_size", "-1") ==
        "invalid value for default_pool_size: '-1' (expected an integer >= 0)");
  CHECK_FALSE(applyError("default_pool_size", "20x").empty());
  CHECK_FALSE(applyError("default_pool_size", "99999999999").empty());
  CHECK_FALSE(applyError("workers", "-1").empty());
  CHECK(applyError("workers", "0").empty());  // automatic
  CHECK(showAfter("default_pool_size", "35") == "35");
  CHECK(showAfter("http_port", "8080") == "8080");

  Config cfg;
  REQUIRE(applyError("listen_port", "5433", cfg).empty());
  CHECK(cfg.listenPort == 5433);
}

TEST_CASE("max_packet_size is at least 1024 and fits a 32-bit length", "[config]") {
  CHECK(applyError("max_packet_size", "1023") ==
        "invalid value for max_packet_size: '1023' (expected an integer >= 1024)");
  CHECK_FALSE(applyError("max_packet_size", "2147483648").empty());
  Config cfg;
  REQUIRE(applyError("max_packet_size", "1048576", cfg).empty());
  CHECK(cfg.maxPacketSize == 1048576);
}

TEST_CASE("booleans take 0/1, yes/no, on/off and true/false in any case", "[config]") {
  const auto [text, expected] = GENERATE(table<const char*, bool>({{"1", true},
                                                                   {"0", false},
                                                                   {"yes", true},
                                                                   {"No", false},
                                                                   {"ON", true},
                                                                   {"off", false},
                                                                   {"true", true},
                                                                   {"FALSE", false}}));
  Config cfg;
  REQUIRE(applyError("server_round_robin", text, cfg).empty());
  CHECK(cfg.serverRoundRobin == expected);
  CHECK(findSetting("server_round_robin")->show(cfg) == (expected ? "1" : "0"));
}

TEST_CASE("booleans reject anything else", "[config]") {
  CHECK(applyError("so_reuseport", "2") ==
        "invalid value for so_reuseport: '2' (expected a boolean: 0/1, yes/no, on/off or "
        "true/false)");
  CHECK_FALSE(applyError("so_reuseport", "y").empty());
  CHECK_FALSE(applyError("so_reuseport", "").empty());
}

TEST_CASE("tcp_defer_accept also takes PgBouncer's number of seconds", "[config]") {
  Config cfg;
  REQUIRE(applyError("tcp_defer_accept", "45", cfg).empty());
  CHECK(cfg.tcpDeferAccept);
  REQUIRE(applyError("tcp_defer_accept", "0", cfg).empty());
  CHECK_FALSE(cfg.tcpDeferAccept);
  CHECK_FALSE(applyError("tcp_defer_accept", "-3").empty());
}

TEST_CASE("seconds take fractions and refuse negatives and junk", "[config]") {
  Config cfg;
  REQUIRE(applyError("query_wait_timeout", "0.5", cfg).empty());
  CHECK(cfg.queryWaitTimeout == 0.5);
  CHECK(findSetting("query_wait_timeout")->show(cfg) == "0.5");
  REQUIRE(applyError("query_wait_timeout", "90", cfg).empty());
  CHECK(cfg.queryWaitTimeout == 90);
  CHECK(findSetting("query_wait_timeout")->show(cfg) == "90");
  CHECK(applyError("query_wait_timeout", "-1") ==
        "invalid value for query_wait_timeout: '-1' (expected a number of seconds >= 0, "
        "fractions allowed)");
  for (const char* bad : {"abc", "10s", "", "inf", "nan", "1,5"}) {
    INFO(bad);
    CHECK_FALSE(applyError("server_lifetime", bad).empty());
  }
}

TEST_CASE("pool_mode takes the three modes and prints them as written", "[config]") {
  CHECK(showAfter("pool_mode", "transaction") == "transaction");
  CHECK(showAfter("pool_mode", "Statement") == "statement");
  CHECK(showAfter("pool_mode", "session") == "session");
  CHECK(applyError("pool_mode", "txn") ==
        "invalid value for pool_mode: 'txn' (expected session, transaction or statement)");
  CHECK(std::string(toString(PoolMode::Transaction)) == "transaction");
}

TEST_CASE("auth_type stores every PgBouncer method", "[config]") {
  const auto [text, type] =
      GENERATE(table<const char*, AuthType>({{"any", AuthType::Any},
                                             {"trust", AuthType::Trust},
                                             {"plain", AuthType::Plain},
                                             {"md5", AuthType::Md5},
                                             {"scram-sha-256", AuthType::ScramSha256},
                                             {"cert", AuthType::Cert},
                                             {"hba", AuthType::Hba},
                                             {"pam", AuthType::Pam},
                                             {"ldap", AuthType::Ldap}}));
  Config cfg;
  REQUIRE(applyError("auth_type", text, cfg).empty());
  CHECK(cfg.authType == type);
  CHECK(std::string(toString(type)) == text);
  CHECK(findSetting("auth_type")->show(cfg) == text);
}

TEST_CASE("auth_type rejects unknown methods", "[config]") {
  CHECK_FALSE(applyError("auth_type", "scram").empty());
  CHECK_FALSE(applyError("auth_type", "password").empty());
}

TEST_CASE("lists are split on commas and trimmed", "[config]") {
  Config cfg;
  REQUIRE(applyError("admin_users", " alice , bob,,carol ", cfg).empty());
  CHECK(cfg.adminUsers == std::vector<std::string>{"alice", "bob", "carol"});
  CHECK(findSetting("admin_users")->show(cfg) == "alice,bob,carol");
  REQUIRE(applyError("ignore_startup_parameters", "", cfg).empty());
  CHECK(cfg.ignoreStartupParameters.empty());
}

TEST_CASE("unix_socket_mode is octal", "[config]") {
  Config cfg;
  REQUIRE(applyError("unix_socket_mode", "0700", cfg).empty());
  CHECK(cfg.unixSocketMode == 0700);
  REQUIRE(applyError("unix_socket_mode", "755", cfg).empty());
  CHECK(cfg.unixSocketMode == 0755);
  CHECK(findSetting("unix_socket_mode")->show(cfg) == "0755");
  CHECK(applyError("unix_socket_mode", "0800") ==
        "invalid value for unix_socket_mode: '0800' (expected an octal file mode such as 0777)");
  CHECK_FALSE(applyError("unix_socket_mode", "07777").empty());
  CHECK_FALSE(applyError("unix_socket_mode", "rw").empty());
}

TEST_CASE("client TLS is refused until it is implemented; server sslmode is checked", "[config]") {
  CHECK(applyError("client_tls_sslmode", "disable").empty());
  CHECK(applyError("client_tls_sslmode", "require") ==
        "invalid value for client_tls_sslmode: 'require' (expected disable: pgmux does not "
        "implement client TLS yet)");
  CHECK(showAfter("server_tls_sslmode", "verify-full") == "verify-full");
  CHECK_FALSE(applyError("server_tls_sslmode", "required").empty());
}

TEST_CASE("string settings keep the value as written", "[config]") {
  CHECK(showAfter("server_reset_query", "DISCARD ALL; SELECT 1") == "DISCARD ALL; SELECT 1");
  CHECK(showAfter("auth_file", "") == "");
}
