// ReplyQueue driven with the sequences a server really answers: replies to pgmux's own messages
// swallowed or rewritten, an ErrorResponse that skips to Sync undoing what the skipped messages
// did to the statement maps, refusals answered with the client's error, and replies the server
// does not owe reported as a desync. The test does to the maps what ClientConn does when it
// sends each message (client_statements.cpp), then feeds the replies. What a server has is
// two views: the LRU pgmux rewrites by, and the set its replies confirmed; after an error the LRU
// is rebuilt as the confirmed set plus what is still in flight.
#include "pgmux/pool/reply_queue.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "pgmux/proto/extended.h"
#include "pgmux/proto/messages.h"

using namespace pgmux;
using namespace pgmux::pool;
using namespace std::string_literals;

namespace {

std::span<const uint8_t> spanOf(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string def(const std::string& query) { return query + "\0\0\0"s; }

// A CommandComplete body: its tag and NUL.
std::string tag(const std::string& t) { return t + '\0'; }

// The body of an ErrorResponse (what FrameScanner captures).
std::string errorBody(const char* sqlstate, const std::string& message) {
  std::string msg;
  proto::encodeErrorResponse(msg, "ERROR", sqlstate, message);
  return msg.substr(proto::kFrameHeaderSize);
}

struct Session {
  // Declared first: destroyed after everything holding its statements.
  StatementRegistry registry;
  ServerStatements server;
  ClientStatements client;
  ReplyQueue q;
  StatementScope scope{server, &client, registry};
  std::string replacement;
  size_t limit = 200;

  // The client's Parse of a named statement the server lacks.
  StatementRef parse(const std::string& name, const std::string& query) {
    StatementRef s = registry.intern(def(query));
    client.set(name, s);
    std::vector<StatementRef> evicted;
    server.add(s, limit, evicted);
    for (auto& e : evicted) q.push(Expected(Expect::InjectedClose, std::move(e)), scope);
    q.push(Expected(Expect::Parse, s, name), scope);
    return s;
  }
  // The client's Parse of a statement the server has: the same Parse of the unnamed statement
  // goes instead, or (viaClose, while the client's own unnamed statement is in use) a Close of
  // PGMUX_ABSENT.
  void parseStandIn(const std::string& name, const StatementRef& s, bool viaClose = false) {
    client.set(name, s);
    REQUIRE(server.touch(s.get()));
    Expected e(Expect::ParseStandIn, s, name);
    e.viaClose = viaClose;
    q.push(std::move(e), scope);
  }
  void unnamedParse() { q.push(Expected(Expect::Parse), scope); }
  // pgmux's Parse ahead of a Bind or Describe on a server that lacks the statement.
  void inject(const StatementRef& s) {
    std::vector<StatementRef> evicted;
    server.add(s, limit, evicted);
    for (auto& e : evicted) q.push(Expected(Expect::InjectedClose, std::move(e)), scope);
    q.push(Expected(Expect::InjectedParse, s), scope);
  }
  void bind(const StatementRef& s = {}) { q.push(Expected(Expect::Bind, s), scope); }
  // deallocates: the portal was bound from a DEALLOCATE stand-in (ClientConn marks its Execute).
  void execute(bool deallocates = false) {
    Expected e(Expect::Execute);
    e.deallocates = deallocates;
    q.push(std::move(e), scope);
  }
  void describe(const StatementRef& s = {}) { q.push(Expected(Expect::Describe, s), scope); }
  void close(const std::string& name) {
    StatementRef old = client.take(name);
    q.push(Expected(Expect::Close, std::move(old), name), scope);
  }
  // pgmux's Close of a statement evicted from the server.
  void injectedClose(const StatementRef& s) {
    server.remove(s.get());
    q.push(Expected(Expect::InjectedClose, s), scope);
  }
  void refused(const char* sqlstate, const std::string& message) {
    Expected e(Expect::Refused);
    proto::encodeErrorResponse(e.reply, "ERROR", sqlstate, message);
    q.push(std::move(e), scope);
  }
  // deallocates: an empty query standing in for the client's DEALLOCATE of one of its names
  // (the name already taken out of the client's map, as ClientConn does).
  void query(bool deallocates = false) {
    Expected e(Expect::Query);
    e.deallocates = deallocates;
    q.push(std::move(e), scope);
  }
  // An unnamed Parse of an empty query standing in for the client's DEALLOCATE `name`.
  void deallocateParse(const std::string& name) {
    StatementRef old = client.take(name);
    REQUIRE(old);
    Expected e(Expect::Parse, std::move(old), name);
    e.deallocates = true;
    q.push(std::move(e), scope);
  }
  void sync() { q.push(Expected(Expect::Sync), scope); }

  ReplyAction reply(char type, const std::string& body = {}, bool captured = true) {
    replacement.clear();
    return q.onMessage(type, spanOf(body), captured, scope, replacement);
  }
  ReplyAction error(const char* sqlstate, const std::string& message) {
    return reply('E', errorBody(sqlstate, message));
  }
  const Statement* named(const std::string& name) const {
    const StatementRef* s = client.find(name);
    return s == nullptr ? nullptr : s->get();
  }
};

using A = ReplyAction;

}  // namespace

TEST_CASE("a client's Parse and Sync: ParseComplete and ReadyForQuery go to the client", "[pool][replies]") {
  Session t;
  t.unnamedParse();
  t.sync();
  CHECK(t.q.size() == 2);
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.q.empty());

  StatementRef s = t.parse("s1", "select 1");
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.q.empty());
  CHECK(t.named("s1") == s.get());
  CHECK(t.server.has(s.get()));
}

TEST_CASE("an empty queue forwards whatever comes", "[pool][replies]") {
  Session t;
  CHECK(t.q.empty());
  for (char type : {'1', '2', '3', 'Z', 'N', 'S', 'T', 'n', 'D', 'C', 'I'}) CHECK(t.reply(type) == A::Forward);
  CHECK(t.q.empty());
}

TEST_CASE("an error with nothing owed and no Sync sent skips until a Sync", "[pool][replies]") {
  Session t;
  CHECK(t.error("22012", "division by zero") == A::Forward);
  CHECK_FALSE(t.q.empty());
  // The server discards what comes until a Sync: a Parse sent now is undone at once.
  StatementRef s = t.parse("s", "select 1");
  CHECK(t.named("s") == nullptr);
  CHECK_FALSE(t.server.has(s.get()));
  CHECK(t.q.size() == 0);
  t.sync();
  CHECK(t.q.size() == 1);
  CHECK(t.reply('Z', "E") == A::Forward);
  CHECK(t.q.empty());
}

