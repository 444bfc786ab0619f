package service

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/pgtest"
)

// An environment stays bound to the database it was created with, through
// the whole system on a real source: commands naming another database are
// refused with 409 and change nothing, a new password for the same database
// rotates the stored connection string, and a delete acts on the stored
// one even when the caller sends an old password.
func TestEnvironmentStaysBoundToItsDatabase(t *testing.T) {
	s := startEmbeddedSystem(t)
	ctx := context.Background()
	src, srcConn := sourceDatabase(t)
	if _, err := srcConn.Exec(ctx, `CREATE TABLE orders (id int PRIMARY KEY, total numeric(10,2)); INSERT INTO orders VALUES (1, 9.99)`); err != nil {
		t.Fatal(err)
	}
	env := uniqueEnv("bound")
	if res := s.postForm("/createDatabaseConnection", map[string]string{"connectionString": src, "environmentId": env}); res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	s.waitForStatus(src, env, "RUNNING", func(m map[string]any) bool { return m["status"] == "RUNNING" })

	other := strings.Replace(pgtest.NewDatabase(t), "postgres://cdcq@", "postgres://cdcq:"+knownPassword+"@", 1)
	for _, path := range []string{"/createDatabaseConnection", "/deleteDatabaseConnection", "/createCachedQuery"} {
		fields := map[string]string{"connectionString": other, "environmentId": env}
		if path == "/createCachedQuery" {
			fields["schema"] = "model orders {\n  id Int @id\n  total Decimal? @db.Decimal(10, 2)\n}"
			fields["sqlQuery"] = "SELECT count(*) FROM orders"
		}
		res := s.postJSON(path, fields)
		if res.status != http.StatusConflict || !strings.Contains(string(res.body), "its database differs") {
			t.Fatalf("%s naming another database: %d %s", path, res.status, res.body)
		}
	}
	if slots, _ := slotAndPublicationCount(t, srcConn, env); slots != 1 {
		t.Fatalf("after refused commands: %d slots, want the capture's 1", slots)
	}

	// A new password for the same database rotates the stored one.
	rotated := strings.Replace(src, ":"+knownPassword+"@", ":rotated-"+knownPassword+"@", 1)
	if res := s.postForm("/createDatabaseConnection", map[string]string{"connectionString": rotated, "environmentId": env}); res.status != http.StatusCreated {
		t.Fatalf("create with a new password: %d %s", res.status, res.body)
	}
	waitFor(t, 30*time.Second, "the stored connection string to rotate", func() bool {
		var sealed string
		if err := s.inf.Pool.QueryRow(ctx, `SELECT connection_sealed FROM environment_bindings WHERE environment_id = $1`, env).Scan(&sealed); err != nil {
			return false
		}
		plain, err := s.inf.Sealer.Open(sealed, env)
		return err == nil && strings.Contains(plain, "rotated-"+knownPassword)
	})
	s.waitForStatus(rotated, env, "RUNNING after the rotation", func(m map[string]any) bool { return m["status"] == "RUNNING" })

	// Delete with the old password: it names the same database, and the
	// worker acts on the stored connection string.
	if res := s.postJSON("/deleteDatabaseConnection", map[string]string{"connectionString": src, "environmentId": env}); res.status != http.StatusAccepted {
		t.Fatalf("delete: %d %s", res.status, res.body)
	}
	s.waitForStatus(src, env, "DELETED", func(m map[string]any) bool { return m["status"] == "DELETED" })
	if slots, pubs := slotAndPublicationCount(t, srcConn, env); slots != 0 || pubs != 0 {
		t.Errorf("left behind: %d slots, %d publications", slots, pubs)
	}
	var bound int
	if err := s.inf.Pool.QueryRow(ctx, `SELECT count(*) FROM environment_bindings WHERE environment_id = $1`, env).Scan(&bound); err != nil || bound != 0 {
		t.Errorf("binding left after delete: %d (%v)", bound, err)
	}
	// Deleted, the environment may capture the other database.
	if res := s.postForm("/createDatabaseConnection", map[string]string{"connectionString": other, "environmentId": env}); res.status != http.StatusCreated {
		t.Fatalf("create on another database after delete: %d %s", res.status, res.body)
	}
}

// A create that failed before anything was made in the source (a port
// nothing listens on) does not bind the environment for good: the create
// with the right connection string is accepted and runs.
func TestFailedCreateDoesNotBindTheEnvironment(t *testing.T) {
	s := startEmbeddedSystem(t)
	src, srcConn := sourceDatabase(t)
	if _, err := srcConn.Exec(context.Background(), `CREATE TABLE orders (id int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	u, err := url.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = closed
	typo := u.String()
	env := uniqueEnv("typo")
	if res := s.postForm("/createDatabaseConnection", map[string]string{"connectionString": typo, "environmentId": env}); res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	s.waitForStatus(typo, env, "FAILED", func(m map[string]any) bool {
		r, _ := m["reason"].(string)
		return m["status"] == "FAILED" && strings.Contains(r, "cannot reach a PostgreSQL server")
	})
	if res := s.postForm("/createDatabaseConnection", map[string]string{"connectionString": src, "environmentId": env}); res.status != http.StatusCreated {
		t.Fatalf("create with the right port after a failed create: %d %s", res.status, res.body)
	}
	s.waitForStatus(src, env, "RUNNING", func(m map[string]any) bool { return m["status"] == "RUNNING" })
	// Established now: the old port is another database.
	if res := s.postForm("/createDatabaseConnection", map[string]string{"connectionString": typo, "environmentId": env}); res.status != http.StatusConflict {
		t.Fatalf("create on the old port once running: %d %s", res.status, res.body)
	}
}
