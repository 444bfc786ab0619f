package service

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/config"
)

// Schema changes under running cached queries: one table per kind of DDL,
// each with its own query, a random workload over all of them, every DDL
// applied at once in the middle of it. A query either stays equal to
// PostgreSQL's answer or is FAILED within 10 s with a reason that names
// the change, and its result then says STALE with the rows it had before
// the change; it is never LIVE with another answer.

// ddlShape is what a table of the schema-change test looks like now, so
// that the workload writes what the table takes.
type ddlShape struct {
	table, region string
	total         bool // the total column exists
	bigQty        bool // qty takes values beyond int4
	wideRegion    bool // region takes more than 20 characters
	nullRegion    bool // region takes NULL
	// nullFirst makes the table's next change an insert with a NULL
	// region.
	nullFirst bool
	textQty   bool // qty is text
	scale     int  // total's scale
	dropped   bool
}

// ddlCase is one DDL and what it must do to the query over its table.
type ddlCase struct {
	name string
	// ddl is the statement; %[1]s is the table.
	ddl   string
	shape func(s *ddlShape)
	// fails says whether the query must fail, on Flink or on the
	// embedded engine; reason holds words its reason must have.
	fails  func(flink bool) bool
	reason []string
}

func always(bool) bool        { return true }
func never(bool) bool         { return false }
func onFlink(flink bool) bool { return flink }

var ddlCases = []ddlCase{
	{name: "add_column", ddl: `ALTER TABLE %[1]s ADD COLUMN channel text`, fails: never},
	{name: "drop_unread", ddl: `ALTER TABLE %[1]s DROP COLUMN note`, fails: never},
	{name: "rename_unread", ddl: `ALTER TABLE %[1]s RENAME COLUMN note TO memo`, fails: never},
	{name: "varchar_longer", ddl: `ALTER TABLE %[1]s ALTER COLUMN region TYPE varchar(40)`,
		shape: func(s *ddlShape) { s.wideRegion = true }, fails: never},
	{name: "numeric_wider", ddl: `ALTER TABLE %[1]s ALTER COLUMN total TYPE numeric(14,3)`,
		shape: func(s *ddlShape) { s.scale = 3 }, fails: onFlink, reason: []string{"total", "numeric(14,3)"}},
	{name: "int_bigint", ddl: `ALTER TABLE %[1]s ALTER COLUMN qty TYPE bigint`,
		shape: func(s *ddlShape) { s.bigQty = true }, fails: onFlink, reason: []string{"qty", "bigint"}},
	{name: "identity_default", ddl: `ALTER TABLE %[1]s REPLICA IDENTITY DEFAULT`,
		fails: onFlink, reason: []string{"replica identity"}},
	{name: "rename_read", ddl: `ALTER TABLE %[1]s RENAME COLUMN region TO area`,
		shape: func(s *ddlShape) { s.region = "area" }, fails: always, reason: []string{"region", "renamed"}},
	{name: "drop_read", ddl: `ALTER TABLE %[1]s DROP COLUMN total`,
		shape: func(s *ddlShape) { s.total = false }, fails: always, reason: []string{"total", "dropped"}},
	{name: "numeric_rounded", ddl: `ALTER TABLE %[1]s ALTER COLUMN total TYPE numeric(12,1)`,
		shape: func(s *ddlShape) { s.scale = 1 }, fails: always, reason: []string{"total", "numeric(12,1)"}},
	{name: "int_text", ddl: `ALTER TABLE %[1]s ALTER COLUMN qty TYPE text`,
		shape: func(s *ddlShape) { s.textQty = true }, fails: always, reason: []string{"qty", "text"}},
	// Dropping NOT NULL keeps the meaning of every row until one has a
	// NULL (pgoutput's table description does not say NOT NULL, so the
	// capture sees no change): the engine stops at that row. The first
	// write after the DDL is such a row, so that the answer before the
	// DDL is the last correct one.
	{name: "null_allowed", ddl: `ALTER TABLE %[1]s ALTER COLUMN region DROP NOT NULL`,
		shape: func(s *ddlShape) { s.nullRegion, s.nullFirst = true, true }, fails: always, reason: []string{"region", "null"}},
	{name: "pk_changed", ddl: `ALTER TABLE %[1]s DROP CONSTRAINT %[1]s_pkey, ADD PRIMARY KEY (id, region)`,
		fails: always, reason: []string{"primary key"}},
	{name: "pk_dropped", ddl: `ALTER TABLE %[1]s DROP CONSTRAINT %[1]s_pkey`,
		fails: always, reason: []string{"primary key"}},
	{name: "table_renamed", ddl: `ALTER TABLE %[1]s RENAME TO %[1]s_old`,
		shape: func(s *ddlShape) { s.table += "_old" }, fails: always, reason: []string{"renamed"}},
	{name: "table_dropped", ddl: `DROP TABLE %[1]s`,
		shape: func(s *ddlShape) { s.dropped = true }, fails: always, reason: []string{"dropped"}},
}