TEST_CASE("an injected Parse: its ParseComplete is swallowed, the Bind's reply forwarded", "[pool][replies]") {
  Session t;
  StatementRef s = t.registry.intern(def("select $1"));
  t.inject(s);
  t.bind(s);
  t.execute();
  t.sync();
  CHECK(t.reply('1') == A::Swallow);
  CHECK(t.reply('2') == A::Forward);
  CHECK(t.reply('D') == A::Forward);
  CHECK(t.q.size() == 2);  // rows do not end the Execute
  CHECK(t.reply('C') == A::Forward);
  CHECK(t.q.size() == 1);
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.q.empty());
  CHECK(t.server.has(s.get()));
}

TEST_CASE("a Parse stand-in (an unnamed Parse): its ParseComplete goes to the client", "[pool][replies]") {
  Session t;
  StatementRef s = t.parse("first", "select 1");
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);

  t.parseStandIn("second", s);
  t.sync();
  CHECK(t.reply('3') == A::Desync);  // a CloseComplete is owed by the stand-in sent as a Close only
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.replacement.empty());
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.q.empty());
  CHECK(t.named("second") == s.get());
  CHECK(t.server.has(s.get()));

  // Refused by the server (in a failed transaction: 25P02): the name is not the client's.
  t.parseStandIn("third", s);
  t.sync();
  CHECK(t.error("25P02", "current transaction is aborted, commands ignored until end of transaction block") ==
        A::Forward);
  CHECK(t.named("third") == nullptr);
  CHECK(t.named("second") == s.get());
  CHECK(t.server.has(s.get()));  // the server still has it under its own name
  CHECK(t.reply('Z', "E") == A::Forward);
}

// While the client's own unnamed statement is in use, the stand-in is a Close of PGMUX_ABSENT:
// its CloseComplete is the client's ParseComplete, and a ParseComplete is not owed.
TEST_CASE("a Parse stand-in via Close: its CloseComplete becomes ParseComplete", "[pool][replies]") {
  Session t;
  StatementRef s = t.parse("first", "select 1");
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);
  std::string parseComplete;
  proto::encodeParseComplete(parseComplete);

  t.unnamedParse();  // the client's own
  t.parseStandIn("second", s, true);
  t.bind();
  t.execute();
  t.sync();
  CHECK(t.reply('1') == A::Forward);  // the client's unnamed Parse
  CHECK(t.q.describe() == "ParseStandIn Bind Execute Sync");

  SECTION("CloseComplete is replaced") {
    CHECK(t.reply('3') == A::Replace);
    CHECK(t.replacement == parseComplete);
    CHECK(t.reply('2') == A::Forward);
    CHECK(t.reply('C', tag("SELECT 1")) == A::Forward);
    CHECK(t.reply('Z', "I") == A::Forward);
    CHECK(t.q.empty());
    CHECK(t.named("second") == s.get());
    CHECK(t.server.has(s.get()));
  }
  SECTION("a ParseComplete is not owed") {
    CHECK(t.reply('1') == A::Desync);
    CHECK(t.replacement.empty());
    CHECK(t.q.size() == 4);  // nothing popped
  }
  SECTION("an error (the Close skipped after an earlier failure): the name is not the client's") {
    CHECK(t.error("25P02", "current transaction is aborted, commands ignored until end of transaction block") ==
          A::Forward);
    CHECK(t.named("second") == nullptr);
    CHECK(t.named("first") == s.get());
    CHECK(t.server.has(s.get()));
    CHECK(t.reply('Z', "E") == A::Forward);
    CHECK(t.q.empty());
  }
}

TEST_CASE("the client's Close is forwarded, pgmux's own Close swallowed", "[pool][replies]") {
  Session t;
  StatementRef s = t.parse("s1", "select 1");
  StatementRef other = t.parse("s2", "select 2");
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);

  t.close("s1");
  t.injectedClose(other);
  t.close("never_existed");  // PostgreSQL answers a Close of nothing with CloseComplete too
  t.sync();
  CHECK(t.reply('3') == A::Forward);
  CHECK(t.reply('3') == A::Swallow);
  CHECK(t.reply('3') == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.q.empty());
  CHECK(t.named("s1") == nullptr);
  CHECK_FALSE(t.server.has(other.get()));
}

TEST_CASE("Describe: ParameterDescription, then RowDescription or NoData ends it", "[pool][replies]") {
  Session t;
  StatementRef s = t.parse("s1", "select $1");
  t.describe(s);
  t.describe(s);
  t.describe();  // a portal: no ParameterDescription
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('t') == A::Forward);
  CHECK(t.q.size() == 4);  // still owed its row description
  CHECK(t.reply('T') == A::Forward);
  CHECK(t.q.size() == 3);
  CHECK(t.reply('t') == A::Forward);
  CHECK(t.reply('n') == A::Forward);
  CHECK(t.reply('T') == A::Forward);
  CHECK(t.q.size() == 1);
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.q.empty());
}

TEST_CASE("Execute: rows, then CommandComplete, EmptyQueryResponse or PortalSuspended ends it",
          "[pool][replies]") {
  Session t;
  StatementRef s = t.parse("s", "select generate_series(1, 3)");
  t.bind(s);
  t.describe();
  t.execute();
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('2') == A::Forward);
  CHECK(t.reply('T') == A::Forward);
  CHECK(t.q.size() == 2);
  CHECK(t.q.describe() == "Execute Sync");

  SECTION("CommandComplete") {
    for (int i = 0; i < 3; ++i) CHECK(t.reply('D') == A::Forward);
    CHECK(t.reply('N') == A::Forward);  // a notice mid-result changes nothing
    CHECK(t.q.size() == 2);
    CHECK(t.reply('C', tag("SELECT 3")) == A::Forward);
  }
  SECTION("EmptyQueryResponse") {
    CHECK(t.reply('I') == A::Forward);
  }
  SECTION("PortalSuspended (a row limit), then the portal run again to its end") {
    CHECK(t.reply('D') == A::Forward);
    CHECK(t.reply('s') == A::Forward);
    CHECK(t.q.size() == 1);
    CHECK(t.q.describe() == "Sync");
    CHECK(t.reply('Z', "T") == A::Forward);
    // In a transaction block the portal lives on: the client executes it again.
    t.execute();
    t.sync();
    CHECK(t.reply('D') == A::Forward);
    CHECK(t.reply('D') == A::Forward);
    CHECK(t.reply('C', tag("SELECT 2")) == A::Forward);
  }
  CHECK(t.replacement.empty());
  CHECK(t.q.size() == 1);  // only the Sync is owed
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.q.empty());
}

