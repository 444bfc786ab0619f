package capture

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/pgtest"
)

// everythingDDL creates tables whose columns cover the types a capture
// meets: every built-in family, arrays, an enum, a domain, and a TOASTed
// text.
const everythingDDL = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE TABLE everything (
	id integer PRIMARY KEY,
	c_bool boolean, c_int2 smallint, c_int4 integer, c_int8 bigint,
	c_float4 real, c_float8 double precision, c_numeric numeric(10,2), c_numeric_free numeric, c_money money,
	c_text text, c_varchar varchar(20), c_char char(3), c_name name, c_bytea bytea,
	c_date date, c_time time, c_timetz timetz, c_timestamp timestamp, c_timestamptz timestamptz,
	c_timestamptz3 timestamptz(3), c_interval interval, c_uuid uuid, c_json json, c_jsonb jsonb, c_xml xml,
	c_inet inet, c_cidr cidr, c_macaddr macaddr, c_macaddr8 macaddr8,
	c_bit bit(4), c_bit1 bit(1), c_varbit varbit(8), c_oid oid,
	c_point point, c_box box, c_int4range int4range, c_tsvector tsvector,
	c_int_array integer[], c_text_array text[], c_mood mood, c_mood_array mood[], c_positive positive,
	c_big text
);
CREATE TABLE nopk (a integer, b text);
CREATE SCHEMA other;
CREATE TABLE other.items (id bigint PRIMARY KEY, name text);
`

const everythingRow1 = `INSERT INTO everything VALUES (1,
	true, 2, 42, 9007199254740993,
	1.5, 3.141592653589793, 12.5, 123456789.123456789, 12.34,
	'hello', 'varchar', 'ab', 'a_name', '\xdeadbeef',
	'2024-02-29', '13:14:15.123456', '13:14:15+02', '2024-02-29 13:14:15.5', '2024-02-29 13:14:15.123456+01',
	'2024-02-29 13:14:15.1+00', '1 year 2 mons 3 days 04:05:06.5', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
	'{"a": [1, 2]}', '{"b": {"c": null}}', '<x>1</x>',
	'192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05',
	B'1010', B'1', B'101', 4242,
	'(1.5,2)', '((0,0),(1,1))', '[1,10)', 'a fat cat',
	'{1,2,3}', '{"x","y z",NULL}', 'happy', '{sad,ok}', 7,
	(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 300) i))`

const everythingRow2 = `INSERT INTO everything VALUES (2,
	false, -2, -42, -9007199254740993,
	'-Infinity', 'NaN', -0.01, 0, -1.00,
	E'tab\there "quoted" \\ back', 'v', 'x', 'n', '\x',
	'0001-01-01 BC', '00:00', '23:59:59.999999-11:30', '1970-01-01 00:00:00', '2262-04-11 23:47:16.854775+00',
	'1999-12-31 23:59:59.999+00', '-3 days -00:00:01', '00000000-0000-0000-0000-000000000000',
	'[]', '[]', '<y/>',
	'::1', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', 'ff:ff:ff:ff:ff:ff:ff:ff',
	B'0000', B'0', B'', 0,
	'(0,0)', '((1,1),(0,0))', 'empty', '',
	'{}', '{}', 'sad', '{}', 1,
	'short')`

func TestSnapshotThenStream(t *testing.T) {
	h := newHarness(t)
	dsn := pgtest.NewDatabase(t)
	src := connect(t, dsn)
	exec(t, src, everythingDDL)
	exec(t, src, everythingRow1)
	exec(t, src, everythingRow2)
	exec(t, src, `INSERT INTO everything (id) VALUES (3)`)
	exec(t, src, `INSERT INTO nopk VALUES (1, 'one')`)
	exec(t, src, `INSERT INTO other.items VALUES (10, 'ten'), (11, 'eleven')`)
	bigText := ""
	if err := src.QueryRow(context.Background(), `SELECT c_big FROM everything WHERE id = 1`).Scan(&bigText); err != nil {
		t.Fatal(err)
	}

	const env = "envsnap"
	e := h.engine("w1", nil)
	sp := spec(env, dsn)
	ctx := context.Background()
	if err := e.Ensure(ctx, sp); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if err := e.Ensure(ctx, sp); err != nil {
		t.Fatalf("Ensure again: %v", err)
	}
	cons := consume(t, h.brokers, env+".public.everything", env+".public.nopk", env+".other.items", env+".public.later",
		HeartbeatTopicPrefix+env)
	h.supervise(e)

	byTopic := func() map[string][]change {
		out := map[string][]change{}
		for _, c := range decodeAll(t, cons.all()) {
			out[c.Topic] = append(out[c.Topic], c)
		}
		return out
	}
	eventually(t, 20*time.Second, "snapshot records", func() (bool, string) {
		got := byTopic()
		n := len(got[env+".public.everything"]) + len(got[env+".public.nopk"]) + len(got[env+".other.items"])
		return n >= 6, ops(got[env+".public.everything"])
	})
	got := byTopic()
	items, every, nopk := got[env+".other.items"], got[env+".public.everything"], got[env+".public.nopk"]
	if ops(items) != "rr" || ops(every) != "rrr" || ops(nopk) != "r" {
		t.Fatalf("snapshot ops: items %q everything %q nopk %q", ops(items), ops(every), ops(nopk))
	}
	// Tables are copied in schema, table order; Debezium marks the first
	// and last records of the snapshot and of each table.
	var marks []string
	for _, c := range append(append(append([]change(nil), items...), every...), nopk...) {
		marks = append(marks, c.Source.Snapshot)
	}
	wantMarks := []string{"first", "last_in_data_collection", "first_in_data_collection", "true", "last_in_data_collection", "last"}
	if !reflect.DeepEqual(marks, wantMarks) {
		t.Errorf("snapshot marks %v, want %v", marks, wantMarks)
	}
	snapLSN := every[0].Source.LSN
	for _, c := range append(append([]change(nil), items...), every...) {
		s := c.Source
		if s.Connector != "postgresql" || s.Name != env || s.DB == "" || s.LSN == nil || *s.LSN != *snapLSN || s.TxID == nil || c.After == nil || c.Before != nil {
			t.Errorf("snapshot record %s", c.Raw)
		}
	}
	if every[0].Source.Table != "everything" || every[0].Source.Schema != "public" || items[0].Source.Schema != "other" {
		t.Errorf("source names: %s / %s", every[0].Raw, items[0].Raw)
	}
	if nopk[0].Key != nil {
		t.Errorf("table without primary key has key %v", nopk[0].Key)
	}
	// A few values whose JSON form does not depend on encoder choices.
	r1 := every[0].After
	for col, want := range map[string]any{
		"id": json.Number("1"), "c_int4": json.Number("42"), "c_bool": true, "c_text": "hello",
		"c_numeric": "12.50", "c_bytea": "3q2+7w==", "c_uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		"c_mood": "happy", "c_big": bigText, "c_positive": json.Number("7"),
	} {
		if !reflect.DeepEqual(r1[col], want) {
			t.Errorf("snapshot row 1 %s = %#v, want %#v", col, r1[col], want)
		}
	}
	if !reflect.DeepEqual(every[0].Key, map[string]any{"id": json.Number("1")}) {
		t.Errorf("key %v", every[0].Key)
	}
	for col, v := range every[2].After {
		if col != "id" && v != nil {
			t.Errorf("row 3 %s = %v, want null", col, v)
		}
	}

	// The records arrive before the running capture records that the
	// snapshot is done (it writes its progress about once a second).
	eventually(t, 10*time.Second, "snapshot progress", func() (bool, string) {
		st, err := e.Observe(ctx, sp)
		if err != nil {
			return false, err.Error()
		}
		ok := st.Snapshot != nil && st.Snapshot.Done && st.Snapshot.RowsCopied == 6 && len(st.Snapshot.Tables) == 3
		return ok, mustJSON(st.Snapshot)
	})
	for _, table := range []string{"everything", "nopk"} {
		if n := queryInt(t, src, `SELECT count(*) FROM pg_class WHERE relname = $1 AND relreplident = 'f'`, table); n != 1 {
			t.Errorf("REPLICA IDENTITY of %s is not FULL", table)
		}
	}

	// Streaming.
	exec(t, src, `INSERT INTO everything SELECT 4, c_bool, c_int2, c_int4, c_int8, c_float4, c_float8, c_numeric,
		c_numeric_free, c_money, c_text, c_varchar, c_char, c_name, c_bytea, c_date, c_time, c_timetz, c_timestamp,
		c_timestamptz, c_timestamptz3, c_interval, c_uuid, c_json, c_jsonb, c_xml, c_inet, c_cidr, c_macaddr,
		c_macaddr8, c_bit, c_bit1, c_varbit, c_oid, c_point, c_box, c_int4range, c_tsvector, c_int_array,
		c_text_array, c_mood, c_mood_array, c_positive, c_big FROM everything WHERE id = 1`)
	exec(t, src, `UPDATE everything SET c_text = 'changed', c_int4 = c_int4 + 1 WHERE id = 2`)
	exec(t, src, `UPDATE everything SET c_int2 = 7 WHERE id = 1`)
	exec(t, src, `DELETE FROM everything WHERE id = 3`)
	exec(t, src, `UPDATE everything SET id = 40 WHERE id = 4`)
	exec(t, src, `DELETE FROM nopk`)
	exec(t, src, `TRUNCATE everything`)

	const wantOps = "rrrcuud-d-ct"
	eventually(t, 20*time.Second, "streamed records", func() (bool, string) {
		return ops(byTopic()[env+".public.everything"]) == wantOps, ops(byTopic()[env+".public.everything"])
	})
	got = byTopic()
	every, nopk = got[env+".public.everything"], got[env+".public.nopk"]
	ins, upd2, upd1, del3, tomb3, del4, tomb4, ins40, trunc := every[3], every[4], every[5], every[6], every[7], every[8], every[9], every[10], every[11]

	// The same row reads the same in the snapshot and in the stream, but
	// for a name column: Debezium's snapshot reads it as a string, its
	// stream as null.
	want := copyMap(every[0].After)
	want["id"] = json.Number("4")
	if want["c_name"] != "a_name" {
		t.Errorf("snapshot name column %#v", want["c_name"])
	}
	want["c_name"] = nil
	if !reflect.DeepEqual(ins.After, want) {
		t.Errorf("streamed copy of row 1 differs from its snapshot:\nsnapshot %v\nstream   %v", every[0].After, ins.After)
		for _, k := range keysOf(want) {
			if !reflect.DeepEqual(ins.After[k], want[k]) {
				t.Errorf("  %s: snapshot %#v stream %#v", k, want[k], ins.After[k])
			}
		}
	}
	// Row 2's date is 1 BC: the snapshot reads it through JDBC, which
	// drops the era ("0001-01-01Z"), the stream as year 0.
	want2 := copyMap(every[1].After)
	if want2["c_date"] != "0001-01-01Z" {
		t.Errorf("snapshot date of 1 BC: %#v", want2["c_date"])
	}
	want2["c_name"], want2["c_date"] = nil, "0000-01-01Z"
	if !reflect.DeepEqual(upd2.Before, want2) || upd2.After["c_text"] != "changed" || num(upd2.After["c_int4"]) != "-41" {
		t.Errorf("update of row 2: %s", upd2.Raw)
	}
	if upd1.After["c_big"] != bigText || num(upd1.After["c_int2"]) != "7" || upd1.Before["c_big"] != bigText {
		t.Errorf("update of row 1 lost its TOASTed value: %.300s", upd1.Raw)
	}
	if !reflect.DeepEqual(del3.Before, every[2].After) || del3.After != nil || !tomb3.Tombstone ||
		!reflect.DeepEqual(tomb3.Key, map[string]any{"id": json.Number("3")}) {
		t.Errorf("delete of row 3: %s then %v", del3.Raw, tomb3.Key)
	}
	if num(del4.Before["id"]) != "4" || !tomb4.Tombstone || num(tomb4.Key["id"]) != "4" || num(ins40.After["id"]) != "40" ||
		num(ins40.Key["id"]) != "40" || ins40.After["c_big"] != bigText {
		t.Errorf("primary key change: %s, %v, %s", del4.Raw, tomb4.Key, ins40.Raw)
	}
	if trunc.Op != "t" || trunc.Key != nil || trunc.Before != nil || trunc.After != nil || trunc.Source.Table != "everything" {
		t.Errorf("truncate: %s", trunc.Raw)
	}
	var prev int64
	for _, c := range every[3:] {
		if c.Tombstone {
			continue
		}
		if c.Source.Snapshot != "false" || c.Source.LSN == nil || *c.Source.LSN < prev || *c.Source.LSN <= *snapLSN || c.Source.TxID == nil {
			t.Errorf("streamed source block: %s", c.Raw)
		}
		prev = *c.Source.LSN
	}
	// Debezium writes a tombstone after a delete from a table without a
	// primary key too, with a null key.
	if ops(nopk) != "rd-" || nopk[1].Key != nil || num(nopk[1].Before["a"]) != "1" || nopk[2].Key != nil {
		t.Errorf("table without primary key: %q %v", ops(nopk), nopk)
	}
	if every[3].Source.Origin != nil || every[3].Source.OriginLSN != nil {
		t.Errorf("origin of a local transaction: %s", every[3].Raw)
	}

	if len(got[HeartbeatTopicPrefix+env]) == 0 {
		eventually(t, 5*time.Second, "heartbeat record", func() (bool, string) {
			return len(byTopic()[HeartbeatTopicPrefix+env]) > 0, ""
		})
	}
	hb := cons.all()
	for _, r := range hb {
		if r.Topic == HeartbeatTopicPrefix+env {
			if string(r.Key) != `{"serverName":"`+env+`"}` || !strings.HasPrefix(string(r.Value), `{"ts_ms":`) {
				t.Errorf("heartbeat %s %s", r.Key, r.Value)
			}
			break
		}
	}

	// A column added while streaming, and a table created while streaming
	// (a superuser's publication is FOR ALL TABLES: captured from its
	// first row; its REPLICA IDENTITY is set on the next refresh).
	exec(t, src, `ALTER TABLE other.items ADD COLUMN extra integer DEFAULT 5`)
	exec(t, src, `INSERT INTO other.items VALUES (12, 'twelve', 6)`)
	exec(t, src, `CREATE TABLE later (id integer PRIMARY KEY, v text)`)
	exec(t, src, `INSERT INTO later VALUES (1, 'x')`)
	eventually(t, 10*time.Second, "changes after DDL", func() (bool, string) {
		got := byTopic()
		items, later := got[env+".other.items"], got[env+".public.later"]
		return ops(items) == "rrc" && ops(later) == "c", ops(items) + " " + ops(later)
	})
	got = byTopic()
	if c := got[env+".other.items"][2]; num(c.After["extra"]) != "6" || c.After["name"] != "twelve" {
		t.Errorf("row after ADD COLUMN: %s", c.Raw)
	}

	// A transaction another server replicated into the source carries its
	// replication origin: the origin's name and its commit LSN there.
	exec(t, src, `SELECT pg_replication_origin_create('upstream')`)
	exec(t, src, `SELECT pg_replication_origin_session_setup('upstream')`)
	exec(t, src, `BEGIN; SELECT pg_replication_origin_xact_setup('0/ABCDEF', now());
		INSERT INTO other.items VALUES (13, 'thirteen', 7); COMMIT`)
	exec(t, src, `SELECT pg_replication_origin_session_reset()`)
	eventually(t, 10*time.Second, "replicated change", func() (bool, string) {
		return ops(byTopic()[env+".other.items"]) == "rrcc", ops(byTopic()[env+".other.items"])
	})
	if c := byTopic()[env+".other.items"][3]; c.Source.Origin == nil || *c.Source.Origin != "upstream" ||
		c.Source.OriginLSN == nil || *c.Source.OriginLSN != 0xABCDEF {
		t.Errorf("replicated change: %s", c.Raw)
	}
	if c := got[env+".public.later"][0]; c.After["v"] != "x" || num(c.Key["id"]) != "1" {
		t.Errorf("row of a new table: %s", c.Raw)
	}
	eventually(t, 10*time.Second, "new table's replica identity", func() (bool, string) {
		return queryInt(t, src, `SELECT count(*) FROM pg_class WHERE relname = 'later' AND relreplident = 'f'`) == 1, ""
	})

	eventually(t, 10*time.Second, "running status", func() (bool, string) {
		st, err := e.Observe(ctx, sp)
		if err != nil {
			return false, err.Error()
		}
		ok := st.Status == jobs.StatusRunning && st.Lag != nil && st.Slot != nil && st.Slot.Exists && st.Slot.Active && len(st.Warnings) == 0
		if ok {
			t.Logf("status: %s", mustJSON(st))
		}
		return ok, mustJSON(st)
	})
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
