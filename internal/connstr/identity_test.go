package connstr

import (
	"strings"
	"testing"
)

// A string an earlier cdcq stored is read for its identity as the driver
// read it, also with parameters Parse now refuses; what is not a
// connection string at all is an error that does not repeat it.
func TestStoredIdentity(t *testing.T) {
	for s, want := range map[string]Conn{
		"postgres://alice:pw@db:5432/shop":                                 {Host: "db", Port: 5432, Database: "shop", User: "alice"},
		"postgres://alice:pw@db/shop?target_session_attrs=read-write":      {Host: "db", Port: 5432, Database: "shop", User: "alice"},
		"postgres://alice:pw@db:5432/shop?host=other&port=6000&dbname=crm": {Host: "other", Port: 6000, Database: "crm", User: "alice"},
	} {
		got, err := StoredIdentity(s)
		if err != nil || len(Differences(got, want)) > 0 {
			t.Errorf("StoredIdentity(%q) = %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, s := range []string{"host=db password=secret-1", "postgres://alice:secret-1@db:99999/shop"} {
		if _, err := StoredIdentity(s); err == nil || strings.Contains(err.Error(), "secret-1") {
			t.Errorf("StoredIdentity(%q): %v", s, err)
		}
	}
}