TEST_CASE("Executes in a row each end at their own CommandComplete", "[pool][replies]") {
  Session t;
  StatementRef a = t.parse("a", "insert into t values ($1)");
  t.bind(a);
  t.execute();
  t.bind(a);
  t.execute();
  t.sync();
  CHECK(t.q.describe() == "Parse Bind Execute Bind Execute Sync");
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('2') == A::Forward);
  CHECK(t.reply('C', tag("INSERT 0 1")) == A::Forward);
  CHECK(t.q.describe() == "Bind Execute Sync");
  CHECK(t.reply('2') == A::Forward);
  CHECK(t.reply('C', tag("INSERT 0 1")) == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.q.empty());
}

TEST_CASE("rows then an error in an Execute: its own error, the batch skipped to Sync", "[pool][replies]") {
  Session t;
  StatementRef s = t.parse("s", "select 1 / (3 - generate_series(1, 5))");
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);

  StatementRef next = t.registry.intern(def("select 'next'"));
  t.bind(s);
  t.execute();
  t.inject(next);  // the next Bind's statement, which the server lacks
  t.bind(next);
  t.execute();
  StatementRef later = t.parse("later", "select 'later'");
  t.sync();
  CHECK(t.server.has(next.get()));
  CHECK(t.named("later") == later.get());
  CHECK(t.reply('2') == A::Forward);
  CHECK(t.reply('D') == A::Forward);
  CHECK(t.reply('D') == A::Forward);
  CHECK(t.error("22012", "division by zero") == A::Forward);
  CHECK(t.replacement.empty());
  CHECK(t.q.size() == 1);  // everything skipped up to the Sync
  CHECK(t.q.describe() == "Sync");
  CHECK_FALSE(s->retired());
  CHECK_FALSE(next->retired());
  CHECK(t.named("s") == s.get());          // the Execute's statement is untouched
  CHECK(t.server.has(s.get()));
  CHECK_FALSE(t.server.has(next.get()));   // the skipped injected Parse prepared nothing
  CHECK(t.named("later") == nullptr);      // nor did the skipped Parse
  CHECK_FALSE(t.server.has(later.get()));
  CHECK(t.reply('Z', "E") == A::Forward);
  CHECK(t.q.empty());
}

TEST_CASE("an Execute's error with no Sync sent (a Flush): later messages undone until a Sync", "[pool][replies]") {
  Session t;
  t.unnamedParse();
  t.bind();
  t.execute();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('2') == A::Forward);
  CHECK(t.error("22012", "division by zero") == A::Forward);
  CHECK(t.q.size() == 0);
  CHECK_FALSE(t.q.empty());  // skipping
  CHECK(t.q.describe() == "(skipping to Sync)");
  StatementRef late = t.parse("late", "select 'late'");
  t.execute();
  CHECK(t.q.size() == 0);
  CHECK(t.named("late") == nullptr);
  CHECK_FALSE(t.server.has(late.get()));
  t.sync();
  CHECK(t.reply('Z', "E") == A::Forward);
  CHECK(t.q.empty());
}

TEST_CASE("a simple Query: everything up to ReadyForQuery, an error inside skips nothing", "[pool][replies]") {
  Session t;
  t.query();
  StatementRef s = t.parse("after", "select 2");
  t.sync();
  CHECK(t.reply('T') == A::Forward);
  CHECK(t.reply('D') == A::Forward);
  CHECK(t.reply('C') == A::Forward);
  CHECK(t.reply('E', errorBody("22012", "division by zero")) == A::Forward);
  CHECK(t.reply('N') == A::Forward);
  CHECK(t.q.size() == 3);  // the error was the Query's own: the Parse after it stands
  CHECK(t.named("after") == s.get());
  CHECK(t.server.has(s.get()));
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.q.empty());
}

TEST_CASE("CommandComplete DISCARD ALL or DEALLOCATE ALL clears the maps", "[pool][replies]") {
  Session t;
  StatementRef a = t.parse("a", "select 1");
  StatementRef b = t.parse("b", "select 2");
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);
  REQUIRE(t.server.size() == 2);
  REQUIRE(t.client.size() == 2);
  const auto cleared = [&] { return t.server.size() == 0 && t.client.size() == 0; };
  const auto intact = [&] { return t.server.size() == 2 && t.client.size() == 2 && t.named("a") == a.get(); };

  SECTION("DISCARD ALL by simple query") {
    t.query();
    CHECK(t.reply('C', tag("DISCARD ALL")) == A::Forward);
    CHECK(cleared());
    CHECK(t.reply('Z', "I") == A::Forward);
    CHECK(t.q.empty());
    a.reset();
    b.reset();
    CHECK(t.registry.size() == 0);
  }
  SECTION("DEALLOCATE ALL by extended query (psycopg after a rollback)") {
    t.unnamedParse();
    t.bind();
    t.execute();
    t.sync();
    CHECK(t.reply('1') == A::Forward);
    CHECK(t.reply('2') == A::Forward);
    CHECK(intact());
    CHECK(t.reply('C', tag("DEALLOCATE ALL")) == A::Forward);
    CHECK(cleared());
    CHECK(t.reply('Z', "I") == A::Forward);
    CHECK(t.q.empty());
  }
  SECTION("it fails (DISCARD ALL inside a transaction block): no CommandComplete, nothing cleared") {
    t.query();
    CHECK(t.reply('E', errorBody("25001", "DISCARD ALL cannot run inside a transaction block")) == A::Forward);
    CHECK(t.reply('Z', "E") == A::Forward);
    CHECK(intact());
  }
  SECTION("other commands clear nothing") {
    t.query();
    for (const char* other :
         {"DISCARD PLANS", "DISCARD", "DEALLOCATE", "SELECT 1", "DISCARD ALL X", "DEALLOCATE ALLX", "discard all"}) {
      INFO(other);
      CHECK(t.reply('C', tag(other)) == A::Forward);
      CHECK(intact());
    }
    // The tag without its NUL, and a tag that was not captured, are not trusted.
    CHECK(t.reply('C', "DISCARD ALL") == A::Forward);
    CHECK(intact());
    CHECK(t.reply('C', tag("DISCARD ALL"), false) == A::Forward);
    CHECK(intact());
    CHECK(t.reply('Z', "I") == A::Forward);
  }
  SECTION("the client is gone by then: the server's set is still cleared") {
    t.query();
    StatementScope noClient{t.server, nullptr, t.registry};
    std::string repl;
    const std::string body = tag("DISCARD ALL");
    CHECK(t.q.onMessage('C', spanOf(body), true, noClient, repl) == A::Forward);
    CHECK(t.server.size() == 0);
    CHECK(t.client.size() == 2);  // not reachable through the scope
  }
  SECTION("with nothing owed") {
    t.sync();
    CHECK(t.reply('Z', "I") == A::Forward);
    REQUIRE(t.q.empty());
    CHECK(t.reply('C', tag("DEALLOCATE ALL")) == A::Forward);
    CHECK(cleared());
  }
}

