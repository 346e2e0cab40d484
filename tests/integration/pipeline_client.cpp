// A libpq client that drives pipeline mode for the integration suite: batches of queries, each
// closed by one Sync, all sent before any result is read; exits 0 only if every result is right.
//
// usage: pipeline_client CONNINFO [--queries N] [--batches K] [--rounds R] [--error]
//   Each round sends K batches of N queries (each batch ends in PQpipelineSync), then reads them.
//   A batch starts and ends with SELECT pg_backend_pid(): one Sync is one implicit transaction,
//   so both must come from the same backend. With --error, batch 0 of each round divides by zero
//   halfway: the rest of that batch must come back PGRES_PIPELINE_ABORTED and later batches intact.
#include <libpq-fe.h>

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr int kExitOk = 0;
constexpr int kExitWrongResult = 1;
constexpr int kExitUsage = 2;

struct Options {
  std::string conninfo;
  int queries = 8;
  int batches = 1;
  int rounds = 1;
  bool injectError = false;
};

enum class QueryKind : uint8_t { BackendPid, Literal, Parameterised, DivisionByZero };

struct PlannedQuery {
  QueryKind kind;
  int value;          // the expected first column (Literal, Parameterised)
  std::string label;  // the expected second column (Literal, Parameterised)
};

struct ConnCloser {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct ResultClearer {
  void operator()(PGresult* res) const { PQclear(res); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnCloser>;
using ResultPtr = std::unique_ptr<PGresult, ResultClearer>;

bool parseInt(std::string_view text, int& out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end;
}

bool parseOptions(int argc, char** argv, Options& opts) {
  if (argc < 2) return false;
  opts.conninfo = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--error") {
      opts.injectError = true;
      continue;
    }
    if (i + 1 >= argc) return false;
    int* target = nullptr;
    if (arg == "--queries") target = &opts.queries;
    if (arg == "--batches") target = &opts.batches;
    if (arg == "--rounds") target = &opts.rounds;
    if (target == nullptr || !parseInt(argv[++i], *target)) return false;
  }
  // Two pid probes plus at least one literal and one parameterised query per batch.
  return opts.queries >= 4 && opts.batches >= 1 && opts.rounds >= 1;
}

std::vector<PlannedQuery> planBatch(const Options& opts, int round, int batch) {
  std::vector<PlannedQuery> plan;
  for (int q = 0; q < opts.queries; ++q) {
    const int value = round * 100000 + batch * 1000 + q;
    std::string label = "r" + std::to_string(round) + "b" + std::to_string(batch) + "q" +
                        std::to_string(q);
    QueryKind kind = (q % 2 == 1) ? QueryKind::Parameterised : QueryKind::Literal;
    if (q == 0 || q == opts.queries - 1) kind = QueryKind::BackendPid;
    if (opts.injectError && batch == 0 && q == opts.queries / 2) kind = QueryKind::DivisionByZero;
    plan.push_back(PlannedQuery{kind, value, std::move(label)});
  }
  return plan;
}

bool sendQuery(PGconn* conn, const PlannedQuery& query) {
  switch (query.kind) {
    case QueryKind::BackendPid:
      return PQsendQueryParams(conn, "SELECT pg_backend_pid()", 0, nullptr, nullptr, nullptr,
                               nullptr, 0) == 1;
    case QueryKind::Literal: {
      const std::string text =
          "SELECT " + std::to_string(query.value) + ", '" + query.label + "'";
      return PQsendQueryParams(conn, text.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
    }
    case QueryKind::Parameterised: {
      const std::string before = std::to_string(query.value - 1);
      const char* params[2] = {before.c_str(), query.label.c_str()};
      return PQsendQueryParams(conn, "SELECT $1::int4 + 1, $2::text", 2, nullptr, params,
                               nullptr, nullptr, 0) == 1;
    }
    case QueryKind::DivisionByZero:
      return PQsendQueryParams(conn, "SELECT 1/0", 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
  }
  return false;
}

// Reads one query's result and the NULL that ends it. On success `shown` describes it.
bool readQueryResult(PGconn* conn, const PlannedQuery& query, bool aborted, std::string& pid,
                     std::string& shown) {
  ResultPtr res(PQgetResult(conn));
  if (!res) {
    shown = "no result: " + std::string(PQerrorMessage(conn));
    return false;
  }
  const ExecStatusType status = PQresultStatus(res.get());
  bool ok = false;
  if (aborted) {
    ok = status == PGRES_PIPELINE_ABORTED;
    shown = ok ? "aborted" : std::string("expected PGRES_PIPELINE_ABORTED, got ") +
                                 PQresStatus(status);
  } else if (query.kind == QueryKind::DivisionByZero) {
    const char* sqlstate = PQresultErrorField(res.get(), PG_DIAG_SQLSTATE);
    ok = status == PGRES_FATAL_ERROR && sqlstate != nullptr && std::strcmp(sqlstate, "22012") == 0;
    shown = std::string("error ") + (sqlstate != nullptr ? sqlstate : "(no SQLSTATE)");
  } else if (status != PGRES_TUPLES_OK || PQntuples(res.get()) != 1) {
    shown = std::string("unexpected ") + PQresStatus(status) + ": " +
            PQresultErrorMessage(res.get());
  } else if (query.kind == QueryKind::BackendPid) {
    const std::string got = PQgetvalue(res.get(), 0, 0);
    ok = pid.empty() || got == pid;
    shown = "backend " + got + (ok ? "" : " (batch began on backend " + pid + ")");
    pid = got;
  } else {
    const std::string first = PQgetvalue(res.get(), 0, 0);
    const std::string second = PQnfields(res.get()) == 2 ? PQgetvalue(res.get(), 0, 1) : "";
    ok = first == std::to_string(query.value) && second == query.label;
    shown = first + " " + second;
    if (!ok) shown += " (expected " + std::to_string(query.value) + " " + query.label + ")";
  }
  ResultPtr end(PQgetResult(conn));
  if (end) {
    shown += std::string("; then an extra ") + PQresStatus(PQresultStatus(end.get()));
    return false;
  }
  return ok;
}

bool readSync(PGconn* conn, std::string& shown) {
  ResultPtr res(PQgetResult(conn));
  if (!res) {
    shown = "no sync result: " + std::string(PQerrorMessage(conn));
    return false;
  }
  shown = PQresStatus(PQresultStatus(res.get()));
  return PQresultStatus(res.get()) == PGRES_PIPELINE_SYNC;
}

bool runRound(PGconn* conn, const Options& opts, int round) {
  std::vector<std::vector<PlannedQuery>> plans;
  for (int batch = 0; batch < opts.batches; ++batch) {
    plans.push_back(planBatch(opts, round, batch));
    for (const PlannedQuery& query : plans.back()) {
      if (!sendQuery(conn, query)) {
        std::fprintf(stderr, "send failed: %s", PQerrorMessage(conn));
        return false;
      }
    }
    if (PQpipelineSync(conn) != 1) {
      std::fprintf(stderr, "PQpipelineSync failed: %s", PQerrorMessage(conn));
      return false;
    }
  }
  for (int batch = 0; batch < opts.batches; ++batch) {
    bool aborted = false;
    std::string pid;
    const auto& plan = plans[static_cast<size_t>(batch)];
    for (size_t q = 0; q < plan.size(); ++q) {
      std::string shown;
      const bool ok = readQueryResult(conn, plan[q], aborted, pid, shown);
      std::printf("round %d batch %d query %zu: %s%s\n", round, batch, q, shown.c_str(),
                  ok ? "" : "  <-- WRONG");
      if (!ok) return false;  // the stream is out of step: later results mean nothing
      if (plan[q].kind == QueryKind::DivisionByZero) aborted = true;
    }
    std::string shown;
    const bool ok = readSync(conn, shown);
    std::printf("round %d batch %d sync: %s%s\n", round, batch, shown.c_str(),
                ok ? "" : "  <-- WRONG");
    if (!ok) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  if (!parseOptions(argc, argv, opts)) {
    std::fprintf(stderr,
                 "usage: %s CONNINFO [--queries N>=4] [--batches K] [--rounds R] [--error]\n",
                 argv[0]);
    return kExitUsage;
  }
  ConnPtr conn(PQconnectdb(opts.conninfo.c_str()));
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    std::fprintf(stderr, "connection failed: %s", PQerrorMessage(conn.get()));
    return kExitUsage;
  }
  if (PQenterPipelineMode(conn.get()) != 1) {
    std::fprintf(stderr, "PQenterPipelineMode failed: %s", PQerrorMessage(conn.get()));
    return kExitUsage;
  }
  for (int round = 0; round < opts.rounds; ++round) {
    if (!runRound(conn.get(), opts, round)) return kExitWrongResult;
  }
  if (PQexitPipelineMode(conn.get()) != 1) {
    std::fprintf(stderr, "PQexitPipelineMode failed: %s", PQerrorMessage(conn.get()));
    return kExitWrongResult;
  }
  // Outside pipeline mode the connection must still answer an ordinary query.
  ResultPtr done(PQexec(conn.get(), "SELECT 'done'"));
  if (PQresultStatus(done.get()) != PGRES_TUPLES_OK ||
      std::strcmp(PQgetvalue(done.get(), 0, 0), "done") != 0) {
    std::fprintf(stderr, "query after pipeline mode failed: %s", PQerrorMessage(conn.get()));
    return kExitWrongResult;
  }
  std::printf("all results correct\n");
  return kExitOk;
}
