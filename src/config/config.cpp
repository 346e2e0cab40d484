// Loading pgbouncer.ini into a Config: inih walks the sections and keys, fed by a line reader
// (line_reader.cpp) that knows the file and line of every key and follows %include.
#include "pgmux/config/config.h"

#include <ini.h>

#include <limits>
#include <utility>

#include "line_reader.h"
#include "pgmux/config/settings.h"
#include "values.h"

namespace pgmux::config {

namespace {

using detail::invalidValue;

// PgBouncer keys pgmux does not implement; naming them apart from typos helps people migrating.
constexpr const char* kIgnoredPgBouncerKeys[] = {
    "syslog_ident",
    "syslog_facility",
    "dns_max_ttl",
    "dns_nxdomain_ttl",
    "dns_zone_check_period",
    "resolv_conf",
    "client_tls_dheparams",
    "client_tls_ecdhcurve",
    "client_tls13_ciphers",
    "server_tls13_ciphers",
    "peer_id",
    "auth_ldap_options",
    "service_name",
    "conffile",
    "job_name",
};

// Keys PgBouncer knows in [databases] that pgmux reads past with a warning.
constexpr const char* kIgnoredDatabaseKeys[] = {"auth_query", "auth_dbname", "load_balance_hosts"};

// Splits `key=value key2='quoted value'` as libpq reads a connection string: spaces around '='
// are allowed, a single-quoted value may hold spaces, '' or \' is a quote and \\ a backslash.
struct Pair {
  std::string key;
  std::string value;
};

bool splitPairs(std::string_view text, std::vector<Pair>& out, std::string& error) {
  size_t i = 0;
  const auto skipSpace = [&] {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
  };
  while (true) {
    skipSpace();
    if (i >= text.size()) return true;
    const size_t keyStart = i;
    while (i < text.size() && text[i] != '=' && text[i] != ' ' && text[i] != '\t') ++i;
    Pair pair;
    pair.key = detail::toLower(text.substr(keyStart, i - keyStart));
    skipSpace();
    if (i >= text.size() || text[i] != '=') {
      error = "expected key=value, got '" + std::string(text.substr(keyStart)) + "'";
      return false;
    }
    ++i;
    skipSpace();
    if (i < text.size() && text[i] == '\'') {
      ++i;
      bool closed = false;
      while (i < text.size()) {
        const char c = text[i++];
        if (c == '\'') {
          if (i < text.size() && text[i] == '\'') {
            pair.value += '\'';
            ++i;
            continue;
          }
          closed = true;
          break;
        }
        if (c == '\\' && i < text.size()) {
          pair.value += text[i++];
          continue;
        }
        pair.value += c;
      }
      if (!closed) {
        error = "unterminated quoted value for " + pair.key;
        return false;
      }
    } else {
      while (i < text.size() && text[i] != ' ' && text[i] != '\t') pair.value += text[i++];
    }
    if (pair.key.empty()) {
      error = "missing key before '='";
      return false;
    }
    out.push_back(std::move(pair));
  }
}

// `"my db"` names an entry with characters a bare name cannot hold; "" is a quote inside.
bool unquoteName(std::string_view raw, std::string& out, std::string& error) {
  if (raw.empty() || raw.front() != '"') {
    out = std::string(raw);
    return true;
  }
  out.clear();
  for (size_t i = 1; i < raw.size(); ++i) {
    if (raw[i] == '"') {
      if (i + 1 < raw.size() && raw[i + 1] == '"') {
        out += '"';
        ++i;
        continue;
      }
      if (i + 1 != raw.size()) break;
      return true;
    }
    out += raw[i];
  }
  error = "badly quoted name " + std::string(raw);
  return false;
}

// Typed readers for entry keys: they share the parsers of the main section, and say what went
// wrong in the same words.
class EntryValue {
 public:
  EntryValue(const Pair& pair, std::string& error) : pair_(pair), error_(error) {}

  bool integer(int64_t min, int64_t max, int& out) {
    int64_t v = 0;
    std::string expected;
    if (!detail::parseInteger(pair_.value, min, max, v, expected)) return fail(expected);
    out = static_cast<int>(v);
    return true;
  }
  bool count(std::optional<int>& out) {
    int v = 0;
    if (!integer(0, std::numeric_limits<int>::max(), v)) return false;
    out = v;
    return true;
  }
  bool seconds(std::optional<double>& out) {
    double v = 0;
    std::string expected;
    if (!detail::parseSeconds(pair_.value, v, expected)) return fail(expected);
    out = v;
    return true;
  }
  bool poolMode(std::optional<PoolMode>& out) {
    PoolMode v = PoolMode::Session;
    std::string expected;
    if (!detail::parsePoolMode(pair_.value, v, expected)) return fail(expected);
    out = v;
    return true;
  }