// psycopg in pipeline mode sends its DEALLOCATE ALL (an unnamed Parse) after a rollback with its
// next prepared statement behind it: what was sent after the DEALLOCATE stands.
TEST_CASE("a Parse pipelined behind DEALLOCATE ALL survives its CommandComplete", "[pool][replies]") {
  Session t;
  t.unnamedParse();  // DEALLOCATE ALL
  t.bind();
  t.execute();
  StatementRef s = t.parse("_pg3_0", "select 1");
  t.bind(s);
  t.execute();
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('2') == A::Forward);
  CHECK(t.reply('C', tag("DEALLOCATE ALL")) == A::Forward);
  CHECK(t.named("_pg3_0") == s.get());
  CHECK(t.server.has(s.get()));
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('2') == A::Forward);
  CHECK(t.reply('D') == A::Forward);
  CHECK(t.reply('C', tag("SELECT 1")) == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.q.empty());
  CHECK(t.named("_pg3_0") == s.get());
  CHECK(t.server.has(s.get()));
}

TEST_CASE("DISCARD ALL keeps what was sent after it and drops what was sent before", "[pool][replies]") {
  Session t;
  StatementRef before = t.parse("before", "select 'before'");
  StatementRef closedAfter = t.parse("closed_after", "select 'closed after'");
  StatementRef evicted = t.registry.intern(def("select 'evicted'"));
  t.inject(evicted);
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('1') == A::Swallow);
  CHECK(t.reply('Z', "I") == A::Forward);

  t.query();  // DISCARD ALL
  StatementRef after = t.parse("after", "select 'after'");
  t.parseStandIn("stand_in", before);  // the server has it now; it will not after the DISCARD
  t.close("closed_after");
  StatementRef injected = t.registry.intern(def("select 'injected'"));
  t.inject(injected);
  t.injectedClose(evicted);
  t.sync();
  CHECK(t.reply('C', tag("DISCARD ALL")) == A::Forward);
  CHECK(t.named("before") == nullptr);
  CHECK(t.named("after") == after.get());
  CHECK(t.named("stand_in") == before.get());  // the client's name stands
  CHECK(t.named("closed_after") == nullptr);
  CHECK(t.server.has(after.get()));
  CHECK(t.server.has(injected.get()));
  CHECK_FALSE(t.server.has(before.get()));
  CHECK_FALSE(t.server.has(evicted.get()));
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('3') == A::Forward);
  CHECK(t.reply('1') == A::Swallow);
  CHECK(t.reply('3') == A::Swallow);
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.q.empty());
  CHECK(t.server.has(after.get()));
  CHECK(t.server.has(injected.get()));
  CHECK_FALSE(t.server.has(before.get()));
}

TEST_CASE("DEALLOCATE name by simple query: the empty query's reply becomes CommandComplete DEALLOCATE",
          "[pool][replies]") {
  Session t;
  StatementRef s = t.parse("s", "select 1");
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);

  REQUIRE(t.client.take("s"));
  t.query(true);
  CHECK(t.reply('I') == A::Replace);
  std::string expected;
  proto::encodeCommandComplete(expected, "DEALLOCATE");
  CHECK(t.replacement == expected);
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.q.empty());
  CHECK(t.server.has(s.get()));  // the server keeps it for others

  // The client's own empty query is answered as it is.
  t.query();
  CHECK(t.reply('I') == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);
}

// ClientConn marks the Execute of a portal bound from the stand-in: that Execute's
// EmptyQueryResponse, and no other, becomes CommandComplete DEALLOCATE.
TEST_CASE("DEALLOCATE name by extended query: the marked Execute's EmptyQueryResponse is replaced",
          "[pool][replies]") {
  Session t;
  StatementRef s = t.parse("s", "select 1");
  StatementRef keep = t.parse("keep", "select 2");
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);
  std::string expected;
  proto::encodeCommandComplete(expected, "DEALLOCATE");

  SECTION("it runs") {
    t.deallocateParse("s");
    t.bind();
    t.execute(true);
    t.sync();
    CHECK(t.named("s") == nullptr);
    CHECK(t.reply('1') == A::Forward);
    CHECK(t.reply('2') == A::Forward);
    CHECK(t.reply('I') == A::Replace);
    CHECK(t.replacement == expected);
    CHECK(t.q.size() == 1);  // the Execute is over
    CHECK(t.reply('Z', "I") == A::Forward);
    CHECK(t.q.empty());
    CHECK(t.named("s") == nullptr);
    CHECK(t.named("keep") == keep.get());
    CHECK(t.server.has(s.get()));

    // The client's own unnamed Parse after it: its empty query is answered as it is.
    t.unnamedParse();
    t.bind();
    t.execute();
    t.sync();
    CHECK(t.reply('1') == A::Forward);
    CHECK(t.reply('2') == A::Forward);
    CHECK(t.reply('I') == A::Forward);
    CHECK(t.replacement.empty());
    CHECK(t.reply('Z', "I") == A::Forward);
    CHECK(t.q.empty());
  }
  SECTION("a named Parse between it and the Bind: the Execute is still marked") {
    t.deallocateParse("s");
    StatementRef other = t.parse("other", "select 3");
    t.bind();
    t.execute(true);
    t.sync();
    CHECK(t.reply('1') == A::Forward);
    CHECK(t.reply('1') == A::Forward);
    CHECK(t.reply('2') == A::Forward);
    CHECK(t.reply('I') == A::Replace);
    CHECK(t.replacement == expected);
    CHECK(t.reply('Z', "I") == A::Forward);
    CHECK(t.named("other") == other.get());
  }
  SECTION("an unmarked Execute in the same batch (the client's own empty statement) is answered as it is") {
    t.deallocateParse("s");
    t.bind();
    t.execute(true);
    t.unnamedParse();
    t.bind();
    t.execute();
    t.sync();
    CHECK(t.reply('1') == A::Forward);
    CHECK(t.reply('2') == A::Forward);
    CHECK(t.reply('I') == A::Replace);
    CHECK(t.replacement == expected);
    CHECK(t.reply('1') == A::Forward);
    CHECK(t.reply('2') == A::Forward);
    CHECK(t.reply('I') == A::Forward);
    CHECK(t.replacement.empty());
    CHECK(t.reply('Z', "I") == A::Forward);
    CHECK(t.q.empty());
  }
  SECTION("an earlier Bind's error skips it: the client keeps its statement") {
    t.bind(keep);
    t.execute();
    t.deallocateParse("s");
    t.bind();
    t.execute(true);
    t.sync();
    CHECK(t.named("s") == nullptr);
    CHECK(t.error("22P02", "invalid input syntax") == A::Forward);
    CHECK(t.named("s") == s.get());
    CHECK(t.server.has(s.get()));
    CHECK(t.reply('Z', "E") == A::Forward);
    CHECK(t.q.empty());
  }
  SECTION("an earlier Execute's error skips it: the client keeps its statement") {
    t.bind(keep);
    t.execute();
    t.deallocateParse("s");
    t.bind();
    t.execute(true);
    t.sync();
    CHECK(t.reply('2') == A::Forward);
    CHECK(t.reply('D') == A::Forward);
    CHECK(t.error("22012", "division by zero") == A::Forward);
    CHECK(t.q.size() == 1);
    CHECK(t.named("s") == s.get());
    CHECK(t.reply('Z', "E") == A::Forward);
    CHECK(t.q.empty());
  }
}

