// A JDBC load for the integration suite: N threads, each with its own connection and
// prepareThreshold=1, reuse a few PreparedStatements many times (server-side named statements
// after the first execution), some inside transactions, and check every result. Prints one
// "key=value" a line for the test; exits 1 on any error or wrong result (printed on stderr).
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;

public final class PreparedLoad {
  private PreparedLoad() {}

  private static final ConcurrentLinkedQueue<String> ERRORS = new ConcurrentLinkedQueue<>();
  private static final AtomicLong EXECUTIONS = new AtomicLong();
  private static final AtomicLong SERVER_PREPARED = new AtomicLong();

  /** The id thread t inserts in round r; the Python test recomputes it. */
  static int insertedId(int thread, int round) {
    return 200000 + thread * 1000 + round;
  }

  private static void expect(boolean ok, String what) {
    if (!ok) {
      throw new IllegalStateException("wrong result: " + what);
    }
  }

  /** Whether the driver has switched this statement to a named server-side statement. */
  private static boolean serverPrepared(PreparedStatement ps) throws SQLException {
    return ps.unwrap(org.postgresql.PGStatement.class).isUseServerPrepare();
  }

  private static final class Worker implements Runnable {
    private final int thread;
    private final String url;
    private final Properties props;
    private final String table;
    private final int rounds;
    private final int seedRows;
    final Set<Integer> pids = new HashSet<>();

    Worker(int thread, String url, Properties props, String table, int rounds, int seedRows) {
      this.thread = thread;
      this.url = url;
      this.props = props;
      this.table = table;
      this.rounds = rounds;
      this.seedRows = seedRows;
    }

    @Override
    public void run() {
      try (Connection conn = DriverManager.getConnection(url, props);
           PreparedStatement get =
               conn.prepareStatement("SELECT id, note FROM " + table + " WHERE id = ?");
           PreparedStatement range = conn.prepareStatement(
               "SELECT count(*), coalesce(sum(id), 0) FROM " + table + " WHERE id BETWEEN ? AND ?");
           PreparedStatement whoami = conn.prepareStatement("SELECT pg_backend_pid(), ?::text");
           PreparedStatement insert =
               conn.prepareStatement("INSERT INTO " + table + " (id, note) VALUES (?, ?)")) {
        for (int round = 0; round < rounds; round++) {
          int k = 1 + (thread * 7 + round) % seedRows;
          expect(readNote(get, k).equals("seed-" + k), "get " + k);

          int lo = 1 + (thread + round) % (seedRows - 9);
          range.setInt(1, lo);
          range.setInt(2, lo + 9);
          try (ResultSet rs = range.executeQuery()) {
            rs.next();
            expect(rs.getLong(1) == 10 && rs.getLong(2) == 10L * lo + 45, "range " + lo);
          }
          EXECUTIONS.incrementAndGet();

          String tag = "t" + thread + "-r" + round;
          pids.add(whoami(whoami, tag));

          // A transaction: one server throughout, which may lack the statements so far.
          int id = insertedId(thread, round);
          boolean rollback = round % 4 == 3;
          conn.setAutoCommit(false);
          int first = whoami(whoami, tag);
          insert.setInt(1, id);
          insert.setString(2, tag);
          expect(insert.executeUpdate() == 1, "insert " + id);
          EXECUTIONS.incrementAndGet();
          expect(readNote(get, id).equals(tag), "get " + id + " in transaction");
          int last = whoami(whoami, tag);
          expect(first == last, "transaction moved from backend " + first + " to " + last);
          pids.add(first);
          if (rollback) {
            conn.rollback();
          } else {
            conn.commit();
          }
          conn.setAutoCommit(true);
          expect(readNote(get, id).equals(rollback ? "" : tag),
              "get " + id + " after " + (rollback ? "rollback" : "commit"));
        }
        for (PreparedStatement ps : List.of(get, range, whoami, insert)) {
          if (serverPrepared(ps)) {
            SERVER_PREPARED.incrementAndGet();
          }
        }
      } catch (Exception e) {
        String state = e instanceof SQLException ? ((SQLException) e).getSQLState() + " " : "";
        ERRORS.add("thread " + thread + ": " + state + e.getMessage());
      }
    }

    /** The note of row `id`, or "" when there is none. */
    private static String readNote(PreparedStatement get, int id) throws SQLException {
      get.setInt(1, id);
      try (ResultSet rs = get.executeQuery()) {
        EXECUTIONS.incrementAndGet();
        if (!rs.next()) {
          return "";
        }
        expect(rs.getInt(1) == id, "get " + id + " returned id " + rs.getInt(1));
        return rs.getString(2);
      }
    }

    private static int whoami(PreparedStatement whoami, String tag) throws SQLException {
      whoami.setString(1, tag);
      try (ResultSet rs = whoami.executeQuery()) {
        EXECUTIONS.incrementAndGet();
        rs.next();
        expect(tag.equals(rs.getString(2)), "whoami " + tag + " -> " + rs.getString(2));
        return rs.getInt(1);
      }
    }
  }

  public static void main(String[] args) throws InterruptedException {
    if (args.length != 7) {
      System.err.println("usage: PreparedLoad <jdbc url> <user> <password> <table> <threads>"
          + " <rounds> <seed rows>");
      System.exit(2);
    }
    Properties props = new Properties();
    props.setProperty("user", args[1]);
    props.setProperty("password", args[2]);
    props.setProperty("prepareThreshold", "1");
    props.setProperty("connectTimeout", "10");
    props.setProperty("socketTimeout", "60");
    String table = "\"" + args[3].replace("\"", "\"\"") + "\"";
    int threads = Integer.parseInt(args[4]);
    int rounds = Integer.parseInt(args[5]);
    int seedRows = Integer.parseInt(args[6]);

    List<Worker> workers = new ArrayList<>();
    List<Thread> running = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      Worker w = new Worker(t, args[0], props, table, rounds, seedRows);
      workers.add(w);
      Thread th = new Thread(w, "worker-" + t);
      running.add(th);
      th.start();
    }
    for (Thread th : running) {
      th.join();
    }
    Set<Integer> all = new HashSet<>();
    int several = 0;
    for (Worker w : workers) {
      all.addAll(w.pids);
      if (w.pids.size() > 1) {
        several++;
      }
    }
    System.out.println("threads=" + threads);
    System.out.println("executions=" + EXECUTIONS.get());
    System.out.println("errors=" + ERRORS.size());
    System.out.println("server_prepared=" + SERVER_PREPARED.get());
    System.out.println("distinct_backends=" + all.size());
    System.out.println("threads_on_several_backends=" + several);
    int shown = 0;
    for (String e : ERRORS) {
      if (shown++ == 50) {
        break;
      }
      System.err.println(e);
    }
    System.exit(ERRORS.isEmpty() ? 0 : 1);
  }
}
