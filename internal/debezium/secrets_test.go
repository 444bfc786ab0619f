package debezium_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdcq/cdcq/internal/debezium"
	"github.com/cdcq/cdcq/internal/kafkaconnect/connectfake"
)

func TestSecretFileName(t *testing.T) {
	for name, want := range map[string]string{
		"cdcq-shop_1": "cdcq-shop_1.password",
	} {
		if got := debezium.SecretFileName(name); got != want {
			t.Errorf("SecretFileName(%q) = %q, want %q", name, got, want)
		}
	}
	seen := map[string]string{}
	for _, name := range []string{"cdcq-a/b", "cdcq-a.b", "cdcq-a b", "cdcq-a_b", "../etc/passwd", "", "cdcq-é"} {
		got := debezium.SecretFileName(name)
		if strings.Trim(got, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "" || strings.HasPrefix(got, ".") {
			t.Errorf("SecretFileName(%q) = %q: unsafe characters", name, got)
		}
		if other, dup := seen[got]; dup {
			t.Errorf("SecretFileName(%q) = SecretFileName(%q) = %q", name, other, got)
		}
		seen[got] = name
	}
}

func TestSecretsDirIsChecked(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"relative", "/a:b", "/a,b", "/a}b", file, filepath.Join(t.TempDir(), "missing")} {
		if err := (debezium.Config{SecretsDir: dir}).Validate(); err == nil {
			t.Errorf("secrets directory %q accepted", dir)
		}
	}
}

// With a secrets directory, Connect gets a reference to a 0600 file that
// holds the password; a rotation rewrites the file and restarts the
// connector (also when the first restart fails); Delete removes the file,
// also when the connector is already gone.
func TestEnsureKeepsThePasswordInTheSecretsDir(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, debezium.Config{SecretsDir: dir})
	spec := specFor("vault1", withPassword(t, f.dsn))
	ctx := context.Background()
	if !f.capture.KeepsPasswordsOutOfConnect() {
		t.Fatal("KeepsPasswordsOutOfConnect is false with a secrets directory")
	}

	if err := f.capture.Ensure(ctx, spec); err != nil {
		t.Fatal(err)
	}
	file := debezium.SecretFileName(spec.ConnectorName)
	c, ok := f.fake.Connector(spec.ConnectorName)
	if !ok {
		t.Fatal("connector not created")
	}
	if got, want := c.Config["database.password"], "${dir:"+dir+":"+file+"}"; got != want {
		t.Errorf("database.password = %q, want %q", got, want)
	}
	for _, r := range f.fake.RequestsTo(http.MethodPut, "/connectors/cdcq-vault1/config") {
		if strings.Contains(string(r.Body), fakePassword) {
			t.Errorf("the password was sent to Connect: %s", r.Body)
		}
	}
	checkSecretFile(t, filepath.Join(dir, file), fakePassword)

	// Redelivered: nothing is sent again.
	if err := f.capture.Ensure(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if n := len(f.fake.RequestsTo(http.MethodPut, "/connectors/cdcq-vault1/config")); n != 1 {
		t.Errorf("%d PUTs, want 1", n)
	}
	if n := len(f.fake.RequestsTo(http.MethodPost, "/connectors/cdcq-vault1/restart")); n != 0 {
		t.Errorf("%d restarts without a rotation", n)
	}

	// Rotation: the first restart hits a rebalance; the retry restarts.
	u, _ := url.Parse(spec.ConnectionString)
	u.User = url.UserPassword(u.User.Username(), "rotated-"+fakePassword)
	spec.ConnectionString = u.String()
	f.fake.FailNext(1, connectfake.Failure{Status: http.StatusConflict, Message: "Cannot complete request momentarily due to stale configuration", Method: http.MethodPost})
	if err := f.capture.Ensure(ctx, spec); err == nil {
		t.Fatal("Ensure succeeded although the restart failed")
	}
	checkSecretFile(t, filepath.Join(dir, file), "rotated-"+fakePassword)
	if err := f.capture.Ensure(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if n := len(f.fake.RequestsTo(http.MethodPost, "/connectors/cdcq-vault1/restart")); n != 2 {
		t.Errorf("%d restart requests, want 2 (one failed)", n)
	}
	if err := f.capture.Ensure(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if n := len(f.fake.RequestsTo(http.MethodPost, "/connectors/cdcq-vault1/restart")); n != 2 {
		t.Errorf("%d restart requests after a redelivery, want still 2", n)
	}
	if n := len(f.fake.RequestsTo(http.MethodPut, "/connectors/cdcq-vault1/config")); n != 1 {
		t.Errorf("%d PUTs after the rotation, want 1: the config names the file", n)
	}

	if err := f.capture.Delete(ctx, spec); err != nil {
		t.Fatal(err)
	}
	assertEmptyDir(t, dir)

	// The delete path that finds the connector gone removes a file that an
	// earlier, interrupted run left.
	if err := os.WriteFile(filepath.Join(dir, file), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.capture.Delete(ctx, spec); err != nil {
		t.Fatal(err)
	}
	assertEmptyDir(t, dir)
}

func checkSecretFile(t *testing.T, path, want string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Errorf("%s does not hold the password", path)
	}
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left in the secrets directory: %s", e.Name())
	}
}