TEST_CASE("the DEALLOCATE stand-in's rewrite belongs to the marked Execute alone", "[pool][replies]") {
  Session t;
  StatementRef s = t.parse("s", "select 1");
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);
  t.deallocateParse("s");
  t.bind();
  t.execute(true);
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('2') == A::Forward);
  CHECK(t.reply('I') == A::Replace);
  CHECK(t.reply('Z', "I") == A::Forward);
  // A later batch's EmptyQueryResponse (of an empty statement of the client's) stays as it is.
  t.bind();
  t.execute();
  t.sync();
  CHECK(t.reply('2') == A::Forward);
  CHECK(t.reply('I') == A::Forward);
  CHECK(t.replacement.empty());
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.q.empty());
  // Nor does a simple Query's (the queue keeps no flag of its own).
  t.query();
  CHECK(t.reply('I') == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);
  // A marked Execute that ends otherwise than with EmptyQueryResponse is forwarded.
  t.execute(true);
  t.sync();
  CHECK(t.reply('C', tag("SELECT 0")) == A::Forward);
  CHECK(t.replacement.empty());
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.q.empty());
}

TEST_CASE("the server's replies confirm what it has", "[pool][replies]") {
  Session t;
  const auto known = [&](const StatementRef& s) { return t.server.known().count(s->id()) != 0; };
  StatementRef a = t.parse("a", "select 'a'");
  StatementRef b = t.registry.intern(def("select 'b'"));
  t.inject(b);
  t.unnamedParse();
  t.sync();
  CHECK(t.server.known().empty());  // sent, not yet answered
  CHECK(t.reply('1') == A::Forward);
  CHECK(known(a));
  CHECK(t.reply('1') == A::Swallow);
  CHECK(known(b));
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.server.known().size() == 2);
  CHECK(t.reply('Z', "I") == A::Forward);

  t.injectedClose(a);
  t.sync();
  CHECK(known(a));
  CHECK(t.reply('3') == A::Swallow);
  CHECK_FALSE(known(a));
  CHECK(t.reply('Z', "I") == A::Forward);

  SECTION("26000 naming the statement on its Bind: it is not there") {
    t.bind(b);
    t.sync();
    CHECK(t.error("26000", "prepared statement \"" + b->serverName() + "\" does not exist") == A::Forward);
    CHECK_FALSE(known(b));
    CHECK_FALSE(t.server.has(b.get()));  // the next Bind prepares it again
  }
  SECTION("26000 naming another statement changes nothing") {
    t.bind(b);
    t.sync();
    CHECK(t.error("26000", "prepared statement \"PGMUX_999999\" does not exist") == A::Forward);
    CHECK(known(b));
    CHECK(t.server.has(b.get()));
  }
  SECTION("26000 naming it on a Describe") {
    t.describe(b);
    t.sync();
    CHECK(t.error("26000", "prepared statement \"" + b->serverName() + "\" does not exist") == A::Forward);
    CHECK_FALSE(t.server.has(b.get()));
  }
  SECTION("42P05 on an injected Parse: it is there already") {
    StatementRef c = t.registry.intern(def("select 'c'"));
    t.inject(c);
    t.bind(c);
    t.sync();
    CHECK(t.error("42P05", "prepared statement \"" + c->serverName() + "\" already exists") == A::Forward);
    CHECK(known(c));
    CHECK(t.server.has(c.get()));  // no Parse of it again there
  }
  SECTION("42P05 on the client's Parse under the server-side name") {
    StatementRef c = t.parse("c", "select 'c'");
    t.sync();
    CHECK(t.error("42P05", "prepared statement \"" + c->serverName() + "\" already exists") == A::Forward);
    CHECK(known(c));
    CHECK(t.server.has(c.get()));
    CHECK(t.named("c") == nullptr);  // the client's Parse failed: the name is not its own
  }
  CHECK(t.reply('Z', "E") == A::Forward);
  CHECK(t.q.empty());
}

TEST_CASE("a batch pipelined behind a skipped one: the LRU follows the confirmed set", "[pool][replies]") {
  Session t;
  // Batch 1 prepares X; batch 2, sent before any reply, binds X without preparing it again.
  StatementRef x = t.parse("x", "select * from missing");
  t.sync();
  t.bind(x);
  t.sync();
  REQUIRE(t.server.has(x.get()));
  CHECK(t.error("42P01", "relation \"missing\" does not exist") == A::Forward);
  CHECK(t.named("x") == nullptr);
  CHECK_FALSE(t.server.has(x.get()));  // not confirmed, and nothing in flight prepares it
  CHECK(t.reply('Z', "E") == A::Forward);
  // The server answers the Bind as PostgreSQL does: the statement is not there.
  CHECK(t.error("26000", "prepared statement \"" + x->serverName() + "\" does not exist") == A::Forward);
  CHECK(t.reply('Z', "E") == A::Forward);
  CHECK(t.q.empty());
  CHECK_FALSE(t.server.has(x.get()));
  CHECK(t.server.known().empty());
}

