package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/dbzjson/dbzjsontest"
)

// captureTables are the source tables of the capture comparison: every
// type cdcq maps (dbzjsontest.Columns) behind a primary key, with a text
// column stored out of line; a table without a primary key (null keys);
// a table whose primary key lists its columns in another order than the
// table does.
const captureTables = `
CREATE TABLE all_types (id integer PRIMARY KEY, c_toast text, %s);
ALTER TABLE all_types ALTER COLUMN c_toast SET STORAGE EXTERNAL;
CREATE TABLE notes (body text, n integer);
CREATE TABLE pairs (b text, a integer, v text, PRIMARY KEY (a, b))`

// TestClusterDebeziumRecordsMatchEmbeddedCapture captures one source
// database twice, with real Debezium on Kafka Connect and with the
// embedded capture, and compares what they wrote record by record: the
// snapshot, then inserts, updates (one of them changing the primary key),
// deletes, a transaction replicated from another server and a truncate.
// Debezium's values are also checked against dbzjsontest's vectors, which
// say what Debezium writes for each type.
func TestClusterDebeziumRecordsMatchEmbeddedCapture(t *testing.T) {
	src, srcConn := sourceDatabase(t)
	ctx := context.Background()
	cols := dbzjsontest.Columns
	mustExec := func(sql string) {
		t.Helper()
		if _, err := srcConn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	mustExec(dbzjsontest.Types)
	mustExec(fmt.Sprintf(captureTables, dbzjsontest.Definitions(cols)))
	names, values := dbzjsontest.Names(cols), dbzjsontest.Values(cols)
	// Longer than the TOAST threshold (2 kB) and stored uncompressed
	// (STORAGE EXTERNAL): an update that leaves it alone sends it as
	// "unchanged" in the new tuple.
	const toast = `(SELECT string_agg(md5(g::text), '') FROM generate_series(1, 200) g)`
	// The snapshot: a row of every value, a row of NULLs.
	mustExec(`INSERT INTO all_types (id, c_toast, ` + names + `) VALUES (1, ` + toast + `, ` + values + `);
		INSERT INTO all_types (id) VALUES (2);
		INSERT INTO notes VALUES ('first', 1), (NULL, 2);
		INSERT INTO pairs VALUES ('x', 1, 'one'), ('😀', 2, 'two')`)
	snapshotCounts := map[string]int{"all_types": 2, "notes": 2, "pairs": 2}

	dbz := &captureSide{name: "debezium", s: startClusterSystem(t, clusterEngines{debezium: true}), env: uniqueEnv("cdz")}
	emb := &captureSide{name: "embedded", s: startClusterSystem(t, clusterEngines{}), env: uniqueEnv("cem")}
	sides := []*captureSide{dbz, emb}
	for _, side := range sides {
		body := map[string]string{"connectionString": src, "environmentId": side.env}
		if res := side.s.postJSON("/createDatabaseConnection", body); res.status != http.StatusCreated {
			t.Fatalf("%s: create: %d %s", side.name, res.status, res.body)
		}
		t.Cleanup(func() { side.s.postJSON("/deleteDatabaseConnection", body) })
	}
	// Both stream from slots created before their snapshots, so every
	// change made once the snapshot records are on the topics is streamed.
	for _, side := range sides {
		for table, n := range snapshotCounts {
			side.await(t, src, table, 90*time.Second, func(recs []*kgo.Record) bool { return len(recs) >= n })
		}
	}

	origin := uniqueEnv("upstream")
	t.Cleanup(func() { _, _ = srcConn.Exec(context.Background(), "SELECT pg_replication_origin_drop($1)", origin) })
	steps := []string{
		// Inserts of every value and of NULLs.
		`INSERT INTO all_types (id, c_toast, ` + names + `) VALUES (10, 'short', ` + values + `);
		 INSERT INTO all_types (id) VALUES (11);
		 INSERT INTO notes VALUES ('second', 3);
		 INSERT INTO pairs VALUES ('y', 3, 'three')`,
		// Updates: NULLs to values, values to NULLs, one that leaves the
		// TOASTed value alone, a table without a key.
		`UPDATE all_types SET (c_toast, ` + names + `) = (SELECT c_toast, ` + names + ` FROM all_types WHERE id = 1) WHERE id = 2;
		 UPDATE all_types SET (` + names + `) = (SELECT ` + names + ` FROM all_types WHERE id = 11) WHERE id = 10;
		 UPDATE all_types SET c_text = 'changed' WHERE id = 1;
		 UPDATE notes SET body = 'changed' WHERE n = 1;
		 UPDATE pairs SET v = 'uno' WHERE a = 1`,
		// Primary-key changes and deletes.
		`UPDATE all_types SET id = 100 WHERE id = 10;
		 UPDATE pairs SET b = 'z' WHERE a = 3;
		 DELETE FROM all_types WHERE id = 11;
		 DELETE FROM notes WHERE n = 2;
		 DELETE FROM pairs WHERE a = 2`,
		// A transaction another server replicated into this one: its
		// records name the replication origin (one per run: origins are
		// the server's).
		`SELECT pg_replication_origin_create('` + origin + `');
		 SELECT pg_replication_origin_session_setup('` + origin + `');
		 BEGIN;
		 SELECT pg_replication_origin_xact_setup('0/ABCDEF', now());
		 INSERT INTO pairs VALUES ('o', 4, 'replicated');
		 UPDATE notes SET n = 30 WHERE n = 3;
		 COMMIT;
		 SELECT pg_replication_origin_session_reset()`,
		`TRUNCATE all_types, notes, pairs`,
		// After the truncate; the last records of each topic.
		`INSERT INTO all_types (id, c_toast, ` + names + `) VALUES (5, 'last', ` + values + `);
		 INSERT INTO notes VALUES ('last', 5);
		 INSERT INTO pairs VALUES ('last', 5, 'five')`,
	}
	for _, sql := range steps {
		if !strings.Contains(sql, "BEGIN") {
			sql = "BEGIN; " + sql + "; COMMIT"
		}
		mustExec(sql)
	}
	for _, side := range sides {
		for table := range snapshotCounts {
			side.await(t, src, table, 60*time.Second, func(recs []*kgo.Record) bool {
				if len(recs) == 0 {
					return false
				}
				v := recs[len(recs)-1].Value
				return bytes.Contains(v, []byte(`"last"`)) && bytes.Contains(v, []byte(`"op":"c"`))
			})
		}
	}

	for _, table := range slices.Sorted(maps.Keys(snapshotCounts)) {
		d, e := dbz.records(t, table), emb.records(t, table)
		t.Logf("public.%s: %d records from Debezium, %d from the embedded capture", table, len(d), len(e))
		if msg := compareCaptures(d, e, dbz.env, emb.env); msg != "" {
			t.Errorf("public.%s: Debezium's records (left) and the embedded capture's (right) differ:%s", table, msg)
		}
		if table == "all_types" {
			checkVectors(t, d)
		}
	}
	checkReplicated(t, origin, dbz.records(t, "pairs"), emb.records(t, "pairs"))
	checkTopics(t, dbz, emb)
}

// checkVectors checks Debezium's records of all_types against the vectors:
// the snapshot record of row 1 and the streamed insert of row 10 hold
// every value; the update of row 1 keeps its TOASTed value.
func checkVectors(t *testing.T, recs []*kgo.Record) {
	t.Helper()
	found := 0
	for _, r := range recs {
		var v struct {
			Op    string
			After map[string]json.RawMessage
		}
		if r.Value == nil || json.Unmarshal(r.Value, &v) != nil || v.After == nil {
			continue
		}
		id := string(v.After["id"])
		switch {
		case v.Op == "r" && id == "1", v.Op == "c" && id == "10":
			found++
			for _, c := range dbzjsontest.Columns {
				want := c.Want
				if v.Op == "r" {
					want = c.WantSnapshot()
				}
				got, ok := v.After[c.Name]
				switch {
				case c.Unmatched != "":
				case want == dbzjsontest.Omitted && ok:
					t.Errorf("Debezium %s record: %s %s = %s; the vector says Debezium leaves it out", v.Op, c.Type, c.Name, got)
				case want != dbzjsontest.Omitted && string(got) != want:
					t.Errorf("Debezium %s record: %s %s = %s: got %s, the vector says %s", v.Op, c.Type, c.Name, c.Value, got, want)
				}
			}
		case v.Op == "u" && id == "1":
			if bytes.Contains(v.After["c_toast"], []byte("__debezium_unavailable_value")) || len(v.After["c_toast"]) < 2000 {
				t.Errorf("Debezium's update of row 1 lost its TOASTed value: %.100s", v.After["c_toast"])
			}
		}
	}
	if found != 2 {
		t.Errorf("found %d of the 2 records of every value in Debezium's all_types", found)
	}
}

// checkReplicated checks that the comparison did cover the replication
// origin: the replicated insert names it on both sides (the comparison
// found them equal).
func checkReplicated(t *testing.T, origin string, dbz, emb []*kgo.Record) {
	t.Helper()
	for _, recs := range [][]*kgo.Record{dbz, emb} {
		seen := false
		for _, r := range recs {
			if string(r.Key) == `{"a":4,"b":"o"}` && r.Value != nil {
				seen = bytes.Contains(r.Value, []byte(`"origin":"`+origin+`","origin_lsn":11259375`))
			}
		}
		if !seen {
			t.Errorf("the replicated insert does not name its origin")
		}
	}
}

// checkTopics compares the topics each capture created (the change topics
// and the heartbeat topic, __debezium-heartbeat.<environmentId>) and their
// heartbeat records. Debezium writes its first heartbeat once
// heartbeat.interval.ms (10 s) has passed since it started streaming.
func checkTopics(t *testing.T, dbz, emb *captureSide) {
	t.Helper()
	topics := map[string][]string{}
	for _, side := range []*captureSide{dbz, emb} {
		adm := kadm.NewClient(side.client(t))
		listed, err := adm.ListTopics(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range listed.Names() {
			if strings.Contains(name, side.env) {
				topics[side.name] = append(topics[side.name], strings.ReplaceAll(name, side.env, "<env>"))
			}
		}
		slices.Sort(topics[side.name])
	}
	if !slices.Equal(topics[dbz.name], topics[emb.name]) {
		t.Errorf("topics: Debezium %v, embedded %v", topics[dbz.name], topics[emb.name])
	}
	// Both create their topics with the same settings (Debezium through
	// topic.creation.*): change topics deleted, never compacted, kept for
	// ever by default; the heartbeat topic compacted.
	for _, side := range []*captureSide{dbz, emb} {
		want := map[string]map[string]string{
			side.topic("notes"):                {"cleanup.policy": "delete", "retention.ms": "-1"},
			"__debezium-heartbeat." + side.env: {"cleanup.policy": "compact"},
		}
		rcs, err := kadm.NewClient(side.client(t)).DescribeTopicConfigs(context.Background(), slices.Collect(maps.Keys(want))...)
		if err != nil {
			t.Fatal(err)
		}
		for _, rc := range rcs {
			for _, c := range rc.Configs {
				if w, ok := want[rc.Name][c.Key]; ok && (c.Value == nil || *c.Value != w) {
					t.Errorf("%s: topic %s has %s=%v, want %s", side.name, rc.Name, c.Key, c.MaybeValue(), w)
				}
			}
		}
	}
	heartbeats := map[string]*kgo.Record{}
	for _, side := range []*captureSide{dbz, emb} {
		topic := "__debezium-heartbeat." + side.env
		if !poll(30*time.Second, func() bool {
			recs := side.topicRecords(t, topic)
			if len(recs) > 0 {
				heartbeats[side.name] = recs[0]
			}
			return len(recs) > 0
		}) {
			t.Errorf("%s: no record on %s", side.name, topic)
			return
		}
	}
	for _, side := range []*captureSide{dbz, emb} {
		r := heartbeats[side.name]
		// ts_ms is when the heartbeat was written: run-specific.
		var v map[string]json.RawMessage
		if string(r.Key) != `{"serverName":"`+side.env+`"}` || json.Unmarshal(r.Value, &v) != nil || len(v) != 1 || kind(v["ts_ms"]) != "number" {
			t.Errorf("%s heartbeat: key %s value %s", side.name, r.Key, r.Value)
		}
	}
}

// captureSide is one of the two captures of the source database.
type captureSide struct {
	name string
	s    *system
	env  string
}

func (c *captureSide) topic(table string) string { return c.env + ".public." + table }

func (c *captureSide) client(t *testing.T) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.s.inf.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// await waits until the table's records satisfy done; on failure it shows
// the job's status (for Debezium, the connector's task traces).
func (c *captureSide) await(t *testing.T, src, table string, timeout time.Duration, done func([]*kgo.Record) bool) {
	t.Helper()
	var recs []*kgo.Record
	if !poll(timeout, func() bool {
		recs = c.records(t, table)
		return done(recs)
	}) {
		status := c.s.postJSON("/checkJobStatus", map[string]string{"connectionString": src, "environmentId": c.env})
		t.Fatalf("%s: %s not as expected after %s (%d records: %s); checkJobStatus: %s", c.name, c.topic(table), timeout, len(recs), ops(recs), status.body)
	}
}

// records reads the table's topic; a topic not created yet is empty.
func (c *captureSide) records(t *testing.T, table string) []*kgo.Record {
	t.Helper()
	return c.topicRecords(t, c.topic(table))
}

func (c *captureSide) topicRecords(t *testing.T, topic string) []*kgo.Record {
	t.Helper()
	ends, err := kadm.NewClient(c.client(t)).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(ends) == 0 || ends.Error() != nil {
		return nil
	}
	return c.s.records(topic)
}

// compareCaptures compares two captures of one table and describes every
// difference; "" when they agree. Records are compared per key, in topic
// order: the order across keys is not part of the contract (the two
// snapshots may read rows in different orders).
func compareCaptures(dbz, emb []*kgo.Record, dbzEnv, embEnv string) string {
	var b strings.Builder
	if len(dbz) != len(emb) {
		fmt.Fprintf(&b, "\n%d records, %d records", len(dbz), len(emb))
	}
	// Snapshot markers (first, last, …) belong to positions, not keys.
	if d, e := snapshotMarkers(dbz), snapshotMarkers(emb); !slices.Equal(d, e) {
		fmt.Fprintf(&b, "\nsnapshot markers in topic order: %v | %v", d, e)
	}
	dk, ek := byKey(dbz), byKey(emb)
	keys := slices.Sorted(maps.Keys(dk))
	for k := range ek {
		if _, ok := dk[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		d, e := dk[k], ek[k]
		if len(d) != len(e) {
			fmt.Fprintf(&b, "\nkey %s: %d records, %d records: %s | %s", k, len(d), len(e), ops(d), ops(e))
		}
		for i := range min(len(d), len(e)) {
			for _, diff := range compareRecord(d[i], e[i], dbzEnv, embEnv) {
				fmt.Fprintf(&b, "\nkey %s, record %d: %s", k, i, diff)
			}
		}
	}
	return b.String()
}

// snapshotMarkers lists source.snapshot of the snapshot records, in topic
// order.
func snapshotMarkers(recs []*kgo.Record) []string {
	var out []string
	for _, r := range recs {
		var v struct {
			Op     string
			Source struct{ Snapshot string }
		}
		if r.Value != nil && json.Unmarshal(r.Value, &v) == nil && v.Op == "r" {
			out = append(out, v.Source.Snapshot)
		}
	}
	return out
}

// byKey groups records by key (null keys under "null"), in topic order.
// Keys are compared as bytes: field order and number formatting included.
func byKey(recs []*kgo.Record) map[string][]*kgo.Record {
	m := map[string][]*kgo.Record{}
	for _, r := range recs {
		k := "null"
		if r.Key != nil {
			k = string(r.Key)
		}
		m[k] = append(m[k], r)
	}
	return m
}

func ops(recs []*kgo.Record) string {
	var out []string
	for _, r := range recs {
		if r.Value == nil {
			out = append(out, "tombstone")
			continue
		}
		var v struct{ Op string }
		_ = json.Unmarshal(r.Value, &v)
		out = append(out, v.Op)
	}
	return strings.Join(out, " ")
}

// compareRecord compares two records of one key: tombstone or not, the
// envelope's fields in order, before and after field by field, the source
// block field by field.
func compareRecord(dbz, emb *kgo.Record, dbzEnv, embEnv string) []string {
	if (dbz.Value == nil) != (emb.Value == nil) {
		return []string{fmt.Sprintf("value %.300s | %.300s", dbz.Value, emb.Value)}
	}
	if dbz.Value == nil {
		return nil
	}
	dn, dv, err := orderedObject(dbz.Value)
	if err != nil {
		return []string{fmt.Sprintf("Debezium's value %s: %v", dbz.Value, err)}
	}
	en, ev, err := orderedObject(emb.Value)
	if err != nil {
		return []string{fmt.Sprintf("embedded value %s: %v", emb.Value, err)}
	}
	var diffs []string
	if !slices.Equal(dn, en) {
		diffs = append(diffs, fmt.Sprintf("envelope fields %v | %v", dn, en))
	}
	for _, f := range dn {
		switch f {
		case "ts_ms", "ts_us", "ts_ns":
			// When the connector processed the event: run-specific.
			if kind(dv[f]) != kind(ev[f]) {
				diffs = append(diffs, fmt.Sprintf("%s %s | %s", f, dv[f], ev[f]))
			}
		case "before", "after":
			diffs = append(diffs, compareImage(f, dv[f], ev[f])...)
		case "source":
			diffs = append(diffs, compareSource(dv[f], ev[f], dbzEnv, embEnv)...)
		default: // op, transaction
			if !bytes.Equal(dv[f], ev[f]) {
				diffs = append(diffs, fmt.Sprintf("%s %s | %s", f, dv[f], ev[f]))
			}
		}
	}
	return diffs
}

// unmatched are the columns whose values cdcq cannot write as Debezium
// does (dbzjsontest.Column.Unmatched says why); only their presence is
// compared.
var unmatched = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range dbzjsontest.Columns {
		if c.Unmatched != "" {
			m[c.Name] = true
		}
	}
	return m
}()

func compareImage(which string, dbz, emb json.RawMessage) []string {
	if string(dbz) == "null" || string(emb) == "null" {
		if !bytes.Equal(dbz, emb) {
			return []string{fmt.Sprintf("%s %.300s | %.300s", which, dbz, emb)}
		}
		return nil
	}
	dn, dv, err := orderedObject(dbz)
	if err != nil {
		return []string{fmt.Sprintf("Debezium's %s: %v", which, err)}
	}
	en, ev, err := orderedObject(emb)
	if err != nil {
		return []string{fmt.Sprintf("embedded %s: %v", which, err)}
	}
	var diffs []string
	if !slices.Equal(dn, en) {
		diffs = append(diffs, fmt.Sprintf("%s: the fields or their order differ", which))
	}
	for _, f := range en {
		if _, ok := dv[f]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s.%s: missing | %s", which, f, ev[f]))
		}
	}
	for _, f := range dn {
		e, ok := ev[f]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s.%s: %s | missing", which, f, dv[f]))
		case unmatched[f] && (string(dv[f]) == "null") != (string(e) == "null"):
			diffs = append(diffs, fmt.Sprintf("%s.%s (not compared: %s): %s | %s", which, f, "null in one only", dv[f], e))
		case !unmatched[f] && !bytes.Equal(dv[f], e):
			diffs = append(diffs, fmt.Sprintf("%s.%s: %s | %s", which, f, dv[f], e))
		}
	}
	return diffs
}

