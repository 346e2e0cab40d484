// A JDBC client for the integration suite: connects through pgmux with the driver's own startup
// parameters and prints what a few statements saw, one "key=value" a line, for the test to check.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

public final class JdbcSmoke {
  private JdbcSmoke() {}

  public static void main(String[] args) throws SQLException {
    if (args.length != 3) {
      System.err.println("usage: JdbcSmoke <jdbc url> <user> <password>");
      System.exit(2);
    }
    Properties props = new Properties();
    props.setProperty("user", args[1]);
    props.setProperty("password", args[2]);
    // Server-side prepared statements need pgmux's prepared statement support: not here.
    props.setProperty("prepareThreshold", "0");
    props.setProperty("connectTimeout", "10");
    props.setProperty("socketTimeout", "30");
    try (Connection conn = DriverManager.getConnection(args[0], props)) {
      try (Statement st = conn.createStatement();
           ResultSet rs = st.executeQuery(
               "SELECT current_user, current_setting('TimeZone'), current_setting('DateStyle'),"
                   + " current_setting('application_name'), current_setting('client_encoding')")) {
        rs.next();
        System.out.println("user=" + rs.getString(1));
        System.out.println("timezone=" + rs.getString(2));
        System.out.println("datestyle=" + rs.getString(3));
        System.out.println("application_name=" + rs.getString(4));
        System.out.println("client_encoding=" + rs.getString(5));
      }
      // The extended protocol with a parameter, a few times over.
      int sum = 0;
      try (PreparedStatement ps = conn.prepareStatement("SELECT ?::int + 1")) {
        for (int i = 1; i <= 5; i++) {
          ps.setInt(1, i);
          try (ResultSet rs = ps.executeQuery()) {
            rs.next();
            sum += rs.getInt(1);
          }
        }
      }
      System.out.println("prepared_sum=" + sum);
      // A transaction of two statements on one server.
      conn.setAutoCommit(false);
      try (Statement st = conn.createStatement()) {
        st.execute("CREATE TEMP TABLE jdbc_smoke (x int) ON COMMIT DROP");
        st.execute("INSERT INTO jdbc_smoke SELECT generate_series(1, 10)");
        try (ResultSet rs = st.executeQuery("SELECT count(*) FROM jdbc_smoke")) {
          rs.next();
          System.out.println("transaction_rows=" + rs.getInt(1));
        }
      }
      conn.commit();
    }
  }
}
