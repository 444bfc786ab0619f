package dbzjson

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func v(s string) Value { return &s }

// customers is the relation of the golden files: the Debezium tutorial's
// table with a few more types.
func customers() *Relation {
	return &Relation{Schema: "public", Table: "customers", Columns: []Column{
		{Name: "id", TypeOID: oidInt4, TypeName: "integer", TypeMod: -1, Kind: 'b', Key: true},
		{Name: "first_name", TypeOID: oidVarchar, TypeName: "character varying(255)", TypeMod: 259, Kind: 'b'},
		{Name: "email", TypeOID: oidText, TypeName: "text", TypeMod: -1, Kind: 'b'},
		{Name: "balance", TypeOID: oidNumeric, TypeName: "numeric(12,2)", TypeMod: 12<<16 | 2 + 4, Kind: 'b'},
		{Name: "joined", TypeOID: oidTimestamptz, TypeName: "timestamp with time zone", TypeMod: -1, Kind: 'b'},
		{Name: "tags", TypeOID: 1009, TypeName: "text[]", TypeMod: -1, Kind: 'a', ElemOID: oidText},
		{Name: "prefs", TypeOID: oidJSONB, TypeName: "jsonb", TypeMod: -1, Kind: 'b'},
		{Name: "photo", TypeOID: oidBytea, TypeName: "bytea", TypeMod: -1, Kind: 'b'},
		{Name: "active", TypeOID: oidBool, TypeName: "boolean", TypeMod: -1, Kind: 'b'},
		{Name: "score", TypeOID: oidFloat8, TypeName: "double precision", TypeMod: -1, Kind: 'b'},
	}}
}

func customerRow() []Value {
	return []Value{
		v("1001"), v("Sally"), v("sally.thomas@acme.com"), v("1234.50"),
		v("2024-03-01 09:15:00.25+00"), v(`{vip,"early adopter"}`), v(`{"lang": "en"}`),
		v(`\x89504e47`), v("t"), v("0.75"),
	}
}

func streamingSource() Source {
	return Source{
		Version:  Version("0.1.0"),
		Name:     "env42",
		TsMs:     1709284500123,
		TsUs:     1709284500123456,
		DB:       "shop",
		TxID:     767,
		LSN:      24023128,
		Sequence: Sequence(24023119, 24023128),
	}
}

const processedAt = 1709284500456

func goldenEvents(t *testing.T) map[string][]byte {
	t.Helper()
	rel := customers()
	row := customerRow()
	events := map[string][]byte{}
	must := func(name string, b []byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		events[name] = b
	}

	b, err := Envelope(rel, OpCreate, nil, row, streamingSource(), processedAt)
	must("envelope_c", b, err)

	after := append([]Value(nil), row...)
	after[1] = v("Sally Ann")
	after[7] = Unchanged // TOASTed photo not sent again
	b, err = Envelope(rel, OpUpdate, row, after, streamingSource(), processedAt)
	must("envelope_u", b, err)

	oldKey := make([]Value, len(row)) // REPLICA IDENTITY DEFAULT: the key only
	oldKey[0] = row[0]
	b, err = Envelope(rel, OpDelete, oldKey, nil, streamingSource(), processedAt)
	must("envelope_d", b, err)

	snap := Source{Version: Version("0.1.0"), Name: "env42", TsMs: 1709284400000, Snapshot: "first", DB: "shop",
		TxID: 765, LSN: 24020000, Sequence: Sequence(0, 24020000)}
	b, err = Envelope(rel, OpRead, nil, row, snap, processedAt)
	must("envelope_r", b, err)

	trunc := streamingSource()
	trunc.Schema, trunc.Table = "public", "customers"
	b, err = TruncateEnvelope(trunc, processedAt)
	must("envelope_t", b, err)

	b, err = Key(rel, row)
	must("key", b, err)
	return events
}

