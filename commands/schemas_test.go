package commands

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/cdcq/cdcq/internal/names"
	"github.com/cdcq/cdcq/internal/secret"
)

// The schemas are a public promise: a publisher that validates a body
// against its schema must not see it dead-lettered. These tests hold the
// schemas and Decode to the same rules.

func TestEveryCommandNameHasASchemaFile(t *testing.T) {
	entries, err := os.ReadDir("schemas")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		files = append(files, e.Name())
	}
	for _, name := range Names {
		if !slices.Contains(files, name+".schema.json") {
			t.Errorf("command %s has no schemas/%s.schema.json", name, name)
		}
	}
	for _, f := range files {
		name, ok := strings.CutSuffix(f, ".schema.json")
		if !ok || !slices.Contains(Names, name) {
			t.Errorf("schemas/%s does not belong to a command in Names (%s)", f, strings.Join(Names, ", "))
		}
	}
}

func TestSchemaDocumentsNameThemselves(t *testing.T) {
	for _, name := range Names {
		doc := schemaDoc(t, name)
		if got := doc["$schema"]; got != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $schema = %v, want draft 2020-12", name, got)
		}
		if got, _ := doc["$id"].(string); !strings.HasSuffix(got, "/commands/schemas/"+name+".schema.json") {
			t.Errorf("%s: $id = %q, want it to end with /commands/schemas/%s.schema.json", name, got, name)
		}
		if got := doc["title"]; got != name {
			t.Errorf("%s: title = %v", name, got)
		}
		if doc["additionalProperties"] != true {
			t.Errorf("%s: unknown properties must stay allowed for forward compatibility", name)
		}
		props, _ := doc["properties"].(map[string]any)
		for field, p := range props {
			if d, _ := p.(map[string]any)["description"].(string); d == "" {
				t.Errorf("%s: property %s has no description", name, field)
			}
		}
	}
}

func TestSchemasShareTheCommonFields(t *testing.T) {
	first := schemaDoc(t, Names[0])["properties"].(map[string]any)
	for _, name := range Names[1:] {
		props := schemaDoc(t, name)["properties"].(map[string]any)
		for _, field := range []string{"commandId", "environmentId", "requestedAt", "connection"} {
			if field == "connection" && name == NameDeleteCachedQuery {
				continue // the only command without a connection
			}
			if !reflect.DeepEqual(props[field], first[field]) {
				t.Errorf("%s: property %s differs from its definition in %s", name, field, Names[0])
			}
		}
	}
}

func TestSchemaRefusesUnknownNames(t *testing.T) {
	for _, name := range []string{"", "Nope", "createDatabaseConnection", "../commands", "CreateDatabaseConnection.schema.json"} {
		if _, err := Schema(name); err == nil {
			t.Errorf("Schema(%q) succeeded", name)
		}
	}
}

func TestEncodedCommandsMatchTheirSchemas(t *testing.T) {
	schemas := compileSchemas(t)
	for i, cmd := range sampleCommands(t) {
		t.Run(fmt.Sprintf("%s_%d", cmd.CommandName(), i), func(t *testing.T) {
			body, err := Encode(cmd)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate(schemas[cmd.CommandName()], body); err != nil {
				t.Fatalf("schema rejects %s:\n%v", body, err)
			}
			got, err := Decode(cmd.CommandName(), body)
			if err != nil {
				t.Fatalf("Decode rejects %s: %v", body, err)
			}
			again, err := Encode(got)
			if err != nil {
				t.Fatal(err)
			}
			if got.CommandName() != cmd.CommandName() || !bytes.Equal(again, body) {
				t.Fatalf("round trip changed the command:\n got %s %s\nwant %s %s", got.CommandName(), again, cmd.CommandName(), body)
			}
		})
	}
}

func TestSchemaExamplesAreValidCommands(t *testing.T) {
	schemas := compileSchemas(t)
	for _, name := range Names {
		examples, _ := schemaDoc(t, name)["examples"].([]any)
		if len(examples) == 0 {
			t.Errorf("%s: the schema has no examples", name)
		}
		for _, ex := range examples {
			body, err := json.Marshal(ex)
			if err != nil {
				t.Fatal(err)
			}
			assertAccepted(t, schemas, name, body)
		}
	}
}

