// The settings table: every main-section key with its type, default, reloadability and help, and
// the functions that read it into a Config and print it back (file parsing, SHOW CONFIG, SET).
#include "pgmux/config/settings.h"

#include <array>
#include <cstdio>
#include <limits>
#include <type_traits>

#include "values.h"

namespace pgmux::config {

namespace {

using detail::invalidValue;

constexpr int64_t kIntMax = std::numeric_limits<int>::max();

// A key's name as a template argument: the table stores plain function pointers, so the name,
// the member and its limits are baked into each apply/show instantiation instead of captured.
template <size_t N>
struct Key {
  constexpr Key(const char (&text)[N]) {  // NOLINT(google-explicit-constructor): used as "name"
    for (size_t i = 0; i < N; ++i) chars[i] = text[i];
  }
  char chars[N];
};

template <Key Name, auto Member, int64_t Min = 0, int64_t Max = kIntMax>
bool applyInt(Config& cfg, std::string_view value, std::string& error) {
  int64_t parsed = 0;
  std::string expected;
  if (!detail::parseInteger(value, Min, Max, parsed, expected)) {
    error = invalidValue(Name.chars, value, expected);
    return false;
  }
  using Field = std::remove_reference_t<decltype(cfg.*Member)>;
  cfg.*Member = static_cast<Field>(parsed);
  return true;
}

template <auto Member>
std::string showInt(const Config& cfg) {
  return std::to_string(cfg.*Member);
}

template <Key Name, auto Member>
bool applyBool(Config& cfg, std::string_view value, std::string& error) {
  std::string expected;
  if (detail::parseBool(value, cfg.*Member, expected)) return true;
  error = invalidValue(Name.chars, value, expected);
  return false;
}

template <auto Member>
std::string showBool(const Config& cfg) {
  return cfg.*Member ? "1" : "0";
}

template <Key Name, auto Member>
bool applySeconds(Config& cfg, std::string_view value, std::string& error) {
  std::string expected;
  if (detail::parseSeconds(value, cfg.*Member, expected)) return true;
  error = invalidValue(Name.chars, value, expected);
  return false;
}

template <auto Member>
std::string showSeconds(const Config& cfg) {
  return detail::formatSeconds(cfg.*Member);
}

template <auto Member>
bool applyString(Config& cfg, std::string_view value, std::string& /*error*/) {
  cfg.*Member = std::string(value);
  return true;
}

template <auto Member>
std::string showString(const Config& cfg) {
  return cfg.*Member;
}

template <auto Member>
bool applyList(Config& cfg, std::string_view value, std::string& /*error*/) {
  cfg.*Member = detail::parseList(value);
  return true;
}

template <auto Member>
std::string showList(const Config& cfg) {
  return detail::formatList(cfg.*Member);
}

bool applyPoolMode(Config& cfg, std::string_view value, std::string& error) {
  std::string expected;
  if (detail::parsePoolMode(value, cfg.poolMode, expected)) return true;
  error = invalidValue("pool_mode", value, expected);
  return false;
}

std::string showPoolMode(const Config& cfg) { return toString(cfg.poolMode); }

bool applyAuthType(Config& cfg, std::string_view value, std::string& error) {
  std::string expected;
  if (detail::parseAuthType(value, cfg.authType, expected)) return true;
  error = invalidValue("auth_type", value, expected);
  return false;
}

std::string showAuthType(const Config& cfg) { return toString(cfg.authType); }

bool applySocketMode(Config& cfg, std::string_view value, std::string& error) {
  int mode = 0;
  bool ok = !value.empty() && value.size() <= 4;
  for (char c : value) {
    if (c < '0' || c > '7') ok = false;
    if (ok) mode = mode * 8 + (c - '0');
  }
  if (!ok || mode > 0777) {
    error = invalidValue("unix_socket_mode", value, "an octal file mode such as 0777");
    return false;
  }
  cfg.unixSocketMode = mode;
  return true;
}

std::string showSocketMode(const Config& cfg) {
  std::array<char, 16> buf{};
  std::snprintf(buf.data(), buf.size(), "%04o", static_cast<unsigned>(cfg.unixSocketMode));
  return buf.data();
}

// PgBouncer once took tcp_defer_accept as a number of seconds; any count means "on".
bool applyTcpDeferAccept(Config& cfg, std::string_view value, std::string& error) {
  std::string ignored;
  if (detail::parseBool(value, cfg.tcpDeferAccept, ignored)) return true;
  int64_t seconds = 0;
  if (detail::parseInteger(value, 0, kIntMax, seconds, ignored)) {
    cfg.tcpDeferAccept = seconds > 0;
    return true;
  }
  error = invalidValue("tcp_defer_accept", value, "a boolean or a number of seconds");
  return false;
}

constexpr std::array<const char*, 6> kSslModes{"disable", "allow",     "prefer",
                                               "require", "verify-ca", "verify-full"};

bool isSslMode(std::string_view value) {
  for (const char* mode : kSslModes) {
    if (value == mode) return true;
  }
  return false;
}

// Client TLS is not implemented yet: accepting "require" would serve clients in clear text that
// asked for TLS to be enforced, so anything but "disable" is refused here with the reason.
bool applyClientTlsSslmode(Config& cfg, std::string_view value, std::string& error) {
  if (value == "disable") {
    cfg.clientTlsSslmode = "disable";
    return true;
  }
  error =
      invalidValue("client_tls_sslmode", value, "disable: pgmux does not implement client TLS yet");
  return false;
}

bool applyServerTlsSslmode(Config& cfg, std::string_view value, std::string& error) {
  if (!isSslMode(value)) {
    error = invalidValue("server_tls_sslmode", value,
                         "one of disable, allow, prefer, require, verify-ca, verify-full");
    return false;
  }
  cfg.serverTlsSslmode = std::string(value);
  return true;
}

// The row builders keep the table one line of facts per key.
template <Key Name, auto Member, int64_t Min = 0, int64_t Max = kIntMax>
constexpr Setting intRow(const char* def, bool reload, const char* help) {
  return {Name.chars,      SettingType::Int, def, reload, help, &applyInt<Name, Member, Min, Max>,
          &showInt<Member>};
}
template <Key Name, auto Member>
constexpr Setting boolRow(const char* def, bool reload, const char* help) {
  return {Name.chars,       SettingType::Bool, def, reload, help, &applyBool<Name, Member>,
          &showBool<Member>};
}
template <Key Name, auto Member>
constexpr Setting secondsRow(const char* def, bool reload, const char* help) {
  return {Name.chars,          SettingType::Seconds, def, reload, help, &applySeconds<Name, Member>,
          &showSeconds<Member>};
}
template <Key Name, auto Member>
constexpr Setting stringRow(const char* def, bool reload, const char* help) {
  return {Name.chars,           SettingType::String, def, reload, help,
          &applyString<Member>, &showString<Member>};
}
template <Key Name, auto Member>
constexpr Setting listRow(const char* def, bool reload, const char* help) {
  return {Name.chars, SettingType::List, def, reload, help, &applyList<Member>, &showList<Member>};
}

constexpr bool kReload = true;
constexpr bool kRestart = false;

using C = Config;

const Setting kSettings[] = {
    // listening
    stringRow<"listen_addr", &C::listenAddr>(
        "", kRestart, "TCP addresses to listen on, comma separated; * = all, empty = none"),
    intRow<"listen_port", &C::listenPort, 1, 65535>("6432", kRestart, "TCP port to listen on"),
    stringRow<"unix_socket_dir", &C::unixSocketDir>(
        "/tmp", kRestart, "Directory for the unix socket .s.PGSQL.<port>; empty = none"),
    {"unix_socket_mode", SettingType::Mode, "0777", kRestart, "File mode of the unix socket",
     &applySocketMode, &showSocketMode},
    stringRow<"unix_socket_group", &C::unixSocketGroup>("", kRestart,
                                                        "Group owning the unix socket"),
    intRow<"listen_backlog", &C::listenBacklog, 1>("128", kRestart, "Backlog passed to listen()"),
    boolRow<"so_reuseport", &C::soReuseport>(
        "0", kRestart, "Set SO_REUSEPORT so several processes can share the port"),
    // process
    stringRow<"logfile", &C::logfile>("", kReload, "Log file; empty = stdout"),
    stringRow<"pidfile", &C::pidfile>("", kRestart, "Where to write the process id; empty = none"),
    stringRow<"user", &C::user>("", kRestart, "Switch to this OS user after start-up"),
    // pooling
    {"pool_mode", SettingType::PoolMode, "session", kReload,
     "When a server goes back to the pool: session, transaction or statement", &applyPoolMode,
     &showPoolMode},
    intRow<"max_client_conn", &C::maxClientConn, 1>("100", kReload,
                                                    "Most client connections allowed at once"),
    intRow<"default_pool_size", &C::defaultPoolSize>(
        "20", kReload, "Server connections per (database, user) pool"),
    intRow<"min_pool_size", &C::minPoolSize>(
        "0", kReload, "Keep at least this many server connections open per pool"),
    intRow<"reserve_pool_size", &C::reservePoolSize>(
        "0", kReload, "Extra server connections a pool may open when clients wait"),
    secondsRow<"reserve_pool_timeout", &C::reservePoolTimeout>(
        "5", kReload, "Seconds a client waits before the reserve pool is used"),
    intRow<"max_db_connections", &C::maxDbConnections>(
        "0", kReload, "Most server connections per database; 0 = no limit"),
    intRow<"max_db_client_connections", &C::maxDbClientConnections>(
        "0", kReload, "Most client connections per database; 0 = no limit"),
    intRow<"max_user_connections", &C::maxUserConnections>(
        "0", kReload, "Most server connections per user; 0 = no limit"),
    intRow<"max_user_client_connections", &C::maxUserClientConnections>(
        "0", kReload, "Most client connections per user; 0 = no limit"),
    boolRow<"server_round_robin", &C::serverRoundRobin>(
        "0", kReload, "Reuse idle servers round robin instead of most recent first"),
    // parameters
    listRow<"track_extra_parameters", &C::trackExtraParameters>(
        "IntervalStyle", kRestart, "Startup parameters tracked besides the standard ones"),
    listRow<"ignore_startup_parameters", &C::ignoreStartupParameters>(
        "extra_float_digits", kReload, "Startup parameters accepted from clients and dropped"),
    boolRow<"application_name_add_host", &C::applicationNameAddHost>(
        "0", kReload, "Append the client address to application_name"),
    boolRow<"disable_pqexec", &C::disablePqexec>("0", kRestart,
                                                 "Refuse multi-statement simple queries"),
    intRow<"max_prepared_statements", &C::maxPreparedStatements>(
        "200", kReload,
        "Protocol-level prepared statements kept per server connection; 0 = no tracking"),
    // auth
    {"auth_type", SettingType::AuthType, "md5", kReload,
     "How clients log in: any, trust, plain, md5, scram-sha-256, cert, hba, pam, ldap",
     &applyAuthType, &showAuthType},
    stringRow<"auth_file", &C::authFile>("", kReload, "File with \"user\" \"secret\" lines"),
    stringRow<"auth_hba_file", &C::authHbaFile>("", kReload, "pg_hba.conf-style file for hba"),
    stringRow<"auth_ident_file", &C::authIdentFile>("", kReload, "pg_ident.conf-style map file"),
    stringRow<"auth_user", &C::authUser>("", kReload,
                                         "User that runs auth_query for users not in auth_file"),
    stringRow<"auth_query", &C::authQuery>("SELECT usename, passwd FROM pg_shadow WHERE usename=$1",
                                           kReload, "Query that returns a user's password secret"),
    stringRow<"auth_dbname", &C::authDbname>("", kReload, "Database auth_query runs in"),
    intRow<"scram_iterations", &C::scramIterations, 1>(
        "4096", kReload, "Iterations for SCRAM secrets computed by the pooler"),
    // console
    listRow<"admin_users", &C::adminUsers>("", kReload,
                                           "Users allowed every admin console command"),
    listRow<"stats_users", &C::statsUsers>("", kReload, "Users allowed the SHOW commands"),
    // logging
    boolRow<"syslog", &C::syslog>("0", kReload, "Also log to syslog"),
    boolRow<"log_connections", &C::logConnections>("1", kReload, "Log each client login"),
    boolRow<"log_disconnections", &C::logDisconnections>(
        "1", kReload, "Log each client disconnect with its reason"),
    boolRow<"log_pooler_errors", &C::logPoolerErrors>("1", kReload,
                                                      "Log errors the pooler sends to clients"),
    boolRow<"log_stats", &C::logStats>("1", kReload,
                                       "Log aggregated statistics every stats_period"),
    secondsRow<"stats_period", &C::statsPeriod>("60", kReload,
                                                "Seconds between statistics updates"),
    intRow<"verbose", &C::verbose>("0", kReload, "More detail in the log: 1 = debug, 2 = noise"),
    // server sanity
    stringRow<"server_reset_query", &C::serverResetQuery>(
        "DISCARD ALL", kReload, "Query run when a server is released in session mode"),
    boolRow<"server_reset_query_always", &C::serverResetQueryAlways>(
        "0", kReload, "Run server_reset_query in every pool mode"),
    secondsRow<"server_check_delay", &C::serverCheckDelay>(
        "30", kReload, "Idle seconds after which a server is checked before use"),
    stringRow<"server_check_query", &C::serverCheckQuery>(
        "", kReload, "Query that checks a server; empty = an empty query"),
    boolRow<"server_fast_close", &C::serverFastClose>(
        "0", kReload, "Session mode: end a session on a moved database's server at its transaction end"),
    secondsRow<"server_lifetime", &C::serverLifetime>(
        "3600", kReload, "Close a server connection older than this; 0 = never"),
    secondsRow<"server_idle_timeout", &C::serverIdleTimeout>(
        "600", kReload, "Close a server idle longer than this; 0 = never"),
    secondsRow<"server_connect_timeout", &C::serverConnectTimeout>(
        "15", kReload, "Seconds allowed to connect and log in to a server"),
    secondsRow<"server_login_retry", &C::serverLoginRetry>(
        "15", kReload, "Seconds to wait after a failed server login"),
    // client limits
    secondsRow<"client_login_timeout", &C::clientLoginTimeout>("60", kReload,
                                                               "Seconds a client has to log in"),
    secondsRow<"client_idle_timeout", &C::clientIdleTimeout>(
        "0", kReload, "Close a client idle longer than this; 0 = never"),
    secondsRow<"query_wait_timeout", &C::queryWaitTimeout>(
        "120", kReload, "Most seconds a client waits for a server; 0 = forever"),
    secondsRow<"query_wait_notify", &C::queryWaitNotify>(
        "5", kReload, "Tell a waiting client after this many seconds; 0 = never"),
    secondsRow<"cancel_wait_timeout", &C::cancelWaitTimeout>(
        "10", kReload, "Most seconds a cancel request waits for a server"),
    secondsRow<"autodb_idle_timeout", &C::autodbIdleTimeout>(
        "3600", kReload, "Drop unused pools made from the * entry after this"),
    // dangerous timeouts
    secondsRow<"query_timeout", &C::queryTimeout>(
        "0", kReload, "Cancel queries running longer than this; 0 = never"),
    secondsRow<"idle_transaction_timeout", &C::idleTransactionTimeout>(
        "0", kReload, "Close a client idle in a transaction this long"),
    secondsRow<"transaction_timeout", &C::transactionTimeout>(
        "0", kReload, "Close a client whose transaction runs this long"),
    secondsRow<"suspend_timeout", &C::suspendTimeout>("10", kReload,
                                                      "Seconds SUSPEND waits for buffers to flush"),
    // network
    intRow<"pkt_buf", &C::pktBuf, 512>("4096", kRestart, "Size of the packet buffers"),
    intRow<"max_packet_size", &C::maxPacketSize, 1024, 2147483647>(
        "2147483647", kReload, "Largest PostgreSQL message let through"),
    intRow<"sbuf_loopcnt", &C::sbufLoopcnt>(
        "5", kReload, "Reads per connection per loop turn before others get a turn"),
    {"tcp_defer_accept", SettingType::Bool, "1", kReload, "Set TCP_DEFER_ACCEPT on listeners",
     &applyTcpDeferAccept, &showBool<&C::tcpDeferAccept>},
    intRow<"tcp_socket_buffer", &C::tcpSocketBuffer>(
        "0", kReload, "Socket buffer size; 0 = the kernel's default"),
    boolRow<"tcp_keepalive", &C::tcpKeepalive>("1", kReload, "Turn on TCP keepalive"),
    intRow<"tcp_keepcnt", &C::tcpKeepcnt>("0", kReload, "TCP_KEEPCNT; 0 = the kernel's default"),
    intRow<"tcp_keepidle", &C::tcpKeepidle>("0", kReload,
                                            "TCP_KEEPIDLE seconds; 0 = the kernel's default"),
    intRow<"tcp_keepintvl", &C::tcpKeepintvl>("0", kReload,
                                              "TCP_KEEPINTVL seconds; 0 = the kernel's default"),
    intRow<"tcp_user_timeout", &C::tcpUserTimeout>(
        "0", kReload, "TCP_USER_TIMEOUT milliseconds; 0 = the kernel's default"),
    // TLS
    {"client_tls_sslmode", SettingType::String, "disable", kReload,
     "TLS for clients; pgmux accepts only disable for now", &applyClientTlsSslmode,
     &showString<&C::clientTlsSslmode>},
    stringRow<"client_tls_key_file", &C::clientTlsKeyFile>("", kReload,
                                                           "Private key for client TLS"),
    stringRow<"client_tls_cert_file", &C::clientTlsCertFile>("", kReload,
                                                             "Certificate for client TLS"),
    stringRow<"client_tls_ca_file", &C::clientTlsCaFile>("", kReload,
                                                         "CA file to check client certificates"),
    stringRow<"client_tls_protocols", &C::clientTlsProtocols>("secure", kReload,
                                                              "TLS versions allowed with clients"),
    stringRow<"client_tls_ciphers", &C::clientTlsCiphers>("default", kReload,
                                                          "Cipher list for clients"),
    {"server_tls_sslmode", SettingType::String, "prefer", kReload,
     "TLS to servers: disable, allow, prefer, require, verify-ca, verify-full",
     &applyServerTlsSslmode, &showString<&C::serverTlsSslmode>},
    stringRow<"server_tls_ca_file", &C::serverTlsCaFile>("", kReload,
                                                         "CA file to check server certificates"),
    stringRow<"server_tls_key_file", &C::serverTlsKeyFile>("", kReload,
                                                           "Private key to present to servers"),
    stringRow<"server_tls_cert_file", &C::serverTlsCertFile>("", kReload,
                                                             "Certificate to present to servers"),
    stringRow<"server_tls_protocols", &C::serverTlsProtocols>("secure", kReload,
                                                              "TLS versions allowed with servers"),
    stringRow<"server_tls_ciphers", &C::serverTlsCiphers>("default", kReload,
                                                          "Cipher list for servers"),
    // pgmux's own
    intRow<"workers", &C::workers, 0, 1024>(
        "0", kRestart, "Event-loop threads; 0 = one per CPU pgmux may use (affinity, cgroup quota), at most 16; pgmux's own"),
    stringRow<"http_addr", &C::httpAddr>(
        "", kRestart, "Address of the /healthz /readyz /metrics port; pgmux's own"),
    intRow<"http_port", &C::httpPort, 0, 65535>(
        "0", kRestart, "Port for /healthz /readyz /metrics; 0 = off; pgmux's own"),
    boolRow<"local_reset_query", &C::localResetQuery>(
        "1", kReload,
        "Answer a driver's reset query (asyncpg's) without a server in transaction and statement mode; pgmux's own"),
    intRow<"server_pipelining", &C::serverPipelining, 0, 16>(
        "0", kReload,
        "Clients' lone SELECT requests (simple, PQexecParams' Parse/Bind/Execute of the unnamed statement, or a prepared one's Bind/Execute) that may wait on a busy server behind the one running, in transaction mode; 0 = off; pgmux's own"),
};

}  // namespace

std::span<const Setting> settings() { return kSettings; }

const Setting* findSetting(std::string_view name) {
  for (const Setting& s : kSettings) {
    if (detail::equalsIgnoreCase(name, s.name)) return &s;
  }
  return nullptr;
}

}  // namespace pgmux::config
