// Cross-client pipelining (server_pipelining): in transaction mode, a waiting client's query may
// be written to a busy server behind the query running there, so that the backend finds it as
// soon as it has answered the first and does not go to sleep in between. The server answers in
// order, and each answer goes to its client. Only a request that cannot leave the session in a
// transaction block or with other settings may take part, on either side: one SELECT statement,
// as a simple Query, as the Bind/Execute/Sync of a prepared statement, or as the
// Parse/Bind/Execute/Sync of the unnamed statement that libpq's PQexecParams sends
// (ClientConn::pipelinableRequest).
#pragma once

#include <string_view>

namespace pgmux::pool {

// Whether a query text (a simple Query's, a prepared statement's) is one SELECT statement that
// ends where it started, in no transaction block and with the session's settings unchanged: it
// starts with the keyword SELECT, has no `;` but an optional last one, and does not call
// set_config. Conservative: a `;` inside a literal also refuses, and a function that changes
// settings itself is not seen.
bool pipelinableQuery(std::string_view sql);

}  // namespace pgmux::pool
