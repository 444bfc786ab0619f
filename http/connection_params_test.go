package httpapi

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestConnectionStringParametersAreRefused: a connection string whose
// parameters would name another server or user, or make the workers read
// files, is answered 422 naming the parameter, and nothing is published.
func TestConnectionStringParametersAreRefused(t *testing.T) {
	base := "postgres://alice:" + testPassword + "@db.example.com/shop"
	for _, tt := range []struct{ suffix, want string }{
		{"?host=169.254.169.254", `"host"`},
		{"?h%6Fst=127.0.0.1", `"host"`},
		{"?hostaddr=127.0.0.1", `"hostaddr"`},
		{"?port=6432", `"port"`},
		{"?user=postgres", `"user"`},
		{"?dbname=postgres", `"dbname"`},
		{"?passfile=/root/.pgpass", `"passfile"`},
		{"?sslkey=/etc/cdcq/tls.key", `"sslkey"`},
		{"?servicefile=/tmp/x.conf&service=x", `"servicefile"`},
		{"?service=prod", `"service"`},
		{"?options=-c%20search_path%3Devil", `"options"`},
		{"?sslmode=require&sslmode=disable", "more than once"},
	} {
		for _, path := range []string{"/createDatabaseConnection", "/createCachedQuery"} {
			t.Run(path+tt.suffix, func(t *testing.T) {
				h := newHarness(t)
				body, err := json.Marshal(map[string]string{
					"connectionString": base + tt.suffix, "environmentId": testEnv,
					"schema": "model A { id Int @id }", "sqlQuery": "SELECT 1",
				})
				if err != nil {
					t.Fatal(err)
				}
				res := h.do(t, rawRequest(http.MethodPost, path, "application/json", string(body)))
				wantRefused(t, h, res, http.StatusUnprocessableEntity, CodeInvalidConnectionString, fieldConnectionString, tt.want)
			})
		}
	}
}

// TestMultiHostConnectionStringIsRefused: several hosts are one 422.
func TestMultiHostConnectionStringIsRefused(t *testing.T) {
	h := newHarness(t)
	body := `{"connectionString":"postgres://alice:` + testPassword + `@h1,h2/shop","environmentId":"env-1"}`
	res := h.do(t, rawRequest(http.MethodPost, "/createDatabaseConnection", "application/json", body))
	wantRefused(t, h, res, http.StatusUnprocessableEntity, CodeInvalidConnectionString, fieldConnectionString, "several hosts")
}
