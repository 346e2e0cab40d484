// Loading pgbouncer.ini: sections, [databases] and [users] lines, %include, and messages that
// name the file and line.
#include "pgmux/config/config.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

using namespace pgmux::config;
namespace fs = std::filesystem;

namespace {

// A scratch directory removed with everything in it when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "pgmux-config-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string write(const std::string& name, const std::string& text) const {
    const fs::path file = path_ / name;
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << text;
    return file.string();
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// The message parseConfig throws for `text`, or "" when it loads.
std::string loadError(const std::string& text) {
  try {
    parseConfig(text, "t.ini");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

std::string fileError(const std::string& path) {
  try {
    loadConfig(path);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("main-section keys are read into the Config", "[config]") {
  const auto cfg = parseConfig(
      "[pgbouncer]\n"
      "listen_addr = 127.0.0.1, ::1\n"
      "listen_port = 6433\n"
      "pool_mode = transaction\n"
      "auth_type = scram-sha-256\n"
      "query_wait_timeout = 2.5\n"
      "admin_users = postgres, admin\n"
      "server_reset_query = DISCARD ALL\n"
      "workers = 4\n"
      "http_port = 8081\n",
      "t.ini");
  CHECK(cfg->path == "t.ini");
  CHECK(cfg->listenAddr == "127.0.0.1, ::1");
  CHECK(cfg->listenPort == 6433);
  CHECK(cfg->poolMode == PoolMode::Transaction);
  CHECK(cfg->authType == AuthType::ScramSha256);
  CHECK(cfg->queryWaitTimeout == 2.5);
  CHECK(cfg->adminUsers == std::vector<std::string>{"postgres", "admin"});
  CHECK(cfg->serverResetQuery == "DISCARD ALL");
  CHECK(cfg->workers == 4);
  CHECK(cfg->httpPort == 8081);
  CHECK(cfg->warnings.empty());
  // Untouched keys keep PgBouncer's defaults.
  CHECK(cfg->defaultPoolSize == 20);
  CHECK(cfg->unixSocketDir == "/tmp");
}

TEST_CASE("[pgmux] is the same section as [pgbouncer], names ignore case", "[config]") {
  const auto cfg = parseConfig("[PGMUX]\nLISTEN_PORT = 7000\nMax_Client_Conn=500\n", "t.ini");
  CHECK(cfg->listenPort == 7000);
  CHECK(cfg->maxClientConn == 500);
  CHECK(cfg->warnings.empty());
}

TEST_CASE("a bad value names file, line and key", "[config]") {
  CHECK(loadError("[pgbouncer]\n; a comment\nlisten_port = abc\n") ==
        "t.ini:3: invalid value for listen_port: 'abc' (expected an integer 1-65535)");
  CHECK(loadError("\n\n[pgbouncer]\npool_mode = session\nsuspend_timeout = -2\n") ==
        "t.ini:5: invalid value for suspend_timeout: '-2' (expected a number of seconds >= 0, "
        "fractions allowed)");
  CHECK(loadError("[pgbouncer]\nlog_stats = maybe\n") ==
        "t.ini:2: invalid value for log_stats: 'maybe' (expected a boolean: 0/1, yes/no, "
        "on/off or true/false)");
}

TEST_CASE("the first error wins and later lines are not read", "[config]") {
  CHECK(loadError("[pgbouncer]\nlisten_port = x\nlisten_port = y\n") ==
        "t.ini:2: invalid value for listen_port: 'x' (expected an integer 1-65535)");
}

TEST_CASE("unknown main-section keys are warnings, not errors", "[config]") {
  const auto cfg = parseConfig(
      "[pgbouncer]\n"
      "listen_port = 6432\n"
      "no_such_key = 1\n"
      "dns_max_ttl = 15\n",
      "t.ini");
  REQUIRE(cfg->warnings.size() == 2);
  CHECK(cfg->warnings[0] == "t.ini:3: unknown parameter: pgbouncer/no_such_key");
  CHECK(cfg->warnings[1] ==
        "t.ini:4: parameter not supported by pgmux, ignored: pgbouncer/dns_max_ttl");
}

TEST_CASE("an unknown section is a warning and its keys are not read", "[config]") {
  const auto cfg =
      parseConfig("[pgbouncer]\n[extra]\nlisten_port = abc\n[pgbouncer]\nlisten_port=1\n", "t.ini");
  REQUIRE(cfg->warnings.size() == 1);
  CHECK(cfg->warnings[0] == "t.ini:2: unknown section [extra], its keys are ignored");
  CHECK(cfg->listenPort == 1);
}

TEST_CASE("malformed lines are errors with their line", "[config]") {
  CHECK(loadError("[pgbouncer]\nlisten_port 6432\n") ==
        "t.ini:2: syntax error: expected 'name = value', got 'listen_port 6432'");
  CHECK(loadError("[pgbouncer\nlisten_port = 1\n") ==
        "t.ini:1: syntax error: section header without ']'");
  CHECK(loadError("[pgbouncer]\n = 5\n") == "t.ini:2: syntax error: missing name before '='");
  CHECK(loadError("listen_port = 1\n") ==
        "t.ini:1: parameter listen_port is outside of any section");
}

TEST_CASE("indented keys are keys, not continuations", "[config]") {
  const auto cfg =
      parseConfig("[pgbouncer]\n  listen_port = 7001\n\tpool_mode = statement\n", "t.ini");
  CHECK(cfg->listenPort == 7001);
  CHECK(cfg->poolMode == PoolMode::Statement);
}

TEST_CASE("a ';' or ':' inside a value is kept, as PgBouncer does", "[config]") {
  const auto cfg = parseConfig(
      "[pgbouncer]\nserver_reset_query = DISCARD ALL ; SELECT 1\n"
      "[databases]\nshop = host=db password=p;w:d connect_query='SELECT 1 ; SELECT 2'\n"
      "\"a:b\" = dbname=colon\n",
      "t.ini");
  CHECK(cfg->serverResetQuery == "DISCARD ALL ; SELECT 1");
  REQUIRE(cfg->databases.size() == 2);
  CHECK(cfg->databases[0].password == std::optional<std::string>("p;w:d"));
  CHECK(cfg->databases[0].connectQuery == "SELECT 1 ; SELECT 2");
  CHECK(cfg->databases[1].name == "a:b");
  CHECK(cfg->databases[1].dbname == "colon");
}

TEST_CASE("CRLF line ends and a byte order mark are accepted", "[config]") {
  const auto cfg = parseConfig("\xEF\xBB\xBF[pgbouncer]\r\nlisten_port = 6500\r\n", "t.ini");
  CHECK(cfg->listenPort == 6500);
}

TEST_CASE("[databases] lines are parsed like libpq connection strings", "[config]") {
  const auto cfg = parseConfig(
      "[databases]\n"
      "shop = host=10.0.0.5 port=5433 dbname=shop_prod user=app password='it''s secret' "
      "pool_size=30 min_pool_size=2 reserve_pool_size=5 pool_mode=transaction "
      "max_db_connections=50 max_db_client_connections=500 server_lifetime=1800.5 "
      "query_wait_timeout=30 connect_query='SET search_path TO shop' client_encoding=UTF8 "
      "datestyle=ISO timezone=UTC application_name=shopapp auth_user=authenticator\n"
      "spaced = host = /var/run/postgresql  dbname = x\n"
      "\"odd name=x\" = dbname=odd\n"
      "* = host=fallback\n",
      "t.ini");
  REQUIRE(cfg->databases.size() == 4);
  const DatabaseEntry& db = cfg->databases[0];
  CHECK(db.name == "shop");
  CHECK(db.line == 2);
  CHECK(db.host == "10.0.0.5");
  CHECK(db.port == 5433);
  CHECK(db.dbname == "shop_prod");
  CHECK(db.user == "app");
  CHECK(db.password == std::optional<std::string>("it's secret"));
  CHECK(db.poolSize == std::optional<int>(30));
  CHECK(db.minPoolSize == std::optional<int>(2));
  CHECK(db.reservePoolSize == std::optional<int>(5));
  CHECK(db.poolMode == std::optional<PoolMode>(PoolMode::Transaction));
  CHECK(db.maxDbConnections == std::optional<int>(50));
  CHECK(db.maxDbClientConnections == std::optional<int>(500));
  CHECK(db.serverLifetime == std::optional<double>(1800.5));
  CHECK(db.queryWaitTimeout == std::optional<double>(30));
  CHECK(db.connectQuery == "SET search_path TO shop");
  CHECK(db.clientEncoding == "UTF8");
  CHECK(db.datestyle == "ISO");
  CHECK(db.timezone == "UTC");
  CHECK(db.applicationName == "shopapp");
  CHECK(db.authUser == "authenticator");

  const DatabaseEntry& spaced = cfg->databases[1];
  CHECK(spaced.host == "/var/run/postgresql");
  CHECK(spaced.dbname == "x");
  CHECK_FALSE(spaced.password.has_value());
  CHECK_FALSE(spaced.poolSize.has_value());
  CHECK(spaced.port == 5432);

  CHECK(cfg->databases[2].name == "odd name=x");
  CHECK(cfg->databases[2].dbname == "odd");
}

TEST_CASE("[databases] takes PgBouncer's old name reserve_pool", "[config]") {
  const auto cfg =
      parseConfig("[databases]\nnondefaultdb = pool_size=50 reserve_pool=10\n", "t.ini");
  REQUIRE(cfg->databases.size() == 1);
  CHECK(cfg->databases[0].reservePoolSize == std::optional<int>(10));
}

TEST_CASE("findDatabase prefers the exact name, then '*'", "[config]") {
  const auto cfg = parseConfig("[databases]\nshop = dbname=s\n* = host=fallback\n", "t.ini");
  REQUIRE(cfg->findDatabase("shop") != nullptr);
  CHECK(cfg->findDatabase("shop")->dbname == "s");
  REQUIRE(cfg->findDatabase("other") != nullptr);
  CHECK(cfg->findDatabase("other")->host == "fallback");
  CHECK(cfg->findDatabase("SHOP")->host == "fallback");  // database names are case-sensitive

  const auto bare = parseConfig("[databases]\nshop = dbname=s\n", "t.ini");
  CHECK(bare->findDatabase("other") == nullptr);
  CHECK(bare->findUser("alice") == nullptr);
}

TEST_CASE("[databases] errors name the entry and the key", "[config]") {
  CHECK(loadError("[databases]\nshop = host=x colour=blue\n") ==
        "t.ini:2: [databases] shop: unknown key 'colour'");
  CHECK(loadError("[databases]\n\nshop = port=abc\n") ==
        "t.ini:3: [databases] shop: invalid value for port: 'abc' (expected an integer 1-65535)");
  CHECK(loadError("[databases]\nshop = pool_size=-1\n") ==
        "t.ini:2: [databases] shop: invalid value for pool_size: '-1' (expected an integer >= 0)");
  CHECK(loadError("[databases]\nshop = pool_mode=bulk\n") ==
        "t.ini:2: [databases] shop: invalid value for pool_mode: 'bulk' (expected session, "
        "transaction or statement)");
  CHECK(loadError("[databases]\nshop = password='open\n") ==
        "t.ini:2: [databases] shop: unterminated quoted value for password");
  CHECK(loadError("[databases]\nshop = host\n") ==
        "t.ini:2: [databases] shop: expected key=value, got 'host'");
}

TEST_CASE("[databases] keys PgBouncer knows but pgmux does not are warnings", "[config]") {
  const auto cfg = parseConfig(
      "[databases]\nshop = host=a,b load_balance_hosts=round-robin auth_dbname=x\n", "t.ini");
  REQUIRE(cfg->databases.size() == 1);
  CHECK(cfg->databases[0].host == "a,b");
  REQUIRE(cfg->warnings.size() == 2);
  CHECK(cfg->warnings[0] ==
        "t.ini:2: [databases] shop: key 'load_balance_hosts' is not supported by pgmux, ignored");
}

TEST_CASE("a database defined twice keeps the later line, with a warning", "[config]") {
  const auto cfg = parseConfig("[databases]\nshop = dbname=a\nshop = dbname=b\n", "t.ini");
  REQUIRE(cfg->databases.size() == 1);
  CHECK(cfg->databases[0].dbname == "b");
  CHECK(cfg->databases[0].line == 3);
  REQUIRE(cfg->warnings.size() == 1);
  CHECK(cfg->warnings[0] == "t.ini:3: database shop is defined again, replacing line 2");
}

TEST_CASE("a [databases] line longer than inih's line buffer is read whole", "[config]") {
  const std::string query(600, 'q');
  const auto cfg = parseConfig("[databases]\nbig = host=h connect_query='SELECT " + query +
                                   "' dbname=last\n[pgbouncer]\nlisten_port = 6001\n",
                               "t.ini");
  REQUIRE(cfg->databases.size() == 1);
  CHECK(cfg->databases[0].connectQuery == "SELECT " + query);
  CHECK(cfg->databases[0].dbname == "last");
  CHECK(cfg->listenPort == 6001);
}

TEST_CASE("[users] lines set per-user limits", "[config]") {
  const auto cfg = parseConfig(
      "[users]\n"
      "alice = pool_mode=session pool_size=3 reserve_pool_size=1 max_user_connections=10 "
      "max_user_client_connections=100 query_timeout=5 query_wait_timeout=6 "
      "idle_transaction_timeout=7 transaction_timeout=8 client_idle_timeout=9.5\n"
      "bob =\n",
      "t.ini");
  REQUIRE(cfg->users.size() == 2);
  const UserEntry* alice = cfg->findUser("alice");
  REQUIRE(alice != nullptr);
  CHECK(alice->line == 2);
  CHECK(alice->poolMode == std::optional<PoolMode>(PoolMode::Session));
  CHECK(alice->poolSize == std::optional<int>(3));
  CHECK(alice->reservePoolSize == std::optional<int>(1));
  CHECK(alice->maxUserConnections == std::optional<int>(10));
  CHECK(alice->maxUserClientConnections == std::optional<int>(100));
  CHECK(alice->queryTimeout == std::optional<double>(5));
  CHECK(alice->queryWaitTimeout == std::optional<double>(6));
  CHECK(alice->idleTransactionTimeout == std::optional<double>(7));
  CHECK(alice->transactionTimeout == std::optional<double>(8));
  CHECK(alice->clientIdleTimeout == std::optional<double>(9.5));
  const UserEntry* bob = cfg->findUser("bob");
  REQUIRE(bob != nullptr);
  CHECK_FALSE(bob->poolSize.has_value());
  CHECK(cfg->findUser("carol") == nullptr);

  CHECK(loadError("[users]\nalice = dbname=x\n") == "t.ini:2: [users] alice: unknown key 'dbname'");
  CHECK(loadError("[users]\nalice = query_timeout=soon\n") ==
        "t.ini:2: [users] alice: invalid value for query_timeout: 'soon' (expected a number of "
        "seconds >= 0, fractions allowed)");
}

TEST_CASE("a config file that cannot be read is named with the reason", "[config]") {
  TempDir dir;
  const std::string missing = (dir.path() / "nope.ini").string();
  CHECK(fileError(missing) == "cannot read config file " + missing + ": No such file or directory");
  CHECK(fileError(dir.path().string()) ==
        "cannot read config file " + dir.path().string() + ": Is a directory");
}

TEST_CASE("%include splices files in, relative to the including file, nested", "[config]") {
  TempDir dir;
  dir.write("conf.d/databases.ini",
            "[databases]\n"
            "shop = dbname=shop\n"
            "%include more/users.ini\n"
            "after = pool_size=1\n");
  dir.write("conf.d/more/users.ini", "[users]\nalice = pool_size=4\n");
  const std::string main = dir.write(
      "main.ini",
      "[pgbouncer]\nlisten_port = 6010\n%include conf.d/databases.ini\n[pgbouncer]\npool_mode = "
      "transaction\n");
  const auto cfg = loadConfig(main);
  CHECK(cfg->path == main);
  CHECK(cfg->listenPort == 6010);
  CHECK(cfg->poolMode == PoolMode::Transaction);
  REQUIRE(cfg->findUser("alice") != nullptr);
  CHECK(cfg->findUser("alice")->poolSize == std::optional<int>(4));
  // The included [users] section stays current after the include, as if the text were pasted.
  REQUIRE(cfg->users.size() == 2);
  CHECK(cfg->users[1].name == "after");
  REQUIRE(cfg->databases.size() == 1);
  CHECK(cfg->databases[0].line == 2);
}

TEST_CASE("an error inside an included file names that file and its line", "[config]") {
  TempDir dir;
  const std::string inner = dir.write("inner.ini", "; inner\nlisten_port = 99999\n");
  const std::string main =
      dir.write("main.ini", "[pgbouncer]\n%include inner.ini\nlisten_port = 1\n");
  CHECK(fileError(main) == inner +
                               ":2: invalid value for listen_port: '99999' (expected an integer "
                               "1-65535)");
  // Lines after the include are counted in the including file again.
  dir.write("ok.ini", "pool_mode = session\n");
  const std::string second =
      dir.write("second.ini", "[pgbouncer]\n%include ok.ini\n\nlisten_port = x\n");
  CHECK(fileError(second) == second +
                                 ":4: invalid value for listen_port: 'x' (expected an integer "
                                 "1-65535)");
}

TEST_CASE("a missing include file is named with the line that includes it", "[config]") {
  TempDir dir;
  const std::string main = dir.write("main.ini", "[pgbouncer]\n\n%include gone.ini\n");
  CHECK(fileError(main) == main + ":3: cannot read config file " +
                               (dir.path() / "gone.ini").string() + ": No such file or directory");
  CHECK(loadError("%include\n") == "t.ini:1: %include needs a file name");
}

TEST_CASE("an include loop stops at the depth limit", "[config]") {
  TempDir dir;
  const std::string main = dir.write("loop.ini", "[pgbouncer]\n%include loop.ini\n");
  const std::string error = fileError(main);
  CHECK(error == main + ":2: %include nested more than 10 deep (does a file include itself?)");
}

TEST_CASE("a realistic pgbouncer.ini loads", "[config]") {
  TempDir dir;
  dir.write("userlist.txt", "\"app\" \"secret\"\n");
  const std::string path = dir.write("pgbouncer.ini", R"(;; PgBouncer configuration file
[databases]
appdb = host=10.1.2.3 port=5432 dbname=app auth_user=pgbouncer pool_size=40
reporting = host=replica.internal dbname=app user=report password=r3port pool_mode=session
* = host=10.1.2.3 port=5432

[users]
batch = pool_mode=session max_user_connections=5

[pgbouncer]
logfile = /var/log/pgbouncer/pgbouncer.log
pidfile = /var/run/pgbouncer/pgbouncer.pid
listen_addr = *
listen_port = 6432
unix_socket_dir = /var/run/postgresql
auth_type = scram-sha-256
auth_file = /etc/pgbouncer/userlist.txt
auth_user = pgbouncer
auth_query = SELECT usename, passwd FROM pgbouncer.get_auth($1)
admin_users = postgres
stats_users = stats, postgres
pool_mode = transaction
server_reset_query = DISCARD ALL
server_check_query = select 1
server_check_delay = 30
max_client_conn = 5000
default_pool_size = 20
min_pool_size = 5
reserve_pool_size = 5
reserve_pool_timeout = 3
max_db_connections = 100
server_lifetime = 3600
server_idle_timeout = 600
server_connect_timeout = 15
server_login_retry = 15
query_wait_timeout = 120
client_idle_timeout = 0
client_login_timeout = 60
idle_transaction_timeout = 300
ignore_startup_parameters = extra_float_digits, options
max_prepared_statements = 100
log_connections = 0
log_disconnections = 0
log_pooler_errors = 1
stats_period = 60
verbose = 0
pkt_buf = 4096
tcp_keepalive = 1
tcp_keepidle = 60
tcp_keepintvl = 10
tcp_keepcnt = 6
server_tls_sslmode = prefer
server_tls_protocols = secure
dns_max_ttl = 15
syslog_ident = pgbouncer
)");
  const auto cfg = loadConfig(path);
  CHECK(cfg->databases.size() == 3);
  CHECK(cfg->findDatabase("appdb")->poolSize == std::optional<int>(40));
  CHECK(cfg->findDatabase("unlisted")->name == "*");
  CHECK(cfg->authType == AuthType::ScramSha256);
  CHECK(cfg->authQuery == "SELECT usename, passwd FROM pgbouncer.get_auth($1)");
  CHECK(cfg->statsUsers == std::vector<std::string>{"stats", "postgres"});
  CHECK(cfg->ignoreStartupParameters == std::vector<std::string>{"extra_float_digits", "options"});
  CHECK(cfg->maxClientConn == 5000);
  CHECK(cfg->idleTransactionTimeout == 300);
  CHECK_FALSE(cfg->logConnections);
  CHECK(cfg->tcpKeepcnt == 6);
  // Only the two keys pgmux does not implement are mentioned.
  REQUIRE(cfg->warnings.size() == 2);
  CHECK(cfg->warnings[0].find("dns_max_ttl") != std::string::npos);
  CHECK(cfg->warnings[1].find("syslog_ident") != std::string::npos);
}