// compareSource compares the source blocks. Allowed to differ:
//   - version: Debezium writes its release, cdcq "cdcq-<version>";
//   - name: the topic prefix, which is each capture's environment id;
//   - snapshot: the markers of snapshot records ("first", "last", …) are
//     compared by position in the topic, since the two snapshots may read
//     the rows of a table in different orders;
//   - in snapshot records only, as long as both have the same kind of
//     value (null, number, string): ts_ms, ts_us, ts_ns (when the snapshot
//     read the row: the two snapshots ran at different times) and txId,
//     lsn, sequence, xmin (the snapshot's transaction and the WAL position
//     its slot starts from: each capture has its own slot, created at its
//     own time). A streamed change has the same commit time, transaction
//     and WAL positions in both.
//
// Everything else (connector, db, schema, table, origin, origin_lsn) must
// be equal.
func compareSource(dbz, emb json.RawMessage, dbzEnv, embEnv string) []string {
	dn, dv, err := orderedObject(dbz)
	if err != nil {
		return []string{fmt.Sprintf("Debezium's source %s: %v", dbz, err)}
	}
	en, ev, err := orderedObject(emb)
	if err != nil {
		return []string{fmt.Sprintf("embedded source %s: %v", emb, err)}
	}
	var diffs []string
	if !slices.Equal(dn, en) {
		diffs = append(diffs, fmt.Sprintf("source fields %v | %v", dn, en))
	}
	for _, f := range dn {
		d, e := dv[f], ev[f]
		switch f {
		case "version":
			if kind(d) != "string" || !strings.HasPrefix(string(e), `"cdcq-`) {
				diffs = append(diffs, fmt.Sprintf("source.version %s | %s", d, e))
			}
		case "name":
			if string(d) != `"`+dbzEnv+`"` || string(e) != `"`+embEnv+`"` {
				diffs = append(diffs, fmt.Sprintf("source.name %s | %s", d, e))
			}
		case "snapshot":
			// Compared by position (snapshotMarkers); here only whether
			// the record is a snapshot record.
			if (string(d) == `"false"`) != (string(e) == `"false"`) {
				diffs = append(diffs, fmt.Sprintf("source.snapshot %s | %s", d, e))
			}
		case "ts_ms", "ts_us", "ts_ns", "txId", "lsn", "sequence", "xmin":
			if kind(d) != kind(e) || string(dv["snapshot"]) == `"false"` && !bytes.Equal(d, e) {
				diffs = append(diffs, fmt.Sprintf("source.%s %s | %s", f, d, e))
			}
		default:
			if !bytes.Equal(d, e) {
				diffs = append(diffs, fmt.Sprintf("source.%s %s | %s", f, d, e))
			}
		}
	}
	return diffs
}

// kind is a JSON value's kind: null, string, number, object, array, bool.
func kind(v json.RawMessage) string {
	switch {
	case len(v) == 0:
		return "absent"
	case string(v) == "null":
		return "null"
	case v[0] == '"':
		return "string"
	case v[0] == '{':
		return "object"
	case v[0] == '[':
		return "array"
	case v[0] == 't' || v[0] == 'f':
		return "bool"
	}
	return "number"
}

// orderedObject decodes a JSON object into its field names in order and
// its raw values.
func orderedObject(b []byte) ([]string, map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, fmt.Errorf("not a JSON object")
	}
	var names []string
	vals := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		name, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		names = append(names, name)
		vals[name] = v
	}
	return names, vals, nil
}