// agreeCase is a body that the schema and Decode must both accept (valid) or
// both reject.
type agreeCase struct {
	name string
	// command limits the case to one command; empty runs it for all.
	command string
	// change edits a valid body of the command; raw replaces it.
	change func(body map[string]any)
	raw    func(valid []byte) []byte
	valid  bool
}

func TestSchemasAndDecodeAgree(t *testing.T) {
	tests := []agreeCase{
		{name: "as_encoded", change: func(map[string]any) {}, valid: true},
		{name: "unknown_field", change: set("priority", 5), valid: true},
		{name: "unknown_null_field", change: set("traceId", nil), valid: true},
		{name: "unknown_connection_field", change: set("connection.sslRootCert", "-----BEGIN CERTIFICATE-----"), valid: true},
		{name: "no_requested_at", change: del("requestedAt"), valid: true},
		{name: "no_redacted_connection", change: del("connection.redacted"), valid: true},
		{name: "requested_at_with_offset_and_nanoseconds", change: set("requestedAt", "2026-01-31T09:30:00.123456789+05:30"), valid: true},
		{name: "requested_at_negative_offset", change: set("requestedAt", "2026-01-31T09:30:00-08:00"), valid: true},
		{name: "requested_at_leap_day", change: set("requestedAt", "2028-02-29T23:59:59Z"), valid: true},
		{name: "environment_id_one_character", change: set("environmentId", "a"), valid: true},
		{name: "environment_id_48_characters", change: set("environmentId", "Z"+strings.Repeat("x_-9", 11)+"abc"), valid: true},
		{name: "environment_id_uuid", change: set("environmentId", "0b8c5a9e-3f1d-4c1e-9a57-1c2b3d4e5f60"), valid: true},
		{name: "command_id_of_spaces", change: set("commandId", " ")},
		// Decode checks only the v2:<key id>: shape; the schema also wants
		// base64url, which every value of that shape is.
		{name: "shortest_sealed_value", change: set("connection.sealed", "v2:0123abcd:A"), valid: true},

		{name: "empty_body", raw: func([]byte) []byte { return nil }},
		{name: "trailing_bracket", raw: func(b []byte) []byte { return append(b, ']') }},
		{name: "field_in_other_case", raw: func(b []byte) []byte { return bytes.Replace(b, []byte(`"commandId"`), []byte(`"CommandID"`), 1) }},
		{name: "nested_field_in_other_case", raw: func(b []byte) []byte { return bytes.Replace(b, []byte(`"sealed"`), []byte(`"SEALED"`), 1) }},
		{name: "not_json", raw: func([]byte) []byte { return []byte("{") }},
		{name: "array", raw: func([]byte) []byte { return []byte("[]") }},
		{name: "string", raw: func([]byte) []byte { return []byte(`"CreateDatabaseConnection"`) }},
		{name: "null", raw: func([]byte) []byte { return []byte("null") }},
		{name: "empty_object", raw: func([]byte) []byte { return []byte("{}") }},
		{name: "two_objects", raw: func(valid []byte) []byte { return append(append(valid, ' '), valid...) }},
		{name: "missing_command_id", change: del("commandId")},
		{name: "empty_command_id", change: set("commandId", "")},
		{name: "null_command_id", change: set("commandId", nil)},
		{name: "numeric_command_id", change: set("commandId", 42)},
		{name: "missing_environment_id", change: del("environmentId")},
		{name: "empty_environment_id", change: set("environmentId", "")},
		{name: "numeric_environment_id", change: set("environmentId", 7)},
		{name: "environment_id_with_dot", change: set("environmentId", "prod.eu")},
		{name: "environment_id_with_space", change: set("environmentId", "prod eu")},
		{name: "environment_id_leading_dash", change: set("environmentId", "-prod")},
		{name: "environment_id_leading_underscore", change: set("environmentId", "_prod")},
		{name: "environment_id_non_ascii", change: set("environmentId", "envé")},
		{name: "environment_id_trailing_newline", change: set("environmentId", "env1\n")},
		{name: "environment_id_49_characters", change: set("environmentId", strings.Repeat("a", 49))},
		{name: "missing_connection", change: del("connection")},
		{name: "null_connection", change: set("connection", nil)},
		{name: "connection_is_a_string", change: set("connection", "postgres://user:pw@host:5432/db")},
		{name: "missing_sealed", change: del("connection.sealed")},
		{name: "empty_sealed", change: set("connection.sealed", "")},
		{name: "null_sealed", change: set("connection.sealed", nil)},
		{name: "plaintext_in_sealed", change: set("connection.sealed", "postgres://user:pw@host:5432/db")},
		{name: "sealed_in_another_format", change: set("connection.sealed", "v3:0123abcd:AAAA")},
		{name: "sealed_in_the_unbound_v1_format", change: set("connection.sealed", "v1:AAAA")},
		{name: "sealed_without_key_id", change: set("connection.sealed", "v2:AAAA")},
		{name: "sealed_with_upper_case_key_id", change: set("connection.sealed", "v2:0123ABCD:AAAA")},
		{name: "sealed_with_upper_case_prefix", change: set("connection.sealed", "V2:0123abcd:AAAA")},
		{name: "numeric_sealed", change: set("connection.sealed", 1)},
		{name: "numeric_redacted", change: set("connection.redacted", 1)},
		{name: "requested_at_in_words", change: set("requestedAt", "yesterday")},
		{name: "requested_at_unix_seconds", change: set("requestedAt", 1769851800)},
		{name: "requested_at_date_only", change: set("requestedAt", "2026-01-31")},
		{name: "requested_at_without_zone", change: set("requestedAt", "2026-01-31T09:30:00")},
		{name: "requested_at_month_13", change: set("requestedAt", "2026-13-01T09:30:00Z")},
		{name: "requested_at_february_30", change: set("requestedAt", "2028-02-30T09:30:00Z")},
		{name: "requested_at_february_29_of_common_year", change: set("requestedAt", "2026-02-29T09:30:00Z")},
		{name: "requested_at_lower_case_t_and_z", change: set("requestedAt", "2026-01-31t09:30:00z")},
		{name: "requested_at_leap_second", change: set("requestedAt", "2026-12-31T23:59:60Z")},

		{name: "schema_with_surrounding_space", command: NameCreateCachedQuery, change: set("schema", "\n  model t {\n  id Int @id\n}\n\n"), valid: true},
		{name: "sql_query_non_ascii", command: NameCreateCachedQuery, change: set("sqlQuery", "SELECT région, COUNT(*) FROM ventes GROUP BY région"), valid: true},
		{name: "query_id_not_from_the_api", command: NameCreateCachedQuery, change: set("queryId", "orders_by_customer"), valid: true},
		{name: "query_id_with_dash", command: NameCreateCachedQuery, change: set("queryId", "orders-by-customer")},
		{name: "missing_query_id", command: NameCreateCachedQuery, change: del("queryId")},
		{name: "empty_query_id", command: NameCreateCachedQuery, change: set("queryId", "")},
		{name: "null_query_id", command: NameCreateCachedQuery, change: set("queryId", nil)},
		{name: "numeric_query_id", command: NameCreateCachedQuery, change: set("queryId", 3)},
		{name: "missing_schema", command: NameCreateCachedQuery, change: del("schema")},
		{name: "blank_schema", command: NameCreateCachedQuery, change: set("schema", " \n\t\r\v\f")},
		{name: "schema_of_unicode_spaces", command: NameCreateCachedQuery, change: set("schema", "\u0085\u00a0\u2003\u2028\u3000")},
		{name: "numeric_schema", command: NameCreateCachedQuery, change: set("schema", 1)},
		{name: "missing_sql_query", command: NameCreateCachedQuery, change: del("sqlQuery")},
		{name: "empty_sql_query", command: NameCreateCachedQuery, change: set("sqlQuery", "")},
		{name: "blank_sql_query", command: NameCreateCachedQuery, change: set("sqlQuery", "   \n")},
		{name: "null_sql_query", command: NameCreateCachedQuery, change: set("sqlQuery", nil)},
		{name: "sql_query_as_object", command: NameCreateCachedQuery, change: set("sqlQuery", map[string]any{"select": "*"})},
	}
	schemas := compileSchemas(t)
	for _, tt := range tests {
		for _, name := range Names {
			if tt.command != "" && tt.command != name {
				continue
			}
			if name == NameDeleteCachedQuery && touchesConnection(tt) {
				continue // DeleteCachedQuery carries no connection
			}
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				valid := validBody(t, name)
				var body []byte
				if tt.raw != nil {
					body = tt.raw(valid)
				} else {
					var m map[string]any
					if err := json.Unmarshal(valid, &m); err != nil {
						t.Fatal(err)
					}
					tt.change(m)
					var err error
					if body, err = json.Marshal(m); err != nil {
						t.Fatal(err)
					}
				}
				if tt.valid {
					assertAccepted(t, schemas, name, body)
				} else {
					assertRejected(t, schemas, name, body)
				}
			})
		}
	}
}

