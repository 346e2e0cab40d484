// The configuration snapshot: pgbouncer.ini read into typed fields. Immutable once loaded; a
// reload builds a new Config.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgmux::config {

enum class PoolMode : uint8_t { Session, Transaction, Statement };
enum class AuthType : uint8_t { Any, Trust, Plain, Md5, ScramSha256, Cert, Hba, Pam, Ldap };

const char* toString(PoolMode mode);
const char* toString(AuthType type);

// One [databases] line: `name = key=value ...`. Optional fields are unset when not given.
struct DatabaseEntry {
  std::string name;  // "*" for the fallback entry
  std::string host;  // empty: unix socket in /var/run/postgresql; a leading '/' is a socket dir
  int port = 5432;
  std::string dbname;  // empty: same as the client's database name
  std::string user;    // forced server user; empty: the client's user
  std::optional<std::string> password;
  std::string authUser;
  std::optional<int> poolSize;
  std::optional<int> minPoolSize;
  std::optional<int> reservePoolSize;
  std::optional<PoolMode> poolMode;
  std::optional<int> maxDbConnections;
  std::optional<int> maxDbClientConnections;
  std::optional<double> serverLifetime;
  std::optional<double> queryWaitTimeout;
  std::string connectQuery;
  std::string clientEncoding;
  std::string datestyle;
  std::string timezone;
  std::string applicationName;
  int line = 0;  // where it was declared
};

// One [users] line.
struct UserEntry {
  std::string name;
  std::optional<PoolMode> poolMode;
  std::optional<int> poolSize;
  std::optional<int> reservePoolSize;
  std::optional<int> maxUserConnections;
  std::optional<int> maxUserClientConnections;
  std::optional<double> queryTimeout;
  std::optional<double> queryWaitTimeout;
  std::optional<double> idleTransactionTimeout;
  std::optional<double> transactionTimeout;
  std::optional<double> clientIdleTimeout;
  int line = 0;
};

// Every key of the main section ([pgbouncer] or [pgmux]), with PgBouncer's defaults. Times are
// seconds. The settings table (settings.h) is the one place that names, parses and prints them.
struct Config {
  std::string path;  // the main file

  std::vector<DatabaseEntry> databases;
  std::vector<UserEntry> users;
  // Exact name first, then the "*" entry; nullptr when neither exists.
  const DatabaseEntry* findDatabase(std::string_view name) const;
  const UserEntry* findUser(std::string_view name) const;

  // listening
  std::string listenAddr;  // comma list; "*" = all; empty = no TCP listener
  int listenPort = 6432;
  std::string unixSocketDir = "/tmp";  // empty = no unix socket
  int unixSocketMode = 0777;
  std::string unixSocketGroup;
  int listenBacklog = 128;
  bool soReuseport = false;
  // process
  std::string logfile;
  std::string pidfile;
  std::string user;
  // pooling
  PoolMode poolMode = PoolMode::Session;
  int maxClientConn = 100;
  int defaultPoolSize = 20;
  int minPoolSize = 0;
  int reservePoolSize = 0;
  double reservePoolTimeout = 5;
  int maxDbConnections = 0;
  int maxDbClientConnections = 0;
  int maxUserConnections = 0;
  int maxUserClientConnections = 0;
  bool serverRoundRobin = false;
  // parameters
  std::vector<std::string> trackExtraParameters{"IntervalStyle"};
  std::vector<std::string> ignoreStartupParameters{"extra_float_digits"};
  bool applicationNameAddHost = false;
  bool disablePqexec = false;
  int maxPreparedStatements = 200;
  // auth
  AuthType authType = AuthType::Md5;
  std::string authFile;
  std::string authHbaFile;
  std::string authIdentFile;
  std::string authUser;
  std::string authQuery = "SELECT usename, passwd FROM pg_shadow WHERE usename=$1";
  std::string authDbname;
  int scramIterations = 4096;
  // console
  std::vector<std::string> adminUsers;
  std::vector<std::string> statsUsers;
  // logging
  bool syslog = false;
  bool logConnections = true;
  bool logDisconnections = true;
  bool logPoolerErrors = true;
  bool logStats = true;
  double statsPeriod = 60;
  int verbose = 0;
  // server sanity
  std::string serverResetQuery = "DISCARD ALL";
  bool serverResetQueryAlways = false;
  double serverCheckDelay = 30;
  std::string serverCheckQuery;
  bool serverFastClose = false;
  double serverLifetime = 3600;
  double serverIdleTimeout = 600;
  double serverConnectTimeout = 15;
  double serverLoginRetry = 15;
  // client limits
  double clientLoginTimeout = 60;
  double clientIdleTimeout = 0;
  double queryWaitTimeout = 120;
  double queryWaitNotify = 5;
  double cancelWaitTimeout = 10;
  double autodbIdleTimeout = 3600;
  // dangerous timeouts
  double queryTimeout = 0;
  double idleTransactionTimeout = 0;
  double transactionTimeout = 0;
  double suspendTimeout = 10;
  // network
  int pktBuf = 4096;
  int64_t maxPacketSize = 2147483647;
  int sbufLoopcnt = 5;
  bool tcpDeferAccept = true;
  int tcpSocketBuffer = 0;
  bool tcpKeepalive = true;
  int tcpKeepcnt = 0;
  int tcpKeepidle = 0;
  int tcpKeepintvl = 0;
  int tcpUserTimeout = 0;
  // TLS (not implemented yet: only "disable" is accepted for clients)
  std::string clientTlsSslmode = "disable";
  std::string clientTlsKeyFile;
  std::string clientTlsCertFile;
  std::string clientTlsCaFile;
  std::string clientTlsProtocols = "secure";
  std::string clientTlsCiphers = "default";
  std::string serverTlsSslmode = "prefer";
  std::string serverTlsCaFile;
  std::string serverTlsKeyFile;
  std::string serverTlsCertFile;
  std::string serverTlsProtocols = "secure";
  std::string serverTlsCiphers = "default";
  // pgmux's own
  int workers = 0;  // 0: one per usable CPU (config/workers.h)
  std::string httpAddr;  // empty: no HTTP port
  int httpPort = 0;
  int serverPipelining = 0;
  bool localResetQuery = true;

  // Lines said while loading that are not errors (unknown keys), "file:line: ..." each.
  std::vector<std::string> warnings;
};

// Loads `path` (and its %include files). Throws ConfigError naming file, line and key when a
// value is invalid, a line is malformed, a database or user entry has an unknown key, or the
// file cannot be read. Unknown keys in the main section are warnings, not errors.
std::shared_ptr<const Config> loadConfig(const std::string& path);

// Same, from text (for tests); `origin` names it in messages.
std::shared_ptr<const Config> parseConfig(std::string_view text, const std::string& origin);

class ConfigError : public std::exception {
 public:
  explicit ConfigError(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

}  // namespace pgmux::config