// ddlSchema is the Prisma schema of the test's tables: one model per case.
func ddlSchema() string {
	var b strings.Builder
	b.WriteString("datasource db {\n  provider = \"postgresql\"\n  url      = env(\"DATABASE_URL\")\n}\n")
	for _, c := range ddlCases {
		fmt.Fprintf(&b, `
model T_%[1]s {
  id     Int      @id
  region String   @db.VarChar(20)
  total  Decimal? @db.Decimal(12, 2)
  qty    Int
  note   String?  @db.VarChar(20)

  @@map("t_%[1]s")
}
`, c.name)
	}
	return b.String()
}

const ddlQuery = `SELECT region, count(*) AS n, sum(total) AS s, sum(qty) AS units FROM t_%s GROUP BY region`

// ddlWorkload writes random changes to every table of the test in its
// current shape.
type ddlWorkload struct {
	mu     sync.Mutex
	rng    *rand.Rand
	conn   *pgx.Conn
	shapes []*ddlShape
	nextID int
	writes int
}

func newDDLWorkload(conn *pgx.Conn, seed uint64) *ddlWorkload {
	w := &ddlWorkload{rng: rand.New(rand.NewPCG(seed, 15)), conn: conn}
	for _, c := range ddlCases {
		w.shapes = append(w.shapes, &ddlShape{table: "t_" + c.name, region: "region", total: true, scale: 2})
	}
	return w
}

// createTables creates the tables, as `prisma migrate` would from
// ddlSchema.
func (w *ddlWorkload) createTables(t *testing.T) {
	t.Helper()
	for _, s := range w.shapes {
		if _, err := w.conn.Exec(context.Background(), fmt.Sprintf(`CREATE TABLE %s (id integer PRIMARY KEY,
			region varchar(20) NOT NULL, total numeric(12,2), qty integer NOT NULL, note varchar(20))`, s.table)); err != nil {
			t.Fatal(err)
		}
	}
}

// statement picks one change of one table.
func (w *ddlWorkload) statement(s *ddlShape) (string, []any) {
	regions := []string{"eu", "us", "ap", "sa"}
	region := any(regions[w.rng.IntN(len(regions))])
	if s.nullFirst {
		s.nullFirst = false
		w.nextID++
		return fmt.Sprintf(`INSERT INTO %s (id, region, qty) VALUES ($1, NULL, 1)`, s.table), []any{w.nextID}
	}
	switch {
	case s.nullRegion && w.rng.IntN(4) == 0:
		region = nil
	case s.wideRegion && w.rng.IntN(3) == 0:
		region = "south-east-asia-pacific-" + regions[w.rng.IntN(len(regions))]
	}
	qty := any(1 + w.rng.IntN(50))
	if s.bigQty && w.rng.IntN(3) == 0 {
		qty = 3_000_000_000 + w.rng.IntN(1000)
	}
	if s.textQty {
		qty = fmt.Sprint(qty)
	}
	var total any
	if w.rng.IntN(6) > 0 {
		total = fmt.Sprintf("%d.%0*d", w.rng.IntN(500), s.scale, w.rng.IntN(pow10(s.scale)))
	}
	// The placeholders' casts follow the column's type: pgx keeps a
	// statement's parameter types from before the DDL otherwise.
	qtyType := "integer"
	switch {
	case s.textQty:
		qtyType = "text"
	case s.bigQty:
		qtyType = "bigint"
	}
	id := 1 + w.rng.IntN(w.nextID+1)
	switch k := w.rng.IntN(10); {
	case k < 5:
		w.nextID++
		if !s.total {
			return fmt.Sprintf(`INSERT INTO %s (id, %s, qty) VALUES ($1, $2, $3::%s)`, s.table, s.region, qtyType), []any{w.nextID, region, qty}
		}
		return fmt.Sprintf(`INSERT INTO %s (id, %s, total, qty) VALUES ($1, $2, $3::numeric, $4::%s)`, s.table, s.region, qtyType),
			[]any{w.nextID, region, total, qty}
	case k < 8:
		if !s.total || s.textQty {
			return fmt.Sprintf(`UPDATE %s SET %s = $2 WHERE id = $1`, s.table, s.region), []any{id, region}
		}
		return fmt.Sprintf(`UPDATE %s SET total = total + 1.25, qty = qty + 1, %s = $2 WHERE id = $1`, s.table, s.region), []any{id, region}
	default:
		return fmt.Sprintf(`DELETE FROM %s WHERE id = $1`, s.table), []any{id}
	}
}

