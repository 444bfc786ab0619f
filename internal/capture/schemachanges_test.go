package capture

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/capture/capturetest"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/pgtest"
)

func TestDiffDescriptions(t *testing.T) {
	col := func(name, typ string, oid uint32, mod int32, attnum int16) ColumnDescription {
		return ColumnDescription{Name: name, Type: typ, TypeOID: oid, TypeMod: mod, Attnum: attnum}
	}
	id := col("id", "integer", 23, -1, 1)
	region := col("region", "text", 25, -1, 2)
	total := col("total", "numeric(12,2)", 1700, 12<<16|2+4, 3)
	base := TableDescription{Schema: "public", Table: "orders", ReplicaIdentity: "full",
		Columns: []ColumnDescription{id, region, total}, Key: []string{"id"}}
	with := func(fn func(d *TableDescription)) TableDescription {
		d := base
		d.Columns = slices.Clone(base.Columns)
		d.Key = slices.Clone(base.Key)
		fn(&d)
		return d
	}
	for _, tc := range []struct {
		name string
		cur  TableDescription
		want string
	}{
		{"same", with(func(*TableDescription) {}), ""},
		{"attnums_unknown", with(func(d *TableDescription) {
			for i := range d.Columns {
				d.Columns[i].Attnum = 0
			}
		}), ""},
		{"column_added", with(func(d *TableDescription) { d.Columns = append(d.Columns, col("note", "text", 25, -1, 4)) }),
			"column note added (text)"},
		{"column_dropped", with(func(d *TableDescription) { d.Columns = slices.Delete(d.Columns, 1, 2) }),
			"column region dropped"},
		{"column_renamed", with(func(d *TableDescription) { d.Columns[1].Name = "area" }),
			"column region renamed to area"},
		{"renamed_and_retyped", with(func(d *TableDescription) {
			d.Columns[1] = col("area", "character varying(10)", 1043, 14, 2)
		}), "column region renamed to area; column area type text -> character varying(10)"},
		// Dropped and added again under the same name: a new attribute.
		{"column_dropped_and_added", with(func(d *TableDescription) {
			d.Columns = append(slices.Delete(d.Columns, 1, 2), col("region", "text", 25, -1, 4))
		}), "column region dropped; column region added (text)"},
		// Without attribute numbers the same name is the same column.
		{"renamed_attnum_unknown", with(func(d *TableDescription) {
			d.Columns[1].Name, d.Columns[1].Attnum = "area", 0
		}), "column region dropped; column area added (text)"},
		{"column_type", with(func(d *TableDescription) { d.Columns[2].Type, d.Columns[2].TypeMod = "numeric(12,3)", 12<<16|3+4 }),
			"column total type numeric(12,2) -> numeric(12,3)"},
		{"replica_identity", with(func(d *TableDescription) { d.ReplicaIdentity = "default" }),
			"replica identity full -> default"},
		{"key_dropped", with(func(d *TableDescription) { d.Key = nil }), "primary key (id) -> none"},
		{"key_widened", with(func(d *TableDescription) { d.Key = []string{"id", "region"} }), "primary key (id) -> (id, region)"},
		{"key_column_renamed", with(func(d *TableDescription) { d.Columns[0].Name, d.Key = "ident", []string{"ident"} }),
			"column id renamed to ident"},
		{"key_column_dropped", with(func(d *TableDescription) { d.Columns, d.Key = d.Columns[1:], nil }),
			"column id dropped; primary key (id) -> none"},
		{"table_renamed", with(func(d *TableDescription) { d.Table = "orders_v2" }), "table orders renamed to orders_v2"},
		{"table_moved", with(func(d *TableDescription) { d.Schema = "archive" }), "table moved from schema public to archive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describeDiffs(diffDescriptions(base, tc.cur)); got != tc.want {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestCarryAttnums: a description the server sent from before a DDL that
// renamed a column, read when the catalog already had the new name, keeps
// the column's number, so that the rename that follows is one.
func TestCarryAttnums(t *testing.T) {
	prev := TableDescription{Columns: []ColumnDescription{{Name: "id", Attnum: 1}, {Name: "region", Attnum: 2}}}
	stale := TableDescription{Columns: []ColumnDescription{{Name: "id", Attnum: 1}, {Name: "region"}}}
	got := carryAttnums(prev, stale)
	if got.Columns[1].Attnum != 2 || stale.Columns[1].Attnum != 0 {
		t.Fatalf("carried %+v (stale now %+v)", got.Columns, stale.Columns)
	}
	renamed := TableDescription{Columns: []ColumnDescription{{Name: "id", Attnum: 1}, {Name: "area", Attnum: 2}}}
	if d := describeDiffs(diffDescriptions(got, renamed)); d != "column region renamed to area" {
		t.Errorf("after the stale description: %q", d)
	}
	// A number another column has already is not given twice.
	taken := TableDescription{Columns: []ColumnDescription{{Name: "region"}, {Name: "x", Attnum: 2}}}
	if got := carryAttnums(prev, taken); got.Columns[0].Attnum != 0 {
		t.Errorf("number 2 given twice: %+v", got.Columns)
	}
}

// syncBuffer is a log sink the capture's goroutines share with the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines(substr string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for line := range strings.Lines(b.buf.String()) {
		if strings.Contains(line, substr) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

const schemaChangeDDL = `
CREATE TABLE orders (id integer PRIMARY KEY, region text DEFAULT 'w', total numeric(12,2), qty integer);
CREATE TABLE doomed (id integer PRIMARY KEY);
CREATE TABLE quiet (id integer PRIMARY KEY);
CREATE TABLE bystander (id integer PRIMARY KEY, grp integer NOT NULL, amount numeric);
CREATE SCHEMA archive;
ALTER TABLE orders REPLICA IDENTITY FULL;
ALTER TABLE doomed REPLICA IDENTITY FULL;
ALTER TABLE quiet REPLICA IDENTITY FULL;
ALTER TABLE bystander REPLICA IDENTITY FULL;
INSERT INTO orders VALUES (50, 'east', 1.5, 1), (51, 'west', 2.5, 2);
INSERT INTO doomed VALUES (1);
INSERT INTO quiet VALUES (1);
INSERT INTO bystander SELECT g, g % 100, g / 4.0 FROM generate_series(1, 20) g;
-- Writes to a table by its oid, whatever its name is by then.
CREATE FUNCTION churn(t oid, op text, n integer) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	CASE op
	WHEN 'i' THEN EXECUTE format('INSERT INTO %s (id) VALUES ($1)', t::regclass) USING n;
	WHEN 'u' THEN EXECUTE format('UPDATE %s SET total = coalesce(total, 0) + 1 WHERE id = $1', t::regclass) USING n;
	ELSE EXECUTE format('DELETE FROM %s WHERE id = $1', t::regclass) USING n;
	END CASE;
END $$;
`

// churner inserts, updates and deletes rows of a table, found by its oid,
// until stopped; statements that fail (a DDL renamed the table under it,
// its replica identity forbids updates) are left out.
type churner struct {
	mu       sync.Mutex
	inserted []int
	stop     func()
}

func startChurner(t testing.TB, dsn string, oid uint32) *churner {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &churner{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer conn.Close(context.Background())
		bg := context.Background()
		for n := 100000; ctx.Err() == nil; n++ {
			if _, err := conn.Exec(bg, `SELECT churn($1, 'i', $2)`, oid, n); err == nil {
				c.mu.Lock()
				c.inserted = append(c.inserted, n)
				c.mu.Unlock()
			}
			_, _ = conn.Exec(bg, `SELECT churn($1, 'u', $2)`, oid, n-1)
			if n%3 == 0 {
				_, _ = conn.Exec(bg, `SELECT churn($1, 'd', $2)`, oid, n-2)
			}
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	var once sync.Once
	c.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(c.stop)
	return c
}

func (c *churner) ids() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.inserted)
}

// schemaStep is a DDL on orders, the relation change it is to record, and
// a row inserted afterwards (id = the step's number) whose record shows
// the new description.
type schemaStep struct {
	ddl string
	// change is the recorded description; "" when orders does not change.
	change string
	// table is orders' name afterwards, as schema.table.
	table string
	// insert has %s for the table and %d for the id.
	insert string
	// fields are the fields of the records afterwards; key the key's (nil:
	// a null key).
	fields, key []string
	// after checks values of the inserted row's record.
	after map[string]any
	// then runs after the inserted row's record arrived (updates and
	// deletes under the new description).
	then func(t *testing.T, table string, id int, wait func(op string, id int) change)
}

// TestSchemaChangesWhileStreaming runs DDL after DDL on a table that a
// writer keeps changing, with another table written meanwhile: every change
// reaches the topics with the fields of the table as it was when it was
// made (new fields after ADD COLUMN, the new name after RENAME COLUMN, the
// topic of the new name after RENAME TABLE or SET SCHEMA, the key of the
// primary key of the moment), each DDL is recorded as a relation change at
// the position of the table's first change after it, in the log, by
// RelationChanges and in the status, and a DDL made while the capture was
// down is recorded when it comes back.
func TestSchemaChangesWhileStreaming(t *testing.T) {
	h := newHarness(t)
	dsn := pgtest.NewDatabase(t)
	src := connect(t, dsn)
	exec(t, src, schemaChangeDDL)
	oidOf := func(table string) uint32 {
		return uint32(queryInt(t, src, `SELECT $1::regclass::oid::bigint`, table))
	}
	ordersOID, quietOID := oidOf("orders"), oidOf("quiet")

	logs := &syncBuffer{}
	var logOut io.Writer = logs
	if testing.Verbose() {
		logOut = io.MultiWriter(logs, os.Stderr)
	}
	const env = "envddl"
	e := h.engine("w1", func(c *Config) {
		// The test sets the replica identities itself.
		c.keepReplicaIdentity = true
		c.Logger = slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo})).With("worker", "w1")
	})
	sp := spec(env, dsn)
	ctx := context.Background()
	if err := e.Ensure(ctx, sp); err != nil {
		t.Fatal(err)
	}
	ordersTopics := []string{env + ".public.orders", env + ".public.orders_v2", env + ".archive.orders_v2"}
	cons := consume(t, h.brokers, append([]string{env + ".public.bystander", env + ".public.quiet", env + ".public.later"}, ordersTopics...)...)
	stop := h.supervise(e)
	streamingRow(t, e, env)

	// find returns the first record on topics that pred accepts.
	find := func(topics []string, pred func(c change) bool) (change, bool) {
		for _, c := range decodeAll(t, cons.all()) {
			if slices.Contains(topics, c.Topic) && !c.Tombstone && pred(c) {
				return c, true
			}
		}
		return change{}, false
	}
	waitFor := func(what string, topics []string, pred func(c change) bool) change {
		t.Helper()
		var got change
		eventually(t, 20*time.Second, what, func() (bool, string) {
			var ok bool
			got, ok = find(topics, pred)
			return ok, ""
		})
		return got
	}
	byID := func(op string, id int) func(c change) bool {
		return func(c change) bool {
			img := c.After
			if op == "d" {
				img = c.Before
			}
			return c.Op == op && img != nil && num(img["id"]) == fmt.Sprint(id)
		}
	}
	waitOrders := func(op string, id int) change {
		t.Helper()
		return waitFor(fmt.Sprintf("%s of orders row %d", op, id), ordersTopics, byID(op, id))
	}

	// A table the snapshot copied, altered before its first change: the
	// snapshot's description is the one before.
	exec(t, src, `ALTER TABLE quiet ADD COLUMN b integer`)
	exec(t, src, `INSERT INTO quiet VALUES (2, 5)`)
	if c := waitFor("quiet row 2", []string{env + ".public.quiet"}, byID("c", 2)); num(c.After["b"]) != "5" {
		t.Errorf("quiet row 2: %s", c.Raw)
	}
	// A table created while streaming: its first sight is no change.
	exec(t, src, `CREATE TABLE later (id integer PRIMARY KEY); INSERT INTO later VALUES (1)`)
	waitFor("later row 1", []string{env + ".public.later"}, byID("c", 1))

	bystander := capturetest.StartWriter(t, dsn, "bystander", 20, 5*time.Millisecond)
	orders := startChurner(t, dsn, ordersOID)
	waitOrders("c", 100001)

	base := []string{"id", "region", "total", "qty"}
	steps := []schemaStep{
		{ddl: `ALTER TABLE orders ADD COLUMN note text`, change: "column note added (text)", table: "public.orders",
			insert: `INSERT INTO %s (id, note) VALUES (%d, 'n')`,
			fields: append(slices.Clone(base), "note"), key: []string{"id"}, after: map[string]any{"note": "n"},
			then: func(t *testing.T, table string, id int, wait func(string, int) change) {
				// The new field is in the before-image too.
				exec(t, src, fmt.Sprintf(`UPDATE %s SET note = 'm' WHERE id = %d`, table, id))
				if c := wait("u", id); c.Before["note"] != "n" || c.After["note"] != "m" {
					t.Errorf("update after ADD COLUMN: %s", c.Raw)
				}
			}},
		{ddl: `ALTER TABLE orders RENAME COLUMN region TO area`, change: "column region renamed to area", table: "public.orders",
			insert: `INSERT INTO %s (id, area) VALUES (%d, 'north')`,
			fields: []string{"id", "area", "total", "qty", "note"}, key: []string{"id"}, after: map[string]any{"area": "north"}},
		{ddl: `ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,3)`, change: "column total type numeric(12,2) -> numeric(12,3)",
			table: "public.orders", insert: `INSERT INTO %s (id, total) VALUES (%d, 12.345)`,
			fields: []string{"id", "area", "total", "qty", "note"}, key: []string{"id"}, after: map[string]any{"total": "12.345"}},
		{ddl: `ALTER TABLE orders ALTER COLUMN qty TYPE bigint`, change: "column qty type integer -> bigint",
			table: "public.orders", insert: `INSERT INTO %s (id, qty) VALUES (%d, 9007199254740993)`,
			fields: []string{"id", "area", "total", "qty", "note"}, key: []string{"id"}, after: map[string]any{"qty": json.Number("9007199254740993")}},
		{ddl: `ALTER TABLE orders ALTER COLUMN qty TYPE text`, change: "column qty type bigint -> text",
			table: "public.orders", insert: `INSERT INTO %s (id, qty) VALUES (%d, 'seven')`,
			fields: []string{"id", "area", "total", "qty", "note"}, key: []string{"id"}, after: map[string]any{"qty": "seven"}},
		{ddl: `ALTER TABLE orders DROP COLUMN note`, change: "column note dropped", table: "public.orders",
			insert: `INSERT INTO %s (id) VALUES (%d)`, fields: []string{"id", "area", "total", "qty"}, key: []string{"id"}},
		{ddl: `ALTER TABLE orders RENAME TO orders_v2`, change: "table orders renamed to orders_v2", table: "public.orders_v2",
			insert: `INSERT INTO %s (id) VALUES (%d)`, fields: []string{"id", "area", "total", "qty"}, key: []string{"id"}},
		{ddl: `DROP TABLE doomed`, table: "public.orders_v2",
			insert: `INSERT INTO %s (id) VALUES (%d)`, fields: []string{"id", "area", "total", "qty"}, key: []string{"id"}},
		{ddl: `ALTER TABLE orders_v2 SET SCHEMA archive`, change: "table moved from schema public to archive", table: "archive.orders_v2",
			insert: `INSERT INTO %s (id) VALUES (%d)`, fields: []string{"id", "area", "total", "qty"}, key: []string{"id"}},
		{ddl: `ALTER TABLE archive.orders_v2 DROP CONSTRAINT orders_pkey`, change: "primary key (id) -> none", table: "archive.orders_v2",
			insert: `INSERT INTO %s (id) VALUES (%d)`, fields: []string{"id", "area", "total", "qty"},
			then: func(t *testing.T, table string, id int, wait func(string, int) change) {
				// Without a key, as for any table without a primary key:
				// null keys, and FULL images.
				exec(t, src, fmt.Sprintf(`DELETE FROM %s WHERE id = %d`, table, id))
				if c := wait("d", id); c.Key != nil || c.Before["area"] != "w" {
					t.Errorf("delete without a primary key: %v %s", c.Key, c.Raw)
				}
			}},
		{ddl: `ALTER TABLE archive.orders_v2 ADD PRIMARY KEY (id, area)`, change: "primary key none -> (id, area)", table: "archive.orders_v2",
			insert: `INSERT INTO %s (id, area) VALUES (%d, 'south')`, fields: []string{"id", "area", "total", "qty"}, key: []string{"id", "area"}},
		{ddl: `ALTER TABLE archive.orders_v2 REPLICA IDENTITY DEFAULT`, change: "replica identity full -> default", table: "archive.orders_v2",
			insert: `INSERT INTO %s (id, total) VALUES (%d, 1)`, fields: []string{"id", "area", "total", "qty"}, key: []string{"id", "area"},
			then: func(t *testing.T, table string, id int, wait func(string, int) change) {
				// Under DEFAULT an update has no before-image and a delete
				// only the key's values.
				exec(t, src, fmt.Sprintf(`UPDATE %s SET total = 2 WHERE id = %d`, table, id))
				if c := wait("u", id); c.Before != nil || num(c.After["total"]) != "2.000" {
					t.Errorf("update under REPLICA IDENTITY DEFAULT: %s", c.Raw)
				}
				exec(t, src, fmt.Sprintf(`DELETE FROM %s WHERE id = %d`, table, id))
				if c := wait("d", id); c.Before["area"] != "w" || c.Before["total"] != nil {
					t.Errorf("delete under REPLICA IDENTITY DEFAULT: %s", c.Raw)
				}
			}},
		{ddl: `ALTER TABLE archive.orders_v2 REPLICA IDENTITY NOTHING`, change: "replica identity default -> nothing", table: "archive.orders_v2",
			insert: `INSERT INTO %s (id) VALUES (%d)`, fields: []string{"id", "area", "total", "qty"}, key: []string{"id", "area"},
			then: func(t *testing.T, table string, id int, _ func(string, int) change) {
				// PostgreSQL refuses updates of a published table without
				// a replica identity.
				if _, err := src.Exec(context.Background(), fmt.Sprintf(`UPDATE %s SET total = 3 WHERE id = %d`, table, id)); err == nil ||
					!strings.Contains(err.Error(), "replica identity") {
					t.Errorf("update under REPLICA IDENTITY NOTHING: %v", err)
				}
			}},
		{ddl: `ALTER TABLE archive.orders_v2 REPLICA IDENTITY FULL`, change: "replica identity nothing -> full", table: "archive.orders_v2",
			insert: `INSERT INTO %s (id) VALUES (%d)`, fields: []string{"id", "area", "total", "qty"}, key: []string{"id", "area"},
			then: func(t *testing.T, table string, id int, wait func(string, int) change) {
				exec(t, src, fmt.Sprintf(`UPDATE %s SET total = 4 WHERE id = %d`, table, id))
				if c := wait("u", id); c.Before == nil || c.Before["area"] != "w" || num(c.After["total"]) != "4.000" {
					t.Errorf("update under REPLICA IDENTITY FULL: %s", c.Raw)
				}
			}},
	}

	// probe inserts step i's row and checks its record; it returns the
	// record's position.
	probe := func(i int, st schemaStep) streamPos {
		t.Helper()
		id := i + 1
		table := identOf(st.table)
		exec(t, src, fmt.Sprintf(st.insert, table, id))
		c := waitOrders("c", id)
		if want := env + "." + st.table; c.Topic != want || c.Source.Schema+"."+c.Source.Table != st.table {
			t.Errorf("step %d (%s): record on %s from %s.%s, want %s", i, st.ddl, c.Topic, c.Source.Schema, c.Source.Table, want)
		}
		if got := keysOf(c.After); !sameSet(got, st.fields) {
			t.Errorf("step %d (%s): fields %v, want %v", i, st.ddl, got, st.fields)
		}
		if got := keysOf(c.Key); !sameSet(got, st.key) || (c.Key == nil) != (st.key == nil) {
			t.Errorf("step %d (%s): key %v, want fields %v", i, st.ddl, c.Key, st.key)
		}
		for f, v := range st.after {
			if !reflect.DeepEqual(c.After[f], v) {
				t.Errorf("step %d (%s): %s = %#v, want %#v", i, st.ddl, f, c.After[f], v)
			}
		}
		if st.then != nil {
			st.then(t, table, id, waitOrders)
		}
		return positionOf(t, c)
	}

	probeAt := make([]streamPos, len(steps))
	var droppedAt int
	for i, st := range steps {
		exec(t, src, st.ddl)
		if strings.HasPrefix(st.ddl, "DROP TABLE") {
			droppedAt = len(bystanderRecords(t, cons.all(), env))
		}
		probeAt[i] = probe(i, st)
	}
	// The other table kept streaming after the DROP TABLE.
	eventually(t, 10*time.Second, "bystander records after DROP TABLE", func() (bool, string) {
		n := len(bystanderRecords(t, cons.all(), env))
		return n > droppedAt+10, fmt.Sprintf("%d records, %d at the drop", n, droppedAt)
	})

	// A DDL while the capture is down is recorded when it comes back,
	// against the description it kept.
	stop()
	exec(t, src, `ALTER TABLE archive.orders_v2 ADD COLUMN late integer DEFAULT 1`)
	late := schemaStep{change: "column late added (integer)", table: "archive.orders_v2", insert: `INSERT INTO %s (id, late) VALUES (%d, 7)`,
		fields: []string{"id", "area", "total", "qty", "late"}, key: []string{"id", "area"}, after: map[string]any{"late": json.Number("7")}}
	h.supervise(e)
	steps = append(steps, late)
	probeAt = append(probeAt, probe(len(steps)-1, late))

	orders.stop()
	bystander.Stop()

	// Recorded: the changes of orders in order, each at the position of
	// the table's first record after its DDL, and of quiet; nothing else
	// (not the first sight of a table, not the capture's restart).
	all, err := e.RelationChanges(ctx, env, 0)
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, st := range steps {
		if st.change != "" {
			want = append(want, st.change)
		}
	}
	var ordersChanges []RelationChange
	for _, c := range all {
		switch c.RelationOID {
		case ordersOID:
			ordersChanges = append(ordersChanges, c)
			got = append(got, c.Description())
		case quietOID:
			if c.Description() != "column b added (integer)" || c.New.QualifiedName() != "public.quiet" {
				t.Errorf("change of quiet: %q", c.Description())
			}
		default:
			t.Errorf("change of %s (oid %d): %q", c.New.QualifiedName(), c.RelationOID, c.Description())
		}
	}
	if len(all) != len(ordersChanges)+1 {
		t.Errorf("%d changes, want those of orders and one of quiet", len(all))
	}
	if !reflect.DeepEqual(got, want) {
		for _, c := range ordersChanges {
			t.Logf("%s\n%s\n%s", c.Description(), mustJSON(c.Old), mustJSON(c.New))
		}
		t.Fatalf("changes of orders:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	records := decodeAll(t, cons.all())
	changedAt := make([]streamPos, len(ordersChanges))
	for i, c := range ordersChanges {
		changedAt[i] = streamPos{lsn: int64(c.LSN)}
		for _, r := range records {
			if slices.Contains(ordersTopics, r.Topic) && !r.Tombstone && *r.Source.LSN == int64(c.LSN) {
				changedAt[i] = positionOf(t, r)
				break
			}
		}
	}
	k := 0
	for i, st := range steps {
		if st.change == "" {
			continue
		}
		c := ordersChanges[k]
		k++
		// After the previous step's row, at or before this step's.
		if at := changedAt[k-1]; i > 0 && !probeAt[i-1].before(at) || probeAt[i].before(at) {
			t.Errorf("%q at %+v, not between the rows before (%+v) and after (%+v)", st.change, at,
				probeAt[max(i-1, 0)], probeAt[i])
		}
		if c.New.QualifiedName() != st.table || c.EnvironmentID != env || c.At.IsZero() {
			t.Errorf("%q: %+v", st.change, c)
		}
	}
	if c := ordersChanges[6]; c.Old.QualifiedName() != "public.orders" || c.New.QualifiedName() != "public.orders_v2" {
		t.Errorf("rename recorded from %s to %s", c.Old.QualifiedName(), c.New.QualifiedName())
	}
	since, err := e.RelationChanges(ctx, env, ordersChanges[5].LSN)
	if err != nil {
		t.Fatal(err)
	}
	if len(since) != len(ordersChanges)-6 || since[0].LSN != ordersChanges[6].LSN {
		t.Errorf("changes since %s: %d, from %s", ordersChanges[5].LSN, len(since), since[0].LSN)
	}

	// The first record of orders after each change, and no other, is
	// marked with the change's commit time.
	marked := map[int64]string{}
	for _, r := range cons.all() {
		for _, hd := range r.Headers {
			if hd.Key != SchemaChangeHeader {
				continue
			}
			var c change
			if err := json.Unmarshal(r.Value, &c); err != nil || c.Source.LSN == nil {
				t.Fatalf("marked record %s: %v", r.Value, err)
			}
			if at, err := time.Parse(time.RFC3339Nano, string(hd.Value)); err != nil || at.UnixMilli() != c.Source.TsMs {
				t.Errorf("marked record at %s: header %q, commit time %d", pglogrepl.LSN(*c.Source.LSN), hd.Value, c.Source.TsMs)
			}
			marked[*c.Source.LSN] = c.Source.Table
		}
	}
	for _, c := range all {
		if _, ok := marked[int64(c.LSN)]; !ok {
			t.Errorf("the record at %s after %q is not marked", c.LSN, c.Description())
		}
		delete(marked, int64(c.LSN))
	}
	if len(marked) > 0 {
		t.Errorf("records marked where nothing changed: %v", marked)
	}

	// Every record of orders carries the description of its position in
	// the stream: its topic, fields and key. The stream is in commit order,
	// so a transaction that began before the first record after a change
	// and committed after it has records at lower LSNs under the new
	// description; the position is source.sequence's, not the LSN alone.
	descAt := func(at streamPos) TableDescription {
		d := ordersChanges[0].Old
		for i, c := range ordersChanges {
			if !at.before(changedAt[i]) {
				d = c.New
			}
		}
		return d
	}
	inserted := map[string]bool{}
	var checked int
	for _, c := range records {
		if !slices.Contains(ordersTopics, c.Topic) || c.Tombstone {
			continue
		}
		d := descAt(positionOf(t, c))
		var names []string
		for _, col := range d.Columns {
			names = append(names, col.Name)
		}
		if c.Topic != env+"."+d.QualifiedName() || c.Source.Schema != d.Schema || c.Source.Table != d.Table {
			t.Errorf("record at %s on %s from %s.%s, want %s", pglogrepl.LSN(*c.Source.LSN), c.Topic, c.Source.Schema, c.Source.Table, d.QualifiedName())
		}
		for _, img := range []map[string]any{c.Before, c.After} {
			if img != nil && !sameSet(keysOf(img), names) {
				t.Errorf("record at %s has fields %v, want %v: %s", pglogrepl.LSN(*c.Source.LSN), keysOf(img), names, c.Raw)
			}
		}
		if !sameSet(keysOf(c.Key), d.Key) || (c.Key == nil) != (len(d.Key) == 0) {
			t.Errorf("record at %s has key %v, want fields %v", pglogrepl.LSN(*c.Source.LSN), c.Key, d.Key)
		}
		if c.Op == "c" {
			inserted[num(c.After["id"])] = true
		}
		checked++
	}
	// Every row the writer inserted is on the topics.
	for _, id := range orders.ids() {
		if !inserted[fmt.Sprint(id)] {
			eventually(t, 10*time.Second, fmt.Sprintf("insert of orders row %d", id), func() (bool, string) {
				_, ok := find(ordersTopics, byID("c", id))
				return ok, ""
			})
		}
	}
	t.Logf("%d records of orders checked, %d rows inserted by the writer", checked, len(orders.ids()))

	// The other table lost nothing.
	eventually(t, 20*time.Second, "bystander topic matches the table", func() (bool, string) {
		var rs = bystanderRecords(t, cons.all(), env)
		d := capturetest.Diff(capturetest.SourceRows(t, src, "bystander"), capturetest.TopicRows(t, rs))
		return d == "", d
	})

	// The status shows the changes, newest first.
	st, err := e.Observe(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.SchemaChanges) != len(all) {
		t.Fatalf("status shows %d changes, want %d: %s", len(st.SchemaChanges), len(all), mustJSON(st.SchemaChanges))
	}
	for i, sc := range st.SchemaChanges {
		c := all[len(all)-1-i]
		if sc.LSN != int64(c.LSN) || sc.Change != c.Description() || sc.Table != c.New.QualifiedName() || !sc.At.Equal(c.At) {
			t.Errorf("status change %d: %+v, want %s %q", i, sc, c.LSN, c.Description())
		}
	}
	if sc := st.SchemaChanges[0]; sc.Change != "column late added (integer)" || sc.Table != "archive.orders_v2" || sc.OldTable != "" {
		t.Errorf("newest change in the status: %+v", sc)
	}
	var renamed, moved bool
	for _, sc := range st.SchemaChanges {
		renamed = renamed || sc.OldTable == "public.orders" && sc.Table == "public.orders_v2"
		moved = moved || sc.OldTable == "public.orders_v2" && sc.Table == "archive.orders_v2"
	}
	if !renamed || !moved {
		t.Errorf("status without the rename or the move: %s", mustJSON(st.SchemaChanges))
	}

	// The log says each change at Info.
	lines := logs.lines("embedded capture: table changed")
	if len(lines) != len(all) {
		t.Errorf("%d changes logged, want %d:\n%s", len(lines), len(all), strings.Join(lines, "\n"))
	}
	rename := logs.lines(`change="column region renamed to area"`)
	if len(rename) != 1 || !strings.Contains(rename[0], "level=INFO") || !strings.Contains(rename[0], "environment_id="+env) ||
		!strings.Contains(rename[0], "table=public.orders") || !strings.Contains(rename[0], "lsn="+ordersChanges[1].LSN.String()) {
		t.Errorf("log of the column rename: %q", rename)
	}
}

// identOf quotes schema.table.
func identOf(qualified string) string {
	schema, table, _ := strings.Cut(qualified, ".")
	return pgx.Identifier{schema, table}.Sanitize()
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

func bystanderRecords(t testing.TB, rs []*kgo.Record, env string) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	for _, r := range rs {
		if r.Topic == env+".public.bystander" {
			out = append(out, r)
		}
	}
	return out
}

// TestRenamedTableStaysPublished: under a role that is not a superuser the
// publication lists tables (FOR TABLE), which PostgreSQL keeps by oid: a
// table renamed or moved to another schema stays published, and its
// records go to the topic of its new name, as Debezium's do.
func TestRenamedTableStaysPublished(t *testing.T) {
	h := newHarness(t)
	dsn := pgtest.NewDatabase(t)
	admin := connect(t, dsn)
	replicationRole(t, admin)
	exec(t, admin, `CREATE SCHEMA archive AUTHORIZATION cdcq_repl`)
	exec(t, admin, `CREATE TABLE mine (id int PRIMARY KEY, v text); ALTER TABLE mine OWNER TO cdcq_repl; INSERT INTO mine VALUES (1, 'x')`)
	userDSN := withUser(t, dsn, "cdcq_repl", "pw")
	user := connect(t, userDSN)

	const env = "envrename"
	sp := spec(env, userDSN)
	e := h.engine("a", nil)
	if err := e.Ensure(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, admin, `SELECT count(*) FROM pg_publication WHERE pubname = $1 AND NOT puballtables`, sp.PublicationName); n != 1 {
		t.Fatalf("publication %s is not FOR TABLE", sp.PublicationName)
	}
	cons := consume(t, h.brokers, env+".public.mine", env+".public.yours", env+".archive.yours")
	h.supervise(e)
	streamingRow(t, e, env)
	published := func(schema, table string) int64 {
		return queryInt(t, admin, `SELECT count(*) FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3`,
			sp.PublicationName, schema, table)
	}
	for i, step := range []struct{ ddl, schema, table string }{
		{`ALTER TABLE mine RENAME TO yours`, "public", "yours"},
		{`ALTER TABLE yours SET SCHEMA archive`, "archive", "yours"},
	} {
		exec(t, user, step.ddl)
		if published(step.schema, step.table) != 1 {
			t.Errorf("after %s: %s.%s is not published", step.ddl, step.schema, step.table)
		}
		id := i + 2
		exec(t, user, fmt.Sprintf(`INSERT INTO %s VALUES (%d, 'y')`, pgx.Identifier{step.schema, step.table}.Sanitize(), id))
		topic := env + "." + step.schema + "." + step.table
		eventually(t, 10*time.Second, "record on "+topic, func() (bool, string) {
			for _, c := range decodeAll(t, cons.all()) {
				if c.Topic == topic && c.Op == "c" && num(c.After["id"]) == fmt.Sprint(id) {
					return true, ""
				}
			}
			return false, ops(decodeAll(t, cons.all()))
		})
	}
	// A refresh of the publication later changes nothing.
	time.Sleep(time.Second)
	if published("archive", "yours") != 1 {
		t.Error("archive.yours left the publication")
	}
	changes, err := e.RelationChanges(context.Background(), env, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.Description())
	}
	if want := []string{"table mine renamed to yours", "table moved from schema public to archive"}; !reflect.DeepEqual(got, want) {
		t.Errorf("changes %q, want %q", got, want)
	}
	st, err := e.Observe(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Warnings) != 0 || st.Status != jobs.StatusRunning {
		t.Errorf("status %s", mustJSON(st))
	}
}

// TestStatusShowsLastSchemaChanges: the status lists the last
// statusSchemaChanges changes, newest first, and a deleted environment's
// changes are gone.
func TestStatusShowsLastSchemaChanges(t *testing.T) {
	h := newHarness(t)
	e := h.engine("a", nil)
	ctx := context.Background()
	const env = "envmany"
	if err := e.store.register(ctx, captureRow{EnvironmentID: env, ConnectionSealed: "x", SlotName: "s", PublicationName: "p", TopicPrefix: env}); err != nil {
		t.Fatal(err)
	}
	log := newRelationLog(e.store, env, testLogger())
	desc := TableDescription{Schema: "public", Table: "t", ReplicaIdentity: "full"}
	const n = 25
	for i := range n {
		desc.Columns = append(slices.Clone(desc.Columns), ColumnDescription{Name: fmt.Sprintf("c%d", i), Type: "integer", TypeOID: 23, TypeMod: -1, Attnum: int16(i + 1)})
		changed, err := log.observe(ctx, 42, pglogrepl.LSN(1000+i), desc)
		if err != nil {
			t.Fatal(err)
		}
		if changed != (i > 0) {
			t.Fatalf("observation %d: changed %v; only the first is no change", i, changed)
		}
	}
	got, err := e.store.recentSchemaChanges(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != statusSchemaChanges || got[0].LSN != 1024 || got[0].Change != "column c24 added (integer)" || got[19].LSN != 1005 {
		t.Fatalf("status changes: %s", mustJSON(got))
	}
	all, err := e.RelationChanges(ctx, env, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The first description was the table's first sight.
	if len(all) != n-1 || all[0].LSN != 1001 {
		t.Fatalf("%d changes, the first at %s", len(all), all[0].LSN)
	}
	// Replayed WAL records nothing again.
	replay := newRelationLog(e.store, env, testLogger())
	if changed, err := replay.observe(ctx, 42, 1010, all[9].New); err != nil || changed {
		t.Fatalf("replayed first description: changed %v, %v", changed, err)
	}
	// The record after a change read again is marked again.
	if changed, err := replay.observe(ctx, 42, 1011, all[10].New); err != nil || !changed {
		t.Fatalf("replayed change: changed %v, %v", changed, err)
	}
	if again, _ := e.RelationChanges(ctx, env, 0); len(again) != len(all) {
		t.Errorf("after a replay: %d changes, want %d", len(again), len(all))
	}
	if err := e.store.markDeleted(ctx, env); err != nil {
		t.Fatal(err)
	}
	if left, _ := e.RelationChanges(ctx, env, 0); len(left) != 0 {
		t.Errorf("%d changes left after delete", len(left))
	}
	if stored, _ := e.store.loadDescriptions(ctx, env); len(stored) != 0 {
		t.Errorf("%d descriptions left after delete", len(stored))
	}
}

// streamPos is a record's position in the stream: the end of the
// transaction before its own (source.sequence's first element; 0 when
// unknown, after a restart) and its LSN.
type streamPos struct{ lastCommit, lsn int64 }

func positionOf(t testing.TB, c change) streamPos {
	t.Helper()
	p := streamPos{lsn: *c.Source.LSN}
	if c.Source.Sequence == nil {
		return p
	}
	var seq []*string
	if err := json.Unmarshal([]byte(*c.Source.Sequence), &seq); err != nil || len(seq) != 2 {
		t.Fatalf("source.sequence %q: %v", *c.Source.Sequence, err)
	}
	if seq[0] != nil {
		n, err := strconv.ParseInt(*seq[0], 10, 64)
		if err != nil {
			t.Fatalf("source.sequence %q: %v", *c.Source.Sequence, err)
		}
		p.lastCommit = n
	}
	return p
}

// before says whether p comes before q in the stream. Transactions follow
// in commit order, so the end of the previous transaction orders them;
// where either is unknown only the LSNs can be compared.
func (p streamPos) before(q streamPos) bool {
	if p.lastCommit == 0 || q.lastCommit == 0 || p.lastCommit == q.lastCommit {
		return p.lsn < q.lsn
	}
	return p.lastCommit < q.lastCommit
}