// The environmentId pattern must accept exactly what ValidateEnvironmentID
// accepts; every character of the Basic Multilingual Plane is tried first
// and second.
func TestEnvironmentIDPatternIsValidateEnvironmentID(t *testing.T) {
	re := schemaPattern(t, NameCreateDatabaseConnection, "environmentId")
	check := func(id string) {
		t.Helper()
		want := names.ValidateEnvironmentID(id) == nil
		if got := re.MatchString(id); got != want {
			t.Errorf("pattern accepts %q: %v; ValidateEnvironmentID accepts it: %v", id, got, want)
		}
	}
	for r := rune(0); r <= 0xFFFF; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		check(string(r))
		check("a" + string(r))
	}
	for n := 0; n <= names.MaxEnvironmentIDLength+2; n++ {
		check(strings.Repeat("a", n))
		check(strings.Repeat("7-", n/2))
	}
}

// The schema and sqlQuery patterns must call blank exactly what
// strings.TrimSpace, which Decode uses, removes.
func TestNotBlankPatternIsTrimSpace(t *testing.T) {
	for _, field := range []string{"schema", "sqlQuery"} {
		re := schemaPattern(t, NameCreateCachedQuery, field)
		for r := rune(0); r <= 0xFFFF; r++ {
			if !utf8.ValidRune(r) {
				continue
			}
			for _, s := range []string{string(r), " " + string(r) + "\t"} {
				want := strings.TrimSpace(s) != ""
				if got := re.MatchString(s); got != want {
					t.Errorf("%s pattern accepts %q: %v; Decode accepts it: %v", field, s, got, want)
				}
			}
		}
	}
}

