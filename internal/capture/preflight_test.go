package capture

import (
	"context"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/pgcluster"
	"github.com/cdcq/cdcq/internal/pgtest"
)

// withUser returns dsn with another user and password.
func withUser(t *testing.T, dsn, user, password string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

func TestEnsurePreflightFailuresSayWhatToDo(t *testing.T) {
	h := newHarness(t)
	e := h.engine("a", func(c *Config) { c.ConnectTimeout = 3 * time.Second })
	dsn := pgtest.NewDatabase(t)
	admin := connect(t, dsn)
	exec(t, admin, `DO $$ BEGIN CREATE ROLE cdcq_norepl LOGIN PASSWORD 'secret-pw'; EXCEPTION WHEN duplicate_object THEN NULL; END $$`)

	replicaDir, err := os.MkdirTemp("", "cdcq-replica-")
	if err != nil {
		t.Fatal(err)
	}
	replica, err := pgcluster.Start(context.Background(), pgcluster.Config{DataDir: replicaDir + "/data", Settings: map[string]string{"wal_level": "replica"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = replica.Stop(context.Background())
		_ = os.RemoveAll(replicaDir)
	})
	closedPort, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		dsn  string
		want string
	}{
		{"wal_level_replica", replica.URL(), "wal_level is replica; set wal_level=logical and restart the server"},
		{"no_replication_privilege", withUser(t, dsn, "cdcq_norepl", "secret-pw"), `ALTER ROLE cdcq_norepl WITH REPLICATION`},
		{"connection_refused", "postgres://cdcq:secret-pw@127.0.0.1:" + strconv.Itoa(closedPort) + "/x", "cannot reach a PostgreSQL server at 127.0.0.1:" + strconv.Itoa(closedPort) + "; check the host name, port and firewall"},
		{"unknown_host", "postgres://cdcq:secret-pw@no-such-host.invalid:5432/x", "cannot reach a PostgreSQL server at no-such-host.invalid:5432; check the host name, port and firewall"},
		{"host_parameter", dsn + "&host=10.1.2.3", `query parameter "host"`},
		{"unknown_database", strings.Replace(dsn, "/t", "/nodb_t", 1), "does not exist"},
		{"not_a_url", "host=localhost", "must be a URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e.Ensure(context.Background(), spec("envpre", tc.dsn))
			if !jobs.IsTerminal(err) {
				t.Fatalf("want a terminal error, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret-pw") {
				t.Errorf("error reveals the password: %q", err)
			}
		})
	}
	// An engine with the default source policy refuses the test server,
	// which listens on loopback.
	strict := h.engine("b", func(c *Config) { c.Source = nil })
	err = strict.Ensure(context.Background(), spec("envpre", dsn))
	if !jobs.IsTerminal(err) || !strings.Contains(err.Error(), "loopback addresses are not allowed") {
		t.Errorf("default policy: error = %v, want a terminal refusal of loopback", err)
	}
	// Nothing was registered: no capture runs for a failed create.
	if ids, err := e.store.wanted(context.Background()); err != nil || len(ids) != 0 {
		t.Errorf("registered captures after failed creates: %v %v", ids, err)
	}
}

// TestRoleThatIsNotSuperuser captures with a role that has REPLICATION and
// owns one of two tables: the publication holds the table it owns, and the
// other is reported.
func TestRoleThatIsNotSuperuser(t *testing.T) {
	h := newHarness(t)
	dsn := pgtest.NewDatabase(t)
	admin := connect(t, dsn)
	replicationRole(t, admin)
	exec(t, admin, `CREATE TABLE theirs (id int PRIMARY KEY); GRANT SELECT ON theirs TO cdcq_repl`)
	exec(t, admin, `CREATE TABLE mine (id int PRIMARY KEY, v text); ALTER TABLE mine OWNER TO cdcq_repl; INSERT INTO mine VALUES (1, 'x')`)
	userDSN := withUser(t, dsn, "cdcq_repl", "pw")

	const env = "envnosuper"
	sp := spec(env, userDSN)
	e := h.engine("a", nil)
	if err := e.Ensure(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	cons := consume(t, h.brokers, env+".public.mine")
	h.supervise(e)
	streamingRow(t, e, env)
	if n := queryInt(t, admin, `SELECT count(*) FROM pg_publication_tables WHERE pubname = $1 AND tablename = 'mine'`, sp.PublicationName); n != 1 {
		t.Errorf("mine is not published")
	}
	if n := queryInt(t, admin, `SELECT count(*) FROM pg_publication_tables WHERE pubname = $1 AND tablename = 'theirs'`, sp.PublicationName); n != 0 {
		t.Errorf("theirs is published")
	}
	exec(t, admin, `UPDATE mine SET v = 'y'`)
	eventually(t, 10*time.Second, "records of mine", func() (bool, string) {
		cs := decodeAll(t, cons.all())
		return ops(cs) == "ru" && cs[1].Before != nil, ops(cs)
	})
	// A table the role creates later joins the publication on the next
	// refresh; rows written after that are captured.
	user := connect(t, userDSN)
	exec(t, user, `CREATE TABLE mine2 (id int PRIMARY KEY)`)
	eventually(t, 10*time.Second, "new table published", func() (bool, string) {
		return queryInt(t, admin, `SELECT count(*) FROM pg_publication_tables WHERE pubname = $1 AND tablename = 'mine2'`, sp.PublicationName) == 1, ""
	})
	cons2 := consume(t, h.brokers, env+".public.mine2")
	exec(t, user, `INSERT INTO mine2 VALUES (1)`)
	eventually(t, 10*time.Second, "records of mine2", func() (bool, string) {
		got := ops(decodeAll(t, cons2.all()))
		return got == "c", got
	})
	eventually(t, 5*time.Second, "warning about theirs", func() (bool, string) {
		st, err := e.Observe(context.Background(), sp)
		if err != nil {
			return false, err.Error()
		}
		return len(st.Warnings) == 1 && strings.Contains(st.Warnings[0], "public.theirs"), strings.Join(st.Warnings, "; ")
	})
}