func TestGoldenEnvelopes(t *testing.T) {
	for name, got := range goldenEvents(t) {
		path := filepath.Join("testdata", name+".golden.json")
		if *update {
			if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if !bytes.Equal(got, bytes.TrimSuffix(want, []byte("\n"))) {
			t.Errorf("%s differs from %s\n got %s\nwant %s", name, path, got, want)
		}
	}
}

// TestEnvelopeShape checks the golden events field by field against the
// documented envelope, independently of the golden bytes.
func TestEnvelopeShape(t *testing.T) {
	events := goldenEvents(t)
	// Debezium 3.x's envelope puts transaction after source, and its
	// PostgreSQL source ends with origin and origin_lsn (the cluster test
	// saw both).
	wantKeys := []string{"before", "after", "source", "transaction", "op", "ts_ms", "ts_us", "ts_ns"}
	wantSource := []string{"version", "connector", "name", "ts_ms", "snapshot", "db", "sequence", "ts_us", "ts_ns", "schema", "table", "txId", "lsn", "xmin", "origin", "origin_lsn"}
	for _, name := range []string{"envelope_c", "envelope_u", "envelope_d", "envelope_r", "envelope_t"} {
		b := events[name]
		if got := topLevelKeys(t, b); strings.Join(got, ",") != strings.Join(wantKeys, ",") {
			t.Errorf("%s: fields %v, want %v", name, got, wantKeys)
		}
		var env struct {
			Before, After map[string]any
			Source        json.RawMessage
			Op            string
			TsMs          int64 `json:"ts_ms"`
			TsUs          int64 `json:"ts_us"`
			TsNs          int64 `json:"ts_ns"`
			Transaction   *struct{}
		}
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := topLevelKeys(t, env.Source); strings.Join(got, ",") != strings.Join(wantSource, ",") {
			t.Errorf("%s: source fields %v, want %v", name, got, wantSource)
		}
		if env.Op != name[len(name)-1:] || env.TsMs != processedAt || env.TsUs != processedAt*1000 || env.TsNs != processedAt*1_000_000 || env.Transaction != nil {
			t.Errorf("%s: op %q ts %d/%d/%d transaction %v", name, env.Op, env.TsMs, env.TsUs, env.TsNs, env.Transaction)
		}
		var src map[string]any
		_ = json.Unmarshal(env.Source, &src)
		if src["connector"] != "postgresql" || src["name"] != "env42" || src["db"] != "shop" ||
			src["schema"] != "public" || src["table"] != "customers" || src["xmin"] != nil ||
			src["origin"] != nil || src["origin_lsn"] != nil {
			t.Errorf("%s: source %v", name, src)
		}
		switch name {
		case "envelope_c", "envelope_r":
			if env.Before != nil || env.After["id"] != 1001.0 || env.After["photo"] != "iVBORw==" {
				t.Errorf("%s: before %v after %v", name, env.Before, env.After)
			}
		case "envelope_u":
			if env.Before["first_name"] != "Sally" || env.After["first_name"] != "Sally Ann" || env.After["photo"] != UnavailableValuePlaceholder {
				t.Errorf("%s: before %v after %v", name, env.Before, env.After)
			}
		case "envelope_d":
			if env.After != nil || env.Before["id"] != 1001.0 || env.Before["email"] != nil || len(env.Before) != 10 {
				t.Errorf("%s: before %v after %v", name, env.Before, env.After)
			}
		case "envelope_t":
			if env.Before != nil || env.After != nil {
				t.Errorf("%s: before %v after %v", name, env.Before, env.After)
			}
		}
	}
	if src := sourceOf(t, events["envelope_r"]); src["snapshot"] != "first" || src["sequence"] != `[null,"24020000"]` || src["ts_us"] != 1709284400000000.0 {
		t.Errorf("snapshot source %v", src)
	}
	if src := sourceOf(t, events["envelope_c"]); src["snapshot"] != "false" || src["sequence"] != `["24023119","24023128"]` ||
		src["txId"] != 767.0 || src["lsn"] != 24023128.0 || src["ts_us"] != 1709284500123456.0 || src["ts_ns"] != 1709284500123456000.0 {
		t.Errorf("streaming source %v", src)
	}
	if string(events["key"]) != `{"id":1001}` {
		t.Errorf("key %s", events["key"])
	}
}

func topLevelKeys(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", b)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func sourceOf(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var env struct{ Source map[string]any }
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	return env.Source
}

func TestKey(t *testing.T) {
	rel := &Relation{Schema: "s", Table: "t", Columns: []Column{
		{Name: "a", TypeOID: oidText, TypeMod: -1, Kind: 'b'},
		{Name: "k2", TypeOID: oidInt8, TypeMod: -1, Kind: 'b', Key: true},
		{Name: "b", TypeOID: oidText, TypeMod: -1, Kind: 'b'},
		{Name: "k1", TypeOID: oidUUID, TypeMod: -1, Kind: 'b', Key: true},
	}}
	row := []Value{v("x"), v("7"), v("y"), v("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")}
	tests := []struct {
		name string
		rel  *Relation
		want string
	}{
		{"composite_in_column_order", rel, `{"k2":7,"k1":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}`},
		// Debezium lists the primary key's columns in its order (the
		// cluster test's PRIMARY KEY (a, b) on columns b, a is {"a":…,"b":…}).
		{"composite_in_primary_key_order", &Relation{Schema: "s", Table: "t", Columns: []Column{
			rel.Columns[0], {Name: "k2", TypeOID: oidInt8, TypeMod: -1, Kind: 'b', Key: true, KeyPos: 2},
			rel.Columns[2], {Name: "k1", TypeOID: oidUUID, TypeMod: -1, Kind: 'b', Key: true, KeyPos: 1},
		}}, `{"k1":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11","k2":7}`},
		{"no_key_columns", &Relation{Schema: "s", Table: "log", Columns: []Column{{Name: "a", TypeOID: oidText, TypeMod: -1}, {Name: "b", TypeOID: oidText, TypeMod: -1}, {Name: "c", TypeOID: oidText, TypeMod: -1}, {Name: "d", TypeOID: oidText, TypeMod: -1}}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Key(tc.rel, row)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if got != nil {
					t.Fatalf("want a nil key, got %s", got)
				}
				return
			}
			if string(got) != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestOrigin: a transaction another server replicated into the source
// names its replication origin and the origin's commit LSN.
func TestOrigin(t *testing.T) {
	src := streamingSource()
	src.Origin, src.OriginLSN = "pg_17", 12345
	b, err := Envelope(customers(), OpCreate, nil, customerRow(), src, processedAt)
	if err != nil {
		t.Fatal(err)
	}
	if got := sourceOf(t, b); got["origin"] != "pg_17" || got["origin_lsn"] != 12345.0 {
		t.Errorf("source %v", got)
	}
}

// TestOmittedColumns: a column of a type Debezium has no schema for is
// not in before, after or the key.
func TestOmittedColumns(t *testing.T) {
	rel := &Relation{Schema: "s", Table: "t", Columns: []Column{
		{Name: "lsn", TypeOID: 3220, TypeName: "pg_lsn", TypeMod: -1, Kind: 'b', Key: true},
		{Name: "id", TypeOID: oidInt4, TypeName: "integer", TypeMod: -1, Kind: 'b', Key: true},
		{Name: "b", TypeOID: oidBox, TypeName: "box", TypeMod: -1, Kind: 'b'},
		{Name: "n", TypeOID: oidText, TypeName: "text", TypeMod: -1, Kind: 'b'},
		{Name: "m", TypeOID: 791, TypeName: "money[]", TypeMod: -1, Kind: 'a', ElemOID: oidMoney},
	}}
	row := []Value{v("0/16B3748"), v("1"), v("(1,1),(0,0)"), v("x"), v("{$1.00}")}
	enc := NewEncoder(rel)
	key, err := enc.Key(row)
	if err != nil || string(key) != `{"id":1}` {
		t.Errorf("key %s, %v", key, err)
	}
	b, err := enc.Envelope(OpUpdate, row, row, streamingSource(), processedAt)
	if err != nil {
		t.Fatal(err)
	}
	var env struct{ Before, After json.RawMessage }
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if string(env.Before) != `{"id":1,"n":"x"}` || string(env.After) != `{"id":1,"n":"x"}` {
		t.Errorf("before %s after %s", env.Before, env.After)
	}
}

// TestSnapshotEncoder: snapshot rows encode dates and name columns as
// Debezium's JDBC path does, streamed rows as its pgoutput path does.
func TestSnapshotEncoder(t *testing.T) {
	rel := &Relation{Schema: "s", Table: "t", Columns: []Column{
		{Name: "id", TypeOID: oidInt4, TypeName: "integer", TypeMod: -1, Kind: 'b', Key: true},
		{Name: "d", TypeOID: oidDate, TypeName: "date", TypeMod: -1, Kind: 'b'},
		{Name: "n", TypeOID: oidName, TypeName: "name", TypeMod: -1, Kind: 'b'},
	}}
	row := []Value{v("1"), v("0044-03-15 BC"), v("pg_class")}
	for _, tc := range []struct {
		enc  *Encoder
		want string
	}{
		{NewEncoder(rel), `{"id":1,"d":"-0043-03-15Z","n":null}`},
		{NewSnapshotEncoder(rel), `{"id":1,"d":"0044-03-15Z","n":"pg_class"}`},
	} {
		b, err := tc.enc.Envelope(OpRead, nil, row, streamingSource(), processedAt)
		if err != nil {
			t.Fatal(err)
		}
		var env struct{ After json.RawMessage }
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatal(err)
		}
		if string(env.After) != tc.want {
			t.Errorf("after %s, want %s", env.After, tc.want)
		}
	}
}

func TestEnvelopeErrors(t *testing.T) {
	rel := customers()
	row := customerRow()
	src := streamingSource()
	bad := append([]Value(nil), row...)
	bad[0] = v("not a number")
	tests := []struct {
		name          string
		op            Op
		before, after []Value
		src           Source
		want          string
	}{
		{"create_without_after", OpCreate, nil, nil, src, "needs an after image"},
		{"delete_with_after", OpDelete, row, row, src, "no after image"},
		{"unknown_op", 'x', nil, row, src, "unknown op"},
		{"short_row", OpCreate, nil, row[:3], src, "row has 3 values"},
		{"bad_value", OpCreate, nil, bad, src, `column "id" of type integer`},
		{"bad_snapshot", OpRead, nil, row, Source{Snapshot: "yes"}, "snapshot"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Envelope(rel, tc.op, tc.before, tc.after, tc.src, 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := TruncateEnvelope(Source{Name: "x"}, 1); err == nil {
		t.Fatal("truncate without table: want an error")
	}
}

func TestTopic(t *testing.T) {
	// docs: topics are topicPrefix.schemaName.tableName; source
	// (TopicNameSanitizer): characters Kafka does not allow become '_'.
	tests := []struct{ prefix, schema, table, want string }{
		{"env42", "public", "customers", "env42.public.customers"},
		{"env-1", "my schema", "Tab$le", "env-1.my_schema.Tab_le"},
		{"e", "s", "zürich", "e.s.z_rich"},
		{"e", "s", "t😀", "e.s.t__"},
	}
	for _, tc := range tests {
		if got := Topic(tc.prefix, &Relation{Schema: tc.schema, Table: tc.table}); got != tc.want {
			t.Errorf("Topic(%q, %q.%q) = %q, want %q", tc.prefix, tc.schema, tc.table, got, tc.want)
		}
	}
}

func TestSequence(t *testing.T) {
	// docs: "Stringified JSON array of additional offset information. The
	// first value is always the last committed LSN, the second value is
	// always the current LSN. Either value may be null."
	if got := Sequence(24023119, 24023128); got != `["24023119","24023128"]` {
		t.Errorf("got %s", got)
	}
	if got := Sequence(0, 5); got != `[null,"5"]` {
		t.Errorf("got %s", got)
	}
}

// TestEncoderCacheNoticesChanges makes sure the free functions do not keep
// using an encoder after the Relation changed in place.
func TestEncoderCacheNoticesChanges(t *testing.T) {
	rel := &Relation{Schema: "s", Table: "t", Columns: []Column{{Name: "a", TypeOID: oidInt4, TypeMod: -1, Key: true}}}
	row := []Value{v("1")}
	if b, _ := Key(rel, row); string(b) != `{"a":1}` {
		t.Fatalf("got %s", b)
	}
	rel.Columns[0].TypeOID = oidText
	if b, _ := Key(rel, row); string(b) != `{"a":"1"}` {
		t.Fatalf("after the change got %s", b)
	}
}

func TestSnapshotMarker(t *testing.T) {
	// source (RelationalSnapshotChangeEventSource.setSnapshotMarker): last
	// of the last table wins over first of the first table.
	tests := []struct {
		name                                             string
		firstTable, lastTable, firstInTable, lastInTable bool
		want                                             string
	}{
		{"only_row_of_only_table", true, true, true, true, "last"},
		{"first_row", true, false, true, false, "first"},
		{"middle", true, true, false, false, "true"},
		{"end_of_a_table", false, false, false, true, "last_in_data_collection"},
		{"start_of_a_table", false, true, true, false, "first_in_data_collection"},
		{"end_of_first_table", true, false, false, true, "last_in_data_collection"},
	}
	for _, tc := range tests {
		if got := SnapshotMarker(tc.firstTable, tc.lastTable, tc.firstInTable, tc.lastInTable); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestConcurrentUse runs the free functions and a shared Encoder from
// several goroutines (meaningful under -race).
func TestConcurrentUse(t *testing.T) {
	rel := customers()
	enc := NewEncoder(rel)
	want, err := enc.Envelope(OpCreate, nil, customerRow(), streamingSource(), processedAt)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			row := customerRow()
			for i := 0; i < 200; i++ {
				a, err1 := enc.Envelope(OpCreate, nil, row, streamingSource(), processedAt)
				b, err2 := Envelope(rel, OpCreate, nil, row, streamingSource(), processedAt)
				if err1 != nil || err2 != nil || !bytes.Equal(a, want) || !bytes.Equal(b, want) {
					done <- fmt.Errorf("iteration %d: %v %v", i, err1, err2)
					return
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