TEST_CASE("an error skips to Sync and undoes what the skipped messages did", "[pool][replies]") {
  Session t;
  // Before the batch: the client has "kept" and "closed_later"; the server has both, and `evict`.
  StatementRef kept = t.parse("kept", "select 'kept'");
  StatementRef closedLater = t.parse("closed_later", "select 'closed'");
  StatementRef evict = t.registry.intern(def("select 'evicted'"));
  t.inject(evict);
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('1') == A::Swallow);
  CHECK(t.reply('Z', "I") == A::Forward);
  REQUIRE(t.server.size() == 3);

  // The batch: Parse "fresh", Parse injected for a statement the server lacks, Bind, Close of a
  // name, Close of an evicted statement, Sync; then another batch that must stand.
  StatementRef injected = t.registry.intern(def("select 'injected'"));
  StatementRef fresh = t.parse("fresh", "select bad syntax");
  t.inject(injected);
  t.bind(injected);
  t.close("closed_later");
  t.injectedClose(evict);
  t.sync();
  StatementRef next = t.parse("next", "select 'next'");
  t.sync();
  CHECK(t.named("fresh") == fresh.get());
  CHECK(t.server.has(fresh.get()));
  CHECK(t.server.has(injected.get()));
  CHECK(t.named("closed_later") == nullptr);
  CHECK_FALSE(t.server.has(evict.get()));

  SECTION("the batch's first message fails") {
    CHECK(t.error("42601", "syntax error at or near \"bad\"") == A::Forward);
    CHECK(t.q.size() == 3);  // Sync, Parse "next", Sync
    CHECK(t.named("fresh") == nullptr);                 // a failed Parse's name is gone
    CHECK_FALSE(t.server.has(fresh.get()));             // and the server does not have it
    CHECK_FALSE(t.server.has(injected.get()));          // a skipped injected Parse prepared nothing
    CHECK(t.named("closed_later") == closedLater.get());  // a skipped Close closed nothing
    CHECK(t.server.has(evict.get()));                   // nor did a skipped injected Close
    CHECK(t.named("kept") == kept.get());
    CHECK(t.server.has(kept.get()));
  }
  SECTION("a later message fails: what was answered stands") {
    CHECK(t.reply('1') == A::Forward);  // "fresh" was prepared
    CHECK(t.error("42P01", "relation \"x\" does not exist") == A::Forward);  // on the injected Parse
    CHECK(t.q.size() == 3);
    CHECK(t.named("fresh") == fresh.get());
    CHECK(t.server.has(fresh.get()));
    CHECK_FALSE(t.server.has(injected.get()));
    CHECK(t.named("closed_later") == closedLater.get());
    CHECK(t.server.has(evict.get()));
  }
  // Whichever failed, the Sync ends the batch and the next one is untouched.
  CHECK(t.reply('Z', "E") == A::Forward);
  CHECK(t.named("next") == next.get());
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.q.empty());
  CHECK(t.named("next") == next.get());
  CHECK(t.server.has(next.get()));
}

TEST_CASE("undo runs latest first: a name closed and parsed again ends as it was", "[pool][replies]") {
  Session t;
  StatementRef old = t.parse("s", "select 'old'");
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);

  StatementRef other = t.registry.intern(def("select 'other'"));
  t.bind(other);  // fails (say the client bound a bad parameter)
  t.close("s");
  StatementRef replaced = t.parse("s", "select 'new'");
  t.parseStandIn("t", old);
  t.sync();
  CHECK(t.named("s") == replaced.get());
  CHECK(t.error("22P02", "invalid input syntax for type integer") == A::Forward);
  CHECK(t.named("s") == old.get());
  CHECK(t.named("t") == nullptr);             // the stand-in's name is undone
  CHECK(t.server.has(old.get()));             // the server still has what it had
  CHECK_FALSE(t.server.has(replaced.get()));  // and not what it skipped
  CHECK(t.reply('Z', "E") == A::Forward);
  CHECK(t.q.empty());
}

TEST_CASE("undo does not take a name that now means another statement", "[pool][replies]") {
  Session t;
  StatementRef a = t.parse("s", "select 'a'");
  // After the Parse went out, the client's map was changed again for the same name (a Close and
  // a Parse of a statement the server has, already answered).
  StatementRef b = t.registry.intern(def("select 'b'"));
  t.client.set("s", b);
  t.sync();
  CHECK(t.error("42601", "syntax error") == A::Forward);
  CHECK(t.named("s") == b.get());
  CHECK_FALSE(t.server.has(a.get()));
}

TEST_CASE("a refused message: the server's error on the stand-in becomes the client's", "[pool][replies]") {
  Session t;
  StatementRef s = t.parse("s1", "select 1");
  t.refused("26000", "prepared statement \"nope\" does not exist");
  t.bind(s);
  t.sync();
  CHECK(t.reply('1') == A::Forward);

  SECTION("the stand-in's error is replaced") {
    CHECK(t.error("26000", "prepared statement \"PGMUX_ABSENT\" does not exist") == A::Replace);
    std::string expected;
    proto::encodeErrorResponse(expected, "ERROR", "26000", "prepared statement \"nope\" does not exist");
    CHECK(t.replacement == expected);
  }
  SECTION("another error is forwarded as it is") {
    CHECK(t.error("57014", "canceling statement due to user request") == A::Forward);
    CHECK(t.replacement.empty());
  }
  SECTION("26000 about another name is forwarded") {
    CHECK(t.error("26000", "prepared statement \"other\" does not exist") == A::Forward);
  }
  SECTION("an error not captured cannot be checked: forwarded") {
    CHECK(t.reply('E', errorBody("26000", "prepared statement \"PGMUX_ABSENT\" does not exist"), false) ==
          A::Forward);
  }
  // Whatever the error, the batch is skipped to its Sync.
  CHECK(t.q.size() == 1);
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.q.empty());
  CHECK(t.named("s1") == s.get());  // answered before the error: it stands
}

TEST_CASE("a refused Parse of a name in use: 42P05 from pgmux, the batch skipped", "[pool][replies]") {
  Session t;
  t.refused("42P05", "prepared statement \"s1\" already exists");
  t.sync();
  CHECK(t.error("26000", "prepared statement \"PGMUX_ABSENT\" does not exist") == A::Replace);
  std::string expected;
  proto::encodeErrorResponse(expected, "ERROR", "42P05", "prepared statement \"s1\" already exists");
  CHECK(t.replacement == expected);
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.q.empty());
}