// Go's time parser accepts some strings RFC 3339 does not (one-digit hours,
// a comma before the fraction), so the schema is stricter than Decode for
// requestedAt. It must never be looser: whatever the schema accepts, Decode
// accepts.
func TestRequestedAtSchemaIsNoLooserThanDecode(t *testing.T) {
	schemas := compileSchemas(t)
	sch := schemas[NameCreateDatabaseConnection]
	var base map[string]any
	if err := json.Unmarshal(validBody(t, NameCreateDatabaseConnection), &base); err != nil {
		t.Fatal(err)
	}
	var candidates []string
	for _, y := range []string{"0000", "1970", "2024", "2026", "2100", "9999"} {
		for _, m := range []string{"00", "01", "02", "04", "12", "13"} {
			for _, d := range []string{"00", "01", "28", "29", "30", "31", "32"} {
				candidates = append(candidates, y+"-"+m+"-"+d+"T12:00:00Z")
			}
		}
	}
	for _, h := range []string{"00", "9", "09", "23", "24"} {
		for _, mi := range []string{"00", "59", "60"} {
			for _, s := range []string{"00", "59", "60", "5"} {
				for _, frac := range []string{"", ".", ".1", ".123456789", ".1234567890123", ",5"} {
					candidates = append(candidates, "2026-01-31T"+h+":"+mi+":"+s+frac+"Z")
				}
			}
		}
	}
	for _, sep := range []string{"T", "t", " ", "_"} {
		for _, zone := range []string{"Z", "z", "", "+00:00", "-00:00", "+05:30", "-08:00", "+23:59", "+24:00", "+23:60", "+0530", "+05", "UTC"} {
			candidates = append(candidates, "2026-01-31"+sep+"09:30:00"+zone)
		}
	}
	accepted := 0
	for _, ts := range candidates {
		base["requestedAt"] = ts
		body, err := json.Marshal(base)
		if err != nil {
			t.Fatal(err)
		}
		if validate(sch, body) != nil {
			continue
		}
		accepted++
		if _, err := Decode(NameCreateDatabaseConnection, body); err != nil {
			t.Errorf("schema accepts requestedAt %q but Decode rejects it: %v", ts, err)
		}
	}
	if accepted < 100 {
		t.Fatalf("the schema accepted only %d of %d timestamps; the test is not testing much", accepted, len(candidates))
	}
}