func pow10(n int) int {
	p := 1
	for range n {
		p *= 10
	}
	return p
}

// run writes txs transactions of up to 5 changes, each to one table.
func (w *ddlWorkload) run(t *testing.T, txs int) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	ctx := context.Background()
	for range txs {
		s := w.shapes[w.rng.IntN(len(w.shapes))]
		if s.dropped {
			continue
		}
		tx, err := w.conn.Begin(ctx)
		if err != nil {
			t.Error(err)
			return
		}
		for range 1 + w.rng.IntN(5) {
			sql, args := w.statement(s)
			if _, err := tx.Exec(ctx, sql, args...); err != nil {
				t.Errorf("%s %v: %v", sql, args, err)
				_ = tx.Rollback(ctx)
				return
			}
			w.writes++
		}
		if err := tx.Commit(ctx); err != nil {
			t.Error(err)
			return
		}
	}
}

// during runs the workload in the background until the returned function
// is called.
func (w *ddlWorkload) during(t *testing.T) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			w.run(t, 5)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return func() { close(stop); <-done }
}

// applyDDL applies every case's DDL, each in its own transaction, and
// updates the shapes.
func (w *ddlWorkload) applyDDL(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, c := range ddlCases {
		s := w.shapes[i]
		if _, err := w.conn.Exec(context.Background(), fmt.Sprintf(c.ddl, s.table)); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if c.shape != nil {
			c.shape(s)
		}
	}
}

// queryState is GET /cachedQueries/{id} and its result, decoded.
type queryState struct {
	Status, Reason, JobState string
	ResultState              string
	CaughtUp                 bool
	Rows                     []string
}

func (s *system) queryState(t *testing.T, id string) (queryState, error) {
	var st queryState
	var view struct {
		Status   string `json:"status"`
		Reason   string `json:"reason"`
		JobState string `json:"jobState"`
	}
	if err := getJSON(s.apiURL+"/cachedQueries/"+id, &view); err != nil {
		return st, err
	}
	var res struct {
		State    string            `json:"state"`
		CaughtUp bool              `json:"caughtUp"`
		Rows     []json.RawMessage `json:"rows"`
	}
	if err := getJSON(s.apiURL+"/cachedQueries/"+id+"/result", &res); err != nil {
		return st, err
	}
	st.Status, st.Reason, st.JobState = view.Status, view.Reason, view.JobState
	st.ResultState, st.CaughtUp, st.Rows = res.State, res.CaughtUp, canonicalRows(t, res.Rows, dropQueryID)
	return st, nil
}

func getJSON(url string, into any) error {
	res, err := http.Get(url)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", url, res.StatusCode)
	}
	return json.NewDecoder(res.Body).Decode(into)
}

// ddlDeployment is one system the test runs the cases on.
type ddlDeployment struct {
	name  string
	flink bool
	s     *system
	env   string
	ids   []string
}

func TestEmbeddedSchemaChanges(t *testing.T) {
	s := startSystemWith(t, func(*Infra, config.Config, *slog.Logger) []WorkerDeps { return nil })
	s.startEmbeddedWorker()
	runSchemaChanges(t, []*ddlDeployment{{name: "embedded", s: s}})
}

func TestClusterSchemaChanges(t *testing.T) {
	runSchemaChanges(t, []*ddlDeployment{
		{name: "debezium_flink", flink: true, s: startClusterSystem(t, clusterEngines{debezium: true, flink: true})},
	})
}