TEST_CASE("0A000 on a Bind or a Describe retires the statement", "[pool][replies]") {
  Session t;
  StatementRef s = t.parse("s1", "select * from t");
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);

  SECTION("Bind") { t.bind(s); }
  SECTION("Describe") { t.describe(s); }
  t.sync();
  CHECK(t.error("0A000", "cached plan must not change result type") == A::Forward);
  CHECK(s->retired());
  CHECK(t.registry.intern(def("select * from t")).get() != s.get());
  CHECK(t.named("s1") == s.get());  // the client keeps its name; its next Bind is refused
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.q.empty());
}

TEST_CASE("other errors on a Bind retire nothing", "[pool][replies]") {
  Session t;
  StatementRef s = t.parse("s1", "select $1::int");
  t.bind(s);
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.error("22P02", "invalid input syntax for type integer: \"x\"") == A::Forward);
  CHECK_FALSE(s->retired());
  CHECK(t.registry.intern(def("select $1::int")).get() == s.get());
  // An unnamed Bind with 0A000 has no statement to retire.
  CHECK(t.reply('Z', "E") == A::Forward);
  t.bind();
  t.sync();
  CHECK(t.error("0A000", "cached plan must not change result type") == A::Forward);
  CHECK(t.reply('Z', "E") == A::Forward);
  CHECK(t.q.empty());
}

// Execute is owed a reply of its own: an error it raises is its own, not the next entry's. A
// 0A000 (feature_not_supported: many runtime errors use it, not only "cached plan must not change
// result type") from an Execute retires nothing, neither its own statement nor the next Bind's.
TEST_CASE("a 0A000 from an Execute does not retire the next Bind's statement", "[pool][replies]") {
  Session t;
  StatementRef first = t.parse("first", "select xmlparse(document $1)");
  StatementRef second = t.parse("second", "select 2");
  t.bind(first);
  t.execute();
  t.bind(second);
  t.execute();
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('2') == A::Forward);
  // The Execute of "first" fails; the server skips the rest.
  CHECK(t.error("0A000", "unsupported XML feature") == A::Forward);
  CHECK_FALSE(first->retired());
  CHECK_FALSE(second->retired());
  CHECK(t.q.size() == 1);
  CHECK(t.reply('Z', "E") == A::Forward);
  CHECK(t.q.empty());
  CHECK(t.named("first") == first.get());
  CHECK(t.named("second") == second.get());
}

TEST_CASE("an error with no Sync queued: later messages are undone until a Sync", "[pool][replies]") {
  Session t;
  StatementRef before = t.parse("before", "select 0");
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);

  // Parse, Describe, Flush (asyncpg's way): no Sync yet when the error comes.
  StatementRef bad = t.parse("bad", "select nonsense");
  t.describe(bad);
  CHECK(t.error("42703", "column \"nonsense\" does not exist") == A::Forward);
  CHECK(t.q.size() == 0);
  CHECK_FALSE(t.q.empty());  // still skipping
  CHECK(t.named("bad") == nullptr);
  CHECK_FALSE(t.server.has(bad.get()));

  // What the client sends now is discarded by the server: undone as soon as it is pushed.
  StatementRef late = t.parse("late", "select 'late'");
  CHECK(t.named("late") == nullptr);
  CHECK_FALSE(t.server.has(late.get()));
  StatementRef injected = t.registry.intern(def("select 'injected'"));
  t.inject(injected);
  CHECK_FALSE(t.server.has(injected.get()));
  t.close("before");
  CHECK(t.named("before") == before.get());
  t.injectedClose(before);
  CHECK(t.server.has(before.get()));
  t.query();  // a Query too is skipped
  CHECK(t.q.size() == 0);

  t.sync();
  CHECK(t.q.size() == 1);
  CHECK(t.reply('Z', "E") == A::Forward);
  CHECK(t.q.empty());
  CHECK(t.server.has(before.get()));
  CHECK(t.named("before") == before.get());

  // Back to normal.
  StatementRef again = t.parse("late", "select 'late'");
  t.sync();
  CHECK(t.q.size() == 2);
  CHECK(t.named("late") == again.get());
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.q.empty());
}

TEST_CASE("an error while a Sync is at the head (the implicit COMMIT failed) is forwarded", "[pool][replies]") {
  Session t;
  StatementRef s = t.parse("s", "insert into t values (1)");
  t.sync();
  StatementRef after = t.parse("after", "select 1");
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.error("23505", "duplicate key value violates unique constraint") == A::Forward);
  CHECK(t.q.size() == 3);  // nothing popped, nothing undone
  CHECK(t.named("after") == after.get());
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);
  CHECK(t.q.empty());
}

TEST_CASE("undo is safe once the client is gone", "[pool][replies]") {
  Session t;
  StatementRef s = t.parse("s", "select 1");
  StatementRef other = t.parse("o", "select 2");
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('Z', "I") == A::Forward);
  t.close("s");
  t.injectedClose(other);
  StatementRef fresh = t.parse("fresh", "select 3");
  t.sync();
  StatementScope noClient{t.server, nullptr, t.registry};
  std::string repl;
  const std::string err = errorBody("57P01", "terminating connection due to administrator command");
  CHECK(t.q.onMessage('E', spanOf(err), true, noClient, repl) == A::Forward);
  CHECK(t.server.has(other.get()));
  CHECK_FALSE(t.server.has(fresh.get()));
  CHECK(t.q.size() == 1);
}

TEST_CASE("dropTrailingSyncs removes the last Syncs only", "[pool][replies]") {
  Session t;
  SECTION("the Syncs after a COPY's Execute") {
    t.unnamedParse();
    t.bind();
    t.execute();
    t.sync();
    t.sync();
    t.q.dropTrailingSyncs(1);
    CHECK(t.q.size() == 4);
    CHECK(t.reply('1') == A::Forward);
    CHECK(t.reply('2') == A::Forward);
    CHECK(t.reply('C', tag("COPY 0")) == A::Forward);
    CHECK(t.reply('Z', "I") == A::Forward);
    CHECK(t.q.empty());
  }
  SECTION("Syncs among other messages: the last ones go, the rest keep their order") {
    t.sync();
    t.unnamedParse();
    t.sync();
    t.bind();
    t.sync();
    t.q.dropTrailingSyncs(2);
    CHECK(t.q.size() == 3);  // Sync, Parse, Bind
    CHECK(t.reply('Z', "I") == A::Forward);
    CHECK(t.reply('1') == A::Forward);
    CHECK(t.reply('2') == A::Forward);
    CHECK(t.q.empty());
  }
  SECTION("more than there are, and none") {
    t.sync();
    t.bind();
    t.q.dropTrailingSyncs(0);
    CHECK(t.q.size() == 2);
    t.q.dropTrailingSyncs(5);
    CHECK(t.q.size() == 1);
    CHECK(t.reply('2') == A::Forward);
    CHECK(t.q.empty());
  }
}