// Every JSON example in docs/commands.md under a heading that names a
// command must be a body that command accepts.
func TestDocsExamplesAreValidCommands(t *testing.T) {
	f, err := os.Open("../docs/commands.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	schemas := compileSchemas(t)
	var (
		section string
		inJSON  bool
		block   bytes.Buffer
		checked = map[string]int{}
		sc      = bufio.NewScanner(f)
	)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case inJSON && strings.HasPrefix(line, "```"):
			inJSON = false
			if section != "" && bytes.Contains(block.Bytes(), []byte(`"commandId"`)) {
				assertAccepted(t, schemas, section, block.Bytes())
				checked[section]++
			}
		case inJSON:
			block.WriteString(line + "\n")
		case strings.HasPrefix(line, "```json"):
			inJSON = true
			block.Reset()
		case strings.HasPrefix(line, "#"):
			section = ""
			for _, name := range Names {
				if strings.Contains(line, name) {
					section = name
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, name := range Names {
		if checked[name] == 0 {
			t.Errorf("docs/commands.md has no JSON example under a heading naming %s", name)
		}
	}
}

func assertAccepted(t *testing.T, schemas map[string]*jsonschema.Schema, name string, body []byte) {
	t.Helper()
	if err := validate(schemas[name], body); err != nil {
		t.Errorf("%s schema rejects %s:\n%v", name, body, err)
	}
	if _, err := Decode(name, body); err != nil {
		t.Errorf("Decode(%s) rejects %s: %v", name, body, err)
	}
}

func assertRejected(t *testing.T, schemas map[string]*jsonschema.Schema, name string, body []byte) {
	t.Helper()
	if err := validate(schemas[name], body); err == nil {
		t.Errorf("%s schema accepts %s", name, body)
	}
	if _, err := Decode(name, body); err == nil {
		t.Errorf("Decode(%s) accepts %s", name, body)
	} else if !IsDecodeError(err) {
		t.Errorf("Decode(%s) error is not a DecodeError: %v", name, err)
	}
}

// validate checks body against sch the way a publisher would: it must be one
// JSON value that the schema accepts.
func validate(sch *jsonschema.Schema, body []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

// compileSchemas compiles every command's schema, asserting formats as
// well, since requestedAt relies on format date-time for calendar dates.
func compileSchemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	ids := map[string]string{}
	for _, name := range Names {
		raw, err := Schema(name)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s schema is not JSON: %v", name, err)
		}
		id, _ := doc.(map[string]any)["$id"].(string)
		if id == "" {
			t.Fatalf("%s schema has no $id", name)
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatalf("add %s schema: %v", name, err)
		}
		ids[name] = id
	}
	out := map[string]*jsonschema.Schema{}
	for name, id := range ids {
		sch, err := c.Compile(id)
		if err != nil {
			t.Fatalf("compile %s schema: %v", name, err)
		}
		out[name] = sch
	}
	return out
}

func schemaDoc(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := Schema(name)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s schema: %v", name, err)
	}
	return doc
}

// schemaPattern compiles a top-level property's pattern with Go's regexp,
// the engine the validator uses.
func schemaPattern(t *testing.T, name, field string) *regexp.Regexp {
	t.Helper()
	prop, _ := schemaDoc(t, name)["properties"].(map[string]any)[field].(map[string]any)
	p, _ := prop["pattern"].(string)
	if p == "" {
		t.Fatalf("%s schema: property %s has no pattern", name, field)
	}
	return regexp.MustCompile(p)
}

func testSealer(t *testing.T) *secret.Sealer {
	t.Helper()
	key, err := secret.ParseKey(secret.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	s, err := secret.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sampleCommands are valid commands with the edge values a publisher may
// send: shortest and longest environmentId, zero and zoned times, an empty
// redaction, non-ASCII query text.
func sampleCommands(t *testing.T) []Command {
	s := testSealer(t)
	conn := Connection{
		Sealed:   s.Seal("postgres://alice:s3cret@db.internal:5432/shop?sslmode=require", "env1"),
		Redacted: "postgres://alice:***@db.internal:5432/shop?sslmode=require",
	}
	at := time.Date(2026, 1, 31, 9, 30, 0, 123456789, time.UTC)
	india := time.FixedZone("IST", 5*3600+1800)
	pacific := time.FixedZone("PST", -8*3600)
	const schema = "model orders {\n  id          Int @id\n  customer_id Int\n  total       Int\n}\n"
	const query = "SELECT customer_id, SUM(total) AS revenue FROM orders GROUP BY customer_id"
	return []Command{
		CreateDatabaseConnection{Meta: Meta{CommandID: "3b0c2f4e-8d1a-4f3e-9c55-0a6f1e2d7b91", EnvironmentID: "env1", RequestedAt: at}, Connection: conn},
		CreateDatabaseConnection{Meta: Meta{CommandID: "1", EnvironmentID: "a"}, Connection: Connection{Sealed: s.Seal("", "a")}},
		CreateDatabaseConnection{Meta: Meta{CommandID: "c", EnvironmentID: "Z" + strings.Repeat("y_-0", 11) + "abc", RequestedAt: at.In(india)}, Connection: conn},
		DeleteDatabaseConnection{Meta: Meta{CommandID: "9a4d1c2b-5e6f-4a70-8b19-2c3d4e5f6a7b", EnvironmentID: "prod_eu-1", RequestedAt: at.In(pacific)}, Connection: conn},
		DeleteDatabaseConnection{Meta: Meta{CommandID: "d", EnvironmentID: "0b8c5a9e-3f1d-4c1e-9a57-1c2b3d4e5f60"}, Connection: Connection{Sealed: conn.Sealed}},
		CreateCachedQuery{
			Meta:       Meta{CommandID: "5f2e8a71-0c3b-4d9e-a6f4-7b8c9d0e1f2a", EnvironmentID: "env1", RequestedAt: at},
			Connection: conn,
			QueryID:    names.QueryID("env1", schema, query),
			Schema:     schema,
			SQLQuery:   query,
		},
		CreateCachedQuery{
			Meta:       Meta{CommandID: "q", EnvironmentID: "shop-FR", RequestedAt: at.In(india)},
			Connection: conn,
			QueryID:    "q_1",
			Schema:     "\tmodel ventes {\n\tid Int @id\n\trégion String\n}",
			SQLQuery:   "SELECT région, COUNT(*) AS n\nFROM ventes\nGROUP BY région -- « par région »",
		},
		DeleteCachedQuery{Meta: Meta{CommandID: "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f", EnvironmentID: "env1", RequestedAt: at}, QueryID: names.QueryID("env1", schema, query)},
	}
}

// touchesConnection reports whether a case edits the connection object.
func touchesConnection(tt agreeCase) bool {
	if strings.Contains(tt.name, "connection") || strings.Contains(tt.name, "sealed") || strings.Contains(tt.name, "nested") {
		return true
	}
	if tt.raw != nil {
		return false
	}
	body := map[string]any{"connection": map[string]any{"sealed": "x", "redacted": "y"}}
	before, _ := json.Marshal(body)
	func() {
		defer func() { _ = recover() }()
		tt.change(body)
	}()
	after, _ := json.Marshal(body)
	return !bytes.Equal(before, after)
}

// validBody is an encoded valid command named name.
func validBody(t *testing.T, name string) []byte {
	t.Helper()
	for _, cmd := range sampleCommands(t) {
		if cmd.CommandName() == name {
			body, err := Encode(cmd)
			if err != nil {
				t.Fatal(err)
			}
			return body
		}
	}
	t.Fatalf("no sample command named %s", name)
	return nil
}

// set returns a change that sets the field at a dotted path.
func set(path string, v any) func(map[string]any) {
	return func(body map[string]any) {
		m, key := walk(body, path)
		m[key] = v
	}
}

// del returns a change that removes the field at a dotted path.
func del(path string) func(map[string]any) {
	return func(body map[string]any) {
		m, key := walk(body, path)
		delete(m, key)
	}
}

func walk(body map[string]any, path string) (map[string]any, string) {
	parts := strings.Split(path, ".")
	m := body
	for _, p := range parts[:len(parts)-1] {
		m = m[p].(map[string]any)
	}
	return m, parts[len(parts)-1]
}
