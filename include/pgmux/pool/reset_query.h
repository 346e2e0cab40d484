// A pooled driver's connection-reset query, answered by pgmux itself in transaction and statement
// mode. asyncpg sends "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;" every
// time its pool takes a connection back: forwarded, that is a server transaction per request that
// changes nothing the client can see. A client between transactions holds no server, so it has
// no cursor, LISTEN or session advisory lock of its own anywhere, and its tracked parameters are
// pgmux's to keep (RESET ALL: params.h, resetToDefaults).
#pragma once

#include <string>
#include <string_view>

namespace pgmux::pool {

// When `sql` is one or more of the statements above (any order, `;`-separated, any case and
// whitespace, nothing else), appends to `out` PostgreSQL's reply to the statements, sets
// `resetAll` when RESET ALL is among them, and returns true. The rest of the reply is the
// caller's: a ParameterStatus for each value RESET ALL changes, then ReadyForQuery 'I'.
// Otherwise returns false and leaves `out` unchanged.
bool answerResetQuery(std::string_view sql, std::string& out, bool& resetAll);

}  // namespace pgmux::pool