func runSchemaChanges(t *testing.T, deployments []*ddlDeployment) {
	src, conn := sourceDatabase(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	w := newDDLWorkload(conn, seed)
	w.createTables(t)
	w.run(t, 100)
	schema := ddlSchema()
	for _, d := range deployments {
		d.env = uniqueEnv("ddl")
		for _, c := range ddlCases {
			res := d.s.postJSON("/createCachedQuery", map[string]string{
				"connectionString": src, "environmentId": d.env, "schema": schema, "sqlQuery": fmt.Sprintf(ddlQuery, c.name)})
			if res.status != http.StatusCreated {
				t.Fatalf("%s: create the query of %s: %d %s", d.name, c.name, res.status, res.body)
			}
			d.ids = append(d.ids, res.json(t)["id"].(string))
		}
		d.s.deleteOnCleanup(src, d.env)
	}
	// A Flink job reads values into the types the Prisma schema gives:
	// Int over a bigint column is refused before any job starts (the
	// embedded engine reads it by value, and takes it).
	if _, err := conn.Exec(context.Background(), `CREATE TABLE x_exact (id integer PRIMARY KEY, qty bigint NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	exactSchema := "datasource db {\n  provider = \"postgresql\"\n  url      = env(\"DATABASE_URL\")\n}\n\nmodel X_exact {\n  id  Int @id\n  qty Int\n\n  @@map(\"x_exact\")\n}\n"
	for _, d := range deployments {
		res := d.s.postJSON("/createCachedQuery", map[string]string{"connectionString": src, "environmentId": d.env,
			"schema": exactSchema, "sqlQuery": `SELECT count(*) AS n, sum(qty) AS units FROM x_exact`})
		if res.status != http.StatusCreated {
			t.Fatalf("%s: create over x_exact: %d %s", d.name, res.status, res.body)
		}
		id := res.json(t)["id"].(string)
		var st queryState
		waitFor(t, time.Minute, d.name+": the query over x_exact started or failed", func() bool {
			var err error
			st, err = d.s.queryState(t, id)
			return err == nil && (st.Status == "FAILED" || st.ResultState == "LIVE")
		})
		switch {
		case d.flink && (st.Status != "FAILED" || !strings.Contains(st.Reason, "column x_exact.qty is bigint") || st.JobState != ""):
			t.Errorf("%s: Int over bigint: %+v, want FAILED before any job", d.name, st)
		case !d.flink && st.Status == "FAILED":
			t.Errorf("%s: Int over bigint failed: %s", d.name, st.Reason)
		}
		t.Logf("%s: Int over bigint: %s %s", d.name, st.Status, st.Reason)
	}

	// Flink needs the before-image of every update: the capture sets
	// REPLICA IDENTITY FULL when it starts (Debezium's connector, after
	// createCachedQuery returned), and the workload waits for it.
	waitFor(t, 2*time.Minute, "REPLICA IDENTITY FULL on every table", func() bool {
		var full int
		conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_class WHERE relname LIKE 't\_%' AND relkind = 'r' AND relreplident = 'f'`).Scan(&full)
		return full == len(ddlCases)
	})
	stop := w.during(t)
	time.Sleep(3 * time.Second)
	stop()
	compareDDL(t, conn, w, deployments, nil, "before the DDL")

	// Quiet for a while, so that every engine has written the result of
	// every change before the DDL: that is the result a failed query
	// must keep.
	stop = w.during(t)
	time.Sleep(2 * time.Second)
	stop()
	time.Sleep(5 * time.Second)
	before := make([][]string, len(ddlCases))
	for i := range ddlCases {
		before[i] = postgresCanonical(t, conn, fmt.Sprintf("SELECT region, count(*) AS n, sum(total) AS s, sum(qty) AS units FROM %s GROUP BY region", w.shapes[i].table))
	}
	w.applyDDL(t)
	applied := time.Now()
	// Watch every query that must fail from now on: when it fails, and
	// whether it ever shows another answer as LIVE.
	type watch struct {
		failedAfter time.Duration
		last        queryState
		wrongLive   string
	}
	watches := map[string]*watch{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, d := range deployments {
		for i, c := range ddlCases {
			if !c.fails(d.flink) {
				continue
			}
			wt := &watch{}
			watches[d.name+"/"+c.name] = wt
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Since(applied) < 20*time.Second {
					st, err := d.s.queryState(t, d.ids[i])
					if err == nil {
						mu.Lock()
						wt.last = st
						if st.CaughtUp && !slices.Equal(st.Rows, before[i]) && wt.wrongLive == "" {
							// LIVE is allowed only with the answer from
							// before the change (nothing was applied yet).
							wt.wrongLive = strings.Join(st.Rows, "\n")
						}
						done := st.Status == "FAILED" && st.JobState == "SOURCE_SCHEMA_CHANGED" && st.ResultState == "STALE"
						if done && wt.failedAfter == 0 {
							wt.failedAfter = time.Since(applied)
						}
						mu.Unlock()
						if done {
							return
						}
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
		}
	}
	stop = w.during(t)
	time.Sleep(4 * time.Second)
	stop()
	wg.Wait()

	for _, d := range deployments {
		for i, c := range ddlCases {
			if !c.fails(d.flink) {
				continue
			}
			wt := watches[d.name+"/"+c.name]
			st := wt.last
			switch {
			case wt.failedAfter == 0 || wt.failedAfter > 10*time.Second:
				t.Errorf("%s, %s: not FAILED with a STALE result within 10 s of the DDL (after %v): %+v", d.name, c.name, wt.failedAfter, st)
				continue
			case wt.wrongLive != "":
				t.Errorf("%s, %s: served as LIVE with a result that is not PostgreSQL's:\n%s\nwant (before the DDL):\n%s",
					d.name, c.name, wt.wrongLive, strings.Join(before[i], "\n"))
			}
			for _, word := range append(c.reason, "create the cached query again") {
				if !strings.Contains(strings.ToLower(st.Reason), strings.ToLower(word)) {
					t.Errorf("%s, %s: the reason does not say %q: %s", d.name, c.name, word, st.Reason)
				}
			}
			if !strings.Contains(st.Reason, "t_"+c.name) {
				t.Errorf("%s, %s: the reason does not name the table: %s", d.name, c.name, st.Reason)
			}
			if st.CaughtUp || !slices.Equal(st.Rows, before[i]) {
				t.Errorf("%s, %s: the stale result is not the one from before the DDL (caught up %v):\n%s\nwant:\n%s",
					d.name, c.name, st.CaughtUp, strings.Join(st.Rows, "\n"), strings.Join(before[i], "\n"))
			}
			t.Logf("%s, %s: FAILED after %v: %s", d.name, c.name, wt.failedAfter.Round(time.Millisecond), st.Reason)
		}
	}
	// checkJobStatus lists what the embedded capture saw change.
	for _, d := range deployments {
		if d.name != "embedded" {
			continue
		}
		var last string
		ok := poll(30*time.Second, func() bool {
			res := d.s.postJSON("/checkJobStatus", map[string]string{"connectionString": src, "environmentId": d.env})
			last = res.body
			var status struct {
				SchemaChanges []struct{ Table, Change string } `json:"schemaChanges"`
			}
			if err := json.Unmarshal([]byte(res.body), &status); err != nil {
				return false
			}
			for _, c := range status.SchemaChanges {
				if c.Table == "public.t_rename_read" && c.Change == "column region renamed to area" {
					return true
				}
			}
			return false
		})
		if !ok {
			t.Errorf("checkJobStatus does not show the rename within 30 s: %s", last)
		}
	}
	// The other queries follow the new schema.
	compareDDL(t, conn, w, deployments, func(d *ddlDeployment, c ddlCase) bool { return !c.fails(d.flink) }, "after the DDL")
}

// compareDDL waits until the queries that which selects (all when nil)
// equal PostgreSQL's answers and are running.
func compareDDL(t *testing.T, conn *pgx.Conn, w *ddlWorkload, deployments []*ddlDeployment, which func(*ddlDeployment, ddlCase) bool, when string) {
	t.Helper()
	n := 0
	for _, d := range deployments {
		for i, c := range ddlCases {
			if which != nil && !which(d, c) {
				continue
			}
			want := postgresCanonical(t, conn, fmt.Sprintf("SELECT %s AS region, count(*) AS n, sum(total) AS s, sum(qty) AS units FROM %s GROUP BY 1",
				w.shapes[i].region, w.shapes[i].table))
			if len(want) == 0 {
				t.Fatalf("%s: %s has no rows; the comparison proves nothing", d.name, c.name)
			}
			got, ok := d.s.awaitResult(d.ids[i], want, 2*time.Minute)
			if !ok {
				t.Fatalf("%s, %s %s: not PostgreSQL's answer within 2 min\nwant:\n%s\nlast seen:\n%s\nstatus: %s",
					d.name, c.name, when, strings.Join(want, "\n"), got, d.s.queryStatus(d.ids[i]))
			}
			// RUNNING, or PENDING while the status poller has not looked
			// yet; never FAILED.
			if st := d.s.queryStatus(d.ids[i]); !strings.Contains(st, `"status":"RUNNING"`) && !strings.Contains(st, `"status":"PENDING"`) {
				t.Fatalf("%s, %s %s: equal to PostgreSQL but not running: %s", d.name, c.name, when, st)
			}
			n++
		}
	}
	t.Logf("%s: %d queries equal PostgreSQL's answers", when, n)
}

// createMismatches are Prisma models that do not describe their tables,
// each with what the query's reason must say.
var createMismatches = []struct {
	table, ddl, model string
	reason            []string
}{
	{table: "m_missing_column", ddl: `id integer PRIMARY KEY, region text NOT NULL`,
		model:  "id Int @id\n  region String\n  total Decimal? @db.Decimal(12, 2)",
		reason: []string{"column m_missing_column.total does not exist"}},
	{table: "m_wrong_type", ddl: `id integer PRIMARY KEY, region text NOT NULL, total text`,
		model:  "id Int @id\n  region String\n  total Decimal? @db.Decimal(12, 2)",
		reason: []string{"column m_wrong_type.total is text", "numeric(12,2)"}},
	{table: "m_nullable", ddl: `id integer PRIMARY KEY, region text, total numeric(12,2)`,
		model:  "id Int @id\n  region String\n  total Decimal? @db.Decimal(12, 2)",
		reason: []string{"column m_nullable.region allows NULL", "required"}},
	{table: "m_no_key", ddl: `id integer NOT NULL, region text NOT NULL, total numeric(12,2)`,
		model:  "id Int @id\n  region String\n  total Decimal? @db.Decimal(12, 2)",
		reason: []string{"table m_no_key has no primary key", "(id)"}},
	{table: "m_matches", ddl: `id integer PRIMARY KEY, region text NOT NULL, total numeric(12,2)`,
		model: "id Int @id\n  region String\n  total Decimal? @db.Decimal(12, 2)"},
}

// At createCachedQuery the worker checks the Prisma schema against the
// database, for the tables and columns the query reads: a mismatch fails
// the query with a reason that says what differs, before any job starts.
func TestCreateChecksPrismaSchemaAgainstDatabase(t *testing.T) {
	s := startSystemWith(t, func(*Infra, config.Config, *slog.Logger) []WorkerDeps { return nil })
	s.startEmbeddedWorker()
	src, conn := sourceDatabase(t)
	ctx := context.Background()
	var schema strings.Builder
	schema.WriteString("datasource db {\n  provider = \"postgresql\"\n  url      = env(\"DATABASE_URL\")\n}\n")
	for _, m := range createMismatches {
		if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s (%s); INSERT INTO %[1]s (id, region) VALUES (1, 'eu')`, m.table, m.ddl)); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&schema, "\nmodel %s {\n  %s\n\n  @@map(%q)\n}\n", strings.ToUpper(m.table[:1])+m.table[1:], m.model, m.table)
	}
	env := uniqueEnv("mism")
	s.deleteOnCleanup(src, env)
	for _, m := range createMismatches {
		res := s.postJSON("/createCachedQuery", map[string]string{"connectionString": src, "environmentId": env,
			"schema": schema.String(), "sqlQuery": fmt.Sprintf(`SELECT region, count(*) AS n, sum(total) AS s FROM %s GROUP BY region`, m.table)})
		if res.status != http.StatusCreated {
			t.Fatalf("create over %s: %d %s", m.table, res.status, res.body)
		}
		id := res.json(t)["id"].(string)
		if m.reason == nil {
			if got, ok := s.awaitResult(id, []string{`{"n":"n:1","region":"eu","s":null}`}, time.Minute); !ok {
				t.Fatalf("%s matches its model, but its query did not answer: %s", m.table, got)
			}
			continue
		}
		var st queryState
		waitFor(t, 30*time.Second, m.table+" FAILED", func() bool {
			var err error
			st, err = s.queryState(t, id)
			return err == nil && st.Status == "FAILED"
		})
		for _, word := range append(m.reason, "the Prisma schema does not match the database") {
			if !strings.Contains(st.Reason, word) {
				t.Errorf("%s: the reason does not say %q: %s", m.table, word, st.Reason)
			}
		}
		// Before any job: the engine never started it.
		if st.JobState != "" || st.ResultState != "STARTING" {
			t.Errorf("%s: a job started (job state %q, result %q)", m.table, st.JobState, st.ResultState)
		}
		t.Logf("%s: %s", m.table, st.Reason)
	}
}