 private:
  bool fail(const std::string& expected) {
    error_ = invalidValue(pair_.key, pair_.value, expected);
    return false;
  }
  const Pair& pair_;
  std::string& error_;
};

enum class KeyResult : uint8_t { Ok, Invalid, Ignored, Unknown };

KeyResult applyDatabaseKey(DatabaseEntry& db, const Pair& p, std::string& error) {
  EntryValue v(p, error);
  const std::string& k = p.key;
  bool ok = true;
  if (k == "dbname") {
    db.dbname = p.value;
  } else if (k == "host") {
    db.host = p.value;
  } else if (k == "port") {
    ok = v.integer(1, 65535, db.port);
  } else if (k == "user") {
    db.user = p.value;
  } else if (k == "password") {
    db.password = p.value;
  } else if (k == "auth_user") {
    db.authUser = p.value;
  } else if (k == "pool_size") {
    ok = v.count(db.poolSize);
  } else if (k == "min_pool_size") {
    ok = v.count(db.minPoolSize);
  } else if (k == "reserve_pool_size" || k == "reserve_pool") {  // the old name still works
    ok = v.count(db.reservePoolSize);
  } else if (k == "connect_query") {
    db.connectQuery = p.value;
  } else if (k == "pool_mode") {
    ok = v.poolMode(db.poolMode);
  } else if (k == "max_db_connections") {
    ok = v.count(db.maxDbConnections);
  } else if (k == "max_db_client_connections") {
    ok = v.count(db.maxDbClientConnections);
  } else if (k == "server_lifetime") {
    ok = v.seconds(db.serverLifetime);
  } else if (k == "query_wait_timeout") {
    ok = v.seconds(db.queryWaitTimeout);
  } else if (k == "client_encoding") {
    db.clientEncoding = p.value;
  } else if (k == "datestyle") {
    db.datestyle = p.value;
  } else if (k == "timezone") {
    db.timezone = p.value;
  } else if (k == "application_name") {
    db.applicationName = p.value;
  } else {
    for (const char* ignored : kIgnoredDatabaseKeys) {
      if (k == ignored) return KeyResult::Ignored;
    }
    return KeyResult::Unknown;
  }
  return ok ? KeyResult::Ok : KeyResult::Invalid;
}

KeyResult applyUserKey(UserEntry& user, const Pair& p, std::string& error) {
  EntryValue v(p, error);
  const std::string& k = p.key;
  bool ok = true;
  if (k == "pool_mode") {
    ok = v.poolMode(user.poolMode);
  } else if (k == "pool_size") {
    ok = v.count(user.poolSize);
  } else if (k == "reserve_pool_size") {
    ok = v.count(user.reservePoolSize);
  } else if (k == "max_user_connections") {
    ok = v.count(user.maxUserConnections);
  } else if (k == "max_user_client_connections") {
    ok = v.count(user.maxUserClientConnections);
  } else if (k == "query_timeout") {
    ok = v.seconds(user.queryTimeout);
  } else if (k == "query_wait_timeout") {
    ok = v.seconds(user.queryWaitTimeout);
  } else if (k == "idle_transaction_timeout") {
    ok = v.seconds(user.idleTransactionTimeout);
  } else if (k == "transaction_timeout") {
    ok = v.seconds(user.transactionTimeout);
  } else if (k == "client_idle_timeout") {
    ok = v.seconds(user.clientIdleTimeout);
  } else {
    return KeyResult::Unknown;
  }
  return ok ? KeyResult::Ok : KeyResult::Invalid;
}

// The state inih's handler works on. Errors are kept, not thrown: an exception must not unwind
// through inih's C frames, so the handler records the first error and the reader stops the parse.
class Loader {
 public:
  Loader(Config& cfg, LineReader& reader) : cfg_(cfg), reader_(reader) {}

  void run() {
    const int rc = ini_parse_stream(&LineReader::read, &reader_, &Loader::handle, this);
    if (reader_.failed()) throw ConfigError(reader_.error());
    // The reader hands inih only lines it has checked, so inih has nothing left to refuse.
    if (rc != 0) throw ConfigError(reader_.where() + ": syntax error");
  }

 private:
  static int handle(void* user, const char* section, const char* name, const char* value) {
    auto* self = static_cast<Loader*>(user);
    try {
      std::string_view key = name;
      std::string_view val = value;
      std::string stashedKey;
      std::string stashedValue;
      if (self->reader_.takeStashed(stashedKey, stashedValue)) {
        key = stashedKey;
        val = stashedValue;
      }
      std::string error;
      if (!self->apply(section, key, val, error)) {
        self->reader_.fail(self->reader_.where() + ": " + error);
        return 0;
      }
      return 1;
    } catch (const std::exception& e) {
      self->reader_.fail(self->reader_.where() + ": " + e.what());
      return 0;
    } catch (...) {
      self->reader_.fail(self->reader_.where() + ": unexpected error");
      return 0;
    }
  }