// COPY by extended query: the Execute is owed until the COPY's CommandComplete, whatever copy
// messages come before it. On CopyInResponse the server ignores the Syncs sent since the
// Execute (ServerConn drops them from the queue, as done here by hand).
TEST_CASE("extended COPY: the Execute stays at the head until CommandComplete", "[pool][replies]") {
  Session t;
  t.unnamedParse();
  t.bind();
  t.execute();
  t.sync();
  CHECK(t.reply('1') == A::Forward);
  CHECK(t.reply('2') == A::Forward);

  SECTION("COPY FROM STDIN") {
    t.q.dropTrailingSyncs(1);
    CHECK(t.reply('G') == A::Forward);
    CHECK(t.q.describe() == "Execute");
    // The client sends CopyData, CopyDone and a Sync.
    t.sync();
    CHECK(t.q.describe() == "Execute Sync");
    CHECK(t.reply('C', tag("COPY 2")) == A::Forward);
    CHECK(t.q.describe() == "Sync");
    CHECK(t.reply('Z', "I") == A::Forward);
  }
  SECTION("COPY FROM STDIN failed by the client (CopyFail): the error is the Execute's") {
    t.q.dropTrailingSyncs(1);
    CHECK(t.reply('G') == A::Forward);
    t.sync();
    CHECK(t.error("57014", "COPY from stdin failed: aborted") == A::Forward);
    CHECK(t.q.describe() == "Sync");
    CHECK(t.reply('Z', "E") == A::Forward);
  }
  SECTION("COPY TO STDOUT") {
    CHECK(t.reply('H') == A::Forward);
    for (int i = 0; i < 3; ++i) CHECK(t.reply('d') == A::Forward);
    CHECK(t.reply('c') == A::Forward);
    CHECK(t.q.describe() == "Execute Sync");
    CHECK(t.reply('C', tag("COPY 3")) == A::Forward);
    CHECK(t.reply('Z', "I") == A::Forward);
  }
  CHECK(t.q.empty());
}

TEST_CASE("a reply the head does not owe is a desync", "[pool][replies]") {
  Session t;
  SECTION("BindComplete for a Parse") {
    t.unnamedParse();
    CHECK(t.reply('2') == A::Desync);
  }
  SECTION("ReadyForQuery for a Parse") {
    t.unnamedParse();
    CHECK(t.reply('Z', "I") == A::Desync);
  }
  SECTION("ParseComplete for a Bind or a Sync") {
    t.bind();
    CHECK(t.reply('1') == A::Desync);
    Session u;
    u.sync();
    CHECK(u.reply('1') == A::Desync);
  }
  SECTION("CloseComplete for a Parse or a Bind") {
    t.unnamedParse();
    CHECK(t.reply('3') == A::Desync);
    Session u;
    u.bind();
    CHECK(u.reply('3') == A::Desync);
  }
  SECTION("ParameterDescription or NoData for a Bind") {
    t.bind();
    CHECK(t.reply('t') == A::Desync);
    CHECK(t.reply('n') == A::Desync);
    CHECK(t.reply('T') == A::Desync);
  }
  SECTION("NoData in a simple Query") {
    t.query();
    CHECK(t.reply('n') == A::Desync);
  }
  SECTION("ParseComplete for a Close") {
    t.close("x");
    CHECK(t.reply('1') == A::Desync);
  }
  SECTION("CommandComplete, EmptyQueryResponse or PortalSuspended with a Sync at the head") {
    t.sync();
    CHECK(t.reply('C', tag("SELECT 1")) == A::Desync);
    CHECK(t.reply('I') == A::Desync);
    CHECK(t.reply('s') == A::Desync);
  }
  SECTION("the end of an Execute while a Bind or a Describe is owed") {
    t.bind();
    CHECK(t.reply('C', tag("SELECT 1")) == A::Desync);
    CHECK(t.reply('I') == A::Desync);
    CHECK(t.reply('s') == A::Desync);
    Session u;
    u.describe();
    CHECK(u.reply('C', tag("SELECT 1")) == A::Desync);
    CHECK(u.q.size() == 1);
  }
  SECTION("PortalSuspended in a simple Query") {
    t.query();
    CHECK(t.reply('s') == A::Desync);
  }
  SECTION("BindComplete, ParseComplete or NoData for an Execute") {
    t.execute();
    CHECK(t.reply('2') == A::Desync);
    CHECK(t.reply('1') == A::Desync);
    CHECK(t.reply('n') == A::Desync);
    CHECK(t.reply('Z', "I") == A::Desync);
  }
  // A desync pops nothing: the head is still owed.
  CHECK(t.q.size() == 1);
}

TEST_CASE("plainOnly: what a pipelined server may owe its client", "[pool][replies]") {
  Session s;
  REQUIRE(s.q.plainOnly());
  SECTION("PQexecParams: the client's unnamed Parse, Bind, Describe, Execute, Sync") {
    s.unnamedParse();
    s.bind();
    s.describe();
    s.execute();
    s.sync();
    CHECK(s.q.plainOnly());
  }
  SECTION("a named Parse changes what the server has") {
    s.parse("a", "SELECT 1");
    CHECK_FALSE(s.q.plainOnly());
  }
  SECTION("an unnamed Parse standing in for DEALLOCATE is rewritten") {
    s.parse("a", "SELECT 1");
    s.sync();
    REQUIRE(s.reply('1') == A::Forward);
    REQUIRE(s.reply('Z', "I") == A::Forward);
    s.deallocateParse("a");
    CHECK_FALSE(s.q.plainOnly());
  }
  SECTION("an injected Parse is swallowed") {
    s.inject(s.registry.intern(def("SELECT 1")));
    CHECK_FALSE(s.q.plainOnly());
  }
  SECTION("a server skipping to a Sync not sent yet (a Flush)") {
    s.bind();
    s.execute();
    REQUIRE(s.error("22P02", "invalid input syntax") == A::Forward);
    CHECK_FALSE(s.q.plainOnly());
  }
}