  bool apply(std::string_view section, std::string_view key, std::string_view value,
             std::string& error) {
    if (section.empty()) {
      error = "parameter " + std::string(key) + " is outside of any section";
      return false;
    }
    if (detail::equalsIgnoreCase(section, "databases")) return applyDatabase(key, value, error);
    if (detail::equalsIgnoreCase(section, "users")) return applyUser(key, value, error);
    if (detail::equalsIgnoreCase(section, "pgbouncer") ||
        detail::equalsIgnoreCase(section, "pgmux")) {
      return applySetting(section, key, value, error);
    }
    return true;  // the reader has already warned about the section
  }

  bool applySetting(std::string_view section, std::string_view key, std::string_view value,
                    std::string& error) {
    if (const Setting* s = findSetting(key)) return s->apply(cfg_, value, error);
    const std::string lower = detail::toLower(key);
    for (const char* ignored : kIgnoredPgBouncerKeys) {
      if (lower == ignored) {
        warn("parameter not supported by pgmux, ignored: " + std::string(section) + "/" +
             std::string(key));
        return true;
      }
    }
    warn("unknown parameter: " + std::string(section) + "/" + std::string(key));
    return true;
  }

  bool applyDatabase(std::string_view rawName, std::string_view value, std::string& error) {
    DatabaseEntry db;
    std::string why;
    if (!unquoteName(rawName, db.name, why)) {
      error = "[databases] " + why;
      return false;
    }
    db.line = reader_.line();
    const std::string prefix = "[databases] " + db.name + ": ";
    std::vector<Pair> pairs;
    if (!splitPairs(value, pairs, why)) {
      error = prefix + why;
      return false;
    }
    for (const Pair& p : pairs) {
      switch (applyDatabaseKey(db, p, why)) {
        case KeyResult::Ok:
          break;
        case KeyResult::Invalid:
          error = prefix + why;
          return false;
        case KeyResult::Ignored:
          warn(prefix + "key '" + p.key + "' is not supported by pgmux, ignored");
          break;
        case KeyResult::Unknown:
          error = prefix + "unknown key '" + p.key + "'";
          return false;
      }
    }
    replaceOrAdd(cfg_.databases, std::move(db), "database");
    return true;
  }

  bool applyUser(std::string_view rawName, std::string_view value, std::string& error) {
    UserEntry user;
    std::string why;
    if (!unquoteName(rawName, user.name, why)) {
      error = "[users] " + why;
      return false;
    }
    user.line = reader_.line();
    const std::string prefix = "[users] " + user.name + ": ";
    std::vector<Pair> pairs;
    if (!splitPairs(value, pairs, why)) {
      error = prefix + why;
      return false;
    }
    for (const Pair& p : pairs) {
      switch (applyUserKey(user, p, why)) {
        case KeyResult::Ok:
        case KeyResult::Ignored:
          break;
        case KeyResult::Invalid:
          error = prefix + why;
          return false;
        case KeyResult::Unknown:
          error = prefix + "unknown key '" + p.key + "'";
          return false;
      }
    }
    replaceOrAdd(cfg_.users, std::move(user), "user");
    return true;
  }

  // A name given twice: the later line wins, as in PgBouncer, but it is worth a word.
  template <class Entry>
  void replaceOrAdd(std::vector<Entry>& entries, Entry entry, const char* what) {
    for (Entry& existing : entries) {
      if (existing.name == entry.name) {
        warn(std::string(what) + " " + entry.name + " is defined again, replacing line " +
             std::to_string(existing.line));
        existing = std::move(entry);
        return;
      }
    }
    entries.push_back(std::move(entry));
  }

  void warn(const std::string& message) {
    cfg_.warnings.push_back(reader_.where() + ": " + message);
  }

  Config& cfg_;
  LineReader& reader_;
};

std::shared_ptr<const Config> load(LineReader& reader, const std::string& path) {
  auto cfg = std::make_shared<Config>();
  cfg->path = path;
  reader.setWarnings(&cfg->warnings);
  Loader(*cfg, reader).run();
  return cfg;
}

template <class Entry>
const Entry* findEntry(const std::vector<Entry>& entries, std::string_view name) {
  const Entry* fallback = nullptr;
  for (const Entry& e : entries) {
    if (e.name == name) return &e;
    if (e.name == "*") fallback = &e;
  }
  return fallback;
}

}  // namespace

const DatabaseEntry* Config::findDatabase(std::string_view name) const {
  return findEntry(databases, name);
}

const UserEntry* Config::findUser(std::string_view name) const { return findEntry(users, name); }

std::shared_ptr<const Config> loadConfig(const std::string& path) {
  LineReader reader;
  std::string error;
  if (!reader.openFile(path, error)) throw ConfigError(error);
  return load(reader, path);
}

std::shared_ptr<const Config> parseConfig(std::string_view text, const std::string& origin) {
  LineReader reader;
  reader.openText(text, origin);
  return load(reader, origin);
}

}  // namespace pgmux::config
