package ivm

import (
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/cdcq/cdcq/internal/sqlplan"
)

// Query maintains the result of one plan. It is not safe for concurrent
// use: feed it from one goroutine.
type Query struct {
	plan    *sqlplan.Plan
	sources []*sourceState
	// residual is the part of WHERE that reads several sources (or
	// none), evaluated on joined tuples; nil when there is none.
	residual evalFn
	groupBy  []evalFn
	args     []evalFn // distinct aggregate arguments
	specs    []stateSpec
	aggs     []aggOutput
	having   evalFn
	outputs  []evalFn

	groups     map[string]*group
	groupsPeak int
	// global is the one group of a query without GROUP BY, which exists
	// even when no row does.
	global *group
	dirty  []*group

	decoders []*Decoder

	// skipUnseen makes an update that keeps an unchanged TOAST value of
	// a row the query never saw a no-op instead of an error
	// (SkipUnseenUnavailable); skippedUnseen counts those skipped.
	skipUnseen    bool
	skippedUnseen int64

	// Scratch, reused across changes.
	env         env
	keyBuf      []byte
	oldKeyBuf   []byte
	newRow      srow
	distinctBuf []byte
	bigScratch  big.Int
	probeBufs   [][]byte
	pending     []contribution
	pendingKeys []byte
	pendingVals []Value
}

// group is one group's state.
type group struct {
	key    string // encoded group key (the map key)
	keys   Row    // the group key values
	rows   int64  // joined rows in the group
	states []aggState
	// out is the result row last reported (nil: the group is not in the
	// result).
	out   Row
	dirty bool
}

// contribution is one joined tuple's effect on a group, computed before
// the state changes.
type contribution struct {
	keyStart, keyEnd int
	valStart         int
}

// ResultChange is one change of the result: the row of the group with key
// Key is now Row, or, when Row is nil, the group left the result (a
// tombstone). Key holds the GROUP BY values (empty without GROUP BY); Row
// the output values (Plan.Outputs order).
type ResultChange struct {
	Key Row
	Row Row
}

// ResultRow is one row of the current result.
type ResultRow struct {
	Key Row
	Row Row
}

// SourceChange is a Change of the source Plan.Sources[Source], for
// ApplyBatch.
type SourceChange struct {
	Source int
	Change Change
}

// ChangeError reports a change that could not be applied, and which.
type ChangeError struct {
	// Index is the position of the change in the batch (0 for Apply).
	Index  int
	Source int
	Err    error
}

func (e *ChangeError) Error() string {
	return fmt.Sprintf("ivm: change %d (source %d): %v", e.Index, e.Source, e.Err)
}

func (e *ChangeError) Unwrap() error { return e.Err }

// SkipUnseenUnavailable, while on, skips an update that keeps an
// unchanged TOAST value of a row the query never saw, instead of failing
// on it: the full row cannot be known. That is only right while a new
// snapshot of the source is awaited (records were lost to retention, so
// the first ones read can update rows whose insert is gone): the snapshot
// writes each such row whole afterwards. It returns how many updates were
// skipped so far.
func (q *Query) SkipUnseenUnavailable(on bool) int64 {
	q.skipUnseen = on
	return q.skippedUnseen
}

// New compiles a plan into a query with an empty state. It refuses plans
// the engine cannot maintain exactly as PostgreSQL computes them, with an
// error that says what.
func New(plan *sqlplan.Plan) (*Query, error) {
	if plan == nil || len(plan.Sources) == 0 {
		return nil, errors.New("ivm: the plan has no sources")
	}
	q, err := compileQuery(plan)
	if err != nil {
		return nil, errors.New(plan.WithAliases(err.Error()))
	}
	return q, nil
}

func compileQuery(plan *sqlplan.Plan) (*Query, error) {
	q := &Query{plan: plan, groups: map[string]*group{}}
	colIndex := make([]map[string]int, len(plan.Sources))
	for i := range plan.Sources {
		src := &plan.Sources[i]
		m := make(map[string]int, len(src.Columns))
		for j, c := range src.Columns {
			m[c.Name] = j
		}
		colIndex[i] = m
		st := &sourceState{index: i, src: src, width: len(src.Columns), rows: map[string]*srow{}}
		if len(src.PrimaryKey) == 0 {
			return nil, fmt.Errorf("ivm: source %s has no primary key", src.Alias)
		}
		for _, k := range src.PrimaryKey {
			j, ok := m[k]
			if !ok {
				return nil, fmt.Errorf("ivm: source %s: primary key column %s is not among its columns", src.Alias, k)
			}
			st.pk = append(st.pk, j)
		}
		q.sources = append(q.sources, st)
		d, err := NewDecoder(plan, i)
		if err != nil {
			return nil, err
		}
		q.decoders = append(q.decoders, d)
	}
	rows := &exprCompiler{plan: plan, columns: colIndex}
	groups := &exprCompiler{plan: plan, columns: colIndex, group: true}

	// WHERE: conjuncts of one source are checked when its rows arrive.
	local := make([][]sqlplan.Expr, len(plan.Sources))
	var residual []sqlplan.Expr
	for _, c := range sqlplan.Conjuncts(plan.Filter) {
		if ss := sqlplan.SourcesOf(c); len(ss) == 1 {
			local[ss[0]] = append(local[ss[0]], c)
		} else {
			residual = append(residual, c)
		}
	}
	for i, cs := range local {
		f, err := compileConjunction(rows, cs)
		if err != nil {
			return nil, fmt.Errorf("ivm: WHERE: %w", err)
		}
		q.sources[i].filter = f
	}
	f, err := compileConjunction(rows, residual)
	if err != nil {
		return nil, fmt.Errorf("ivm: WHERE: %w", err)
	}
	q.residual = f

	if err := planJoins(plan, q.sources, colIndex); err != nil {
		return nil, fmt.Errorf("ivm: %w", err)
	}

	for i, g := range plan.GroupBy {
		if !equatable(g.ResultType()) {
			return nil, fmt.Errorf("ivm: GROUP BY %s: the embedded engine cannot group by %s", g, g.ResultType())
		}
		fn, err := rows.compile(g)
		if err != nil {
			return nil, fmt.Errorf("ivm: GROUP BY item %d: %w", i+1, err)
		}
		q.groupBy = append(q.groupBy, fn)
	}
	if err := q.compileAggregates(rows); err != nil {
		return nil, err
	}
	if plan.Having != nil {
		if q.having, err = groups.compile(plan.Having); err != nil {
			return nil, fmt.Errorf("ivm: HAVING: %w", err)
		}
	}
	for _, o := range plan.Outputs {
		if o.Name == QueryIDColumn {
			return nil, fmt.Errorf("ivm: an output column is named %s, which the result topic uses for the query id: rename it with AS", QueryIDColumn)
		}
		if _, err := kindOf(o.Type); err != nil {
			return nil, fmt.Errorf("ivm: output %s: %w", o.Name, err)
		}
		fn, err := groups.compile(o.Expr)
		if err != nil {
			return nil, fmt.Errorf("ivm: output %s: %w", o.Name, err)
		}
		q.outputs = append(q.outputs, fn)
	}

	q.env.rows = make([]*srow, len(plan.Sources))
	q.env.keys = make(Row, len(plan.GroupBy))
	q.env.aggs = make(Row, len(plan.Aggregates))
	q.probeBufs = make([][]byte, len(plan.Sources))
	if len(plan.GroupBy) == 0 {
		q.global = q.newGroup("", nil)
		q.groups[""] = q.global
		q.markDirty(q.global)
	}
	return q, nil
}

// compileConjunction compiles the AND of conds; nil for none.
func compileConjunction(c *exprCompiler, conds []sqlplan.Expr) (evalFn, error) {
	var fns []evalFn
	for _, e := range conds {
		if e.ResultType().Kind != sqlplan.KindBoolean {
			return nil, fmt.Errorf("condition %s is not boolean", e)
		}
		f, err := c.compile(e)
		if err != nil {
			return nil, err
		}
		fns = append(fns, f)
	}
	switch len(fns) {
	case 0:
		return nil, nil
	case 1:
		return fns[0], nil
	}
	// Only true passes, so the first condition that is not true decides.
	return func(en *env) (Value, error) {
		for _, f := range fns {
			v, err := f(en)
			if err != nil || v.IsNull() || !v.bool() {
				return v, err
			}
		}
		return BoolValue(true), nil
	}, nil
}

func (q *Query) compileAggregates(c *exprCompiler) error {
	argSlot := map[string]int{}
	stateOf := map[stateSpec]int{}
	for i, a := range q.plan.Aggregates {
		out := aggOutput{fn: a.Func, state: -1, result: a.Type}
		if a.Func == sqlplan.CountStar {
			q.aggs = append(q.aggs, out)
			continue
		}
		if a.Arg == nil {
			return fmt.Errorf("ivm: aggregate %d (%s) has no argument", i, a.Func)
		}
		t := a.Arg.ResultType()
		out.argType = t
		var kind stateKind
		switch a.Func {
		case sqlplan.Count:
			kind = stCount
		case sqlplan.CountDistinct:
			if !equatable(t) {
				return fmt.Errorf("ivm: count(DISTINCT %s): the embedded engine cannot compare %s values", a.Arg, t)
			}
			kind = stDistinct
		case sqlplan.Sum, sqlplan.Avg:
			switch {
			case t.IsInteger():
				kind = stIntSum
			case t.Kind == sqlplan.KindNumeric && !t.Array:
				kind = stNumSum
			case t.IsFloat():
				kind = stFloatSum
			default:
				return fmt.Errorf("ivm: %s(%s): the embedded engine cannot sum %s values", a.Func, a.Arg, t)
			}
		case sqlplan.Min, sqlplan.Max:
			if !orderable(t) {
				return fmt.Errorf("ivm: %s(%s): the embedded engine cannot order %s values", a.Func, a.Arg, t)
			}
			kind = stOrdered
		default:
			return fmt.Errorf("ivm: aggregate %s is not supported", a.Func)
		}
		sig := a.Arg.String() + " :: " + t.String()
		slot, ok := argSlot[sig]
		if !ok {
			var fn evalFn
			var err error
			if a.Func == sqlplan.Count {
				fn, err = c.compileAny(a.Arg)
			} else {
				fn, err = c.compile(a.Arg)
			}
			if err != nil {
				return fmt.Errorf("ivm: argument of %s: %w", a.Func, err)
			}
			slot = len(q.args)
			argSlot[sig] = slot
			q.args = append(q.args, fn)
		}
		spec := stateSpec{kind: kind, arg: slot}
		if kind == stNumSum && t.Precision != sqlplan.NoPrecision {
			spec.fixedScale = true
		}
		st, ok := stateOf[spec]
		if !ok {
			st = len(q.specs)
			stateOf[spec] = st
			q.specs = append(q.specs, spec)
		}
		out.state = st
		q.aggs = append(q.aggs, out)
	}
	return nil
}

func (q *Query) newGroup(key string, keys Row) *group {
	g := &group{key: key, keys: keys, states: make([]aggState, len(q.specs))}
	for i, s := range q.specs {
		g.states[i] = newState(s)
	}
	return g
}

func (q *Query) markDirty(g *group) {
	if !g.dirty {
		g.dirty = true
		q.dirty = append(q.dirty, g)
	}
}

// Plan returns the plan the query maintains.
func (q *Query) Plan() *sqlplan.Plan { return q.plan }

// Decode reads a Debezium record of plan.Sources[source] with the query's
// decoder (see DecodeChange).
func (q *Query) Decode(source int, key, value []byte) (Change, error) {
	if source < 0 || source >= len(q.decoders) {
		return Change{}, fmt.Errorf("ivm: source %d does not exist", source)
	}
	return q.decoders[source].Decode(key, value)
}

// ApplyRecord decodes a Debezium record of plan.Sources[source] and
// applies it. A query that reads a table twice (a self-join) must be given
// the table's records once per source that reads it.
func (q *Query) ApplyRecord(source int, key, value []byte) ([]ResultChange, error) {
	ch, err := q.Decode(source, key, value)
	if err != nil {
		return nil, &ChangeError{Source: source, Err: err}
	}
	return q.Apply(source, ch)
}

// SourcesReading returns the indexes of the plan's sources that read
// topic (a Source.Topic, "<schema>.<table>"): one, or more for a query
// that joins a table with itself.
func (q *Query) SourcesReading(topic string) []int {
	var out []int
	for i := range q.plan.Sources {
		if q.plan.Sources[i].Topic == topic {
			out = append(out, i)
		}
	}
	return out
}

// ApplyTopicRecord decodes a Debezium record of a captured table (topic is
// its Source.Topic, "<schema>.<table>") and applies it to every source
// that reads the table, returning the net result changes. A record of a
// table the query does not read changes nothing.
func (q *Query) ApplyTopicRecord(topic string, key, value []byte) ([]ResultChange, error) {
	for _, i := range q.SourcesReading(topic) {
		ch, err := q.decoders[i].Decode(key, value)
		if err == nil {
			err = q.apply(i, ch)
		}
		if err != nil {
			out, ferr := q.Flush()
			return out, errors.Join(&ChangeError{Source: i, Err: err}, ferr)
		}
	}
	return q.Flush()
}

// Apply applies one change of plan.Sources[source] and returns the result
// changes it causes. A change that fails (an expression error such as a
// division by zero, a row without a key) changes nothing and is reported
// as a *ChangeError; the state stays consistent with the changes applied.
func (q *Query) Apply(source int, ch Change) ([]ResultChange, error) {
	if err := q.apply(source, ch); err != nil {
		out, ferr := q.Flush()
		return out, errors.Join(&ChangeError{Source: source, Err: err}, ferr)
	}
	return q.Flush()
}

// ApplyBatch applies changes in order and returns the net result changes:
// one per group whose row differs from what was last reported, however
// often the batch changed it. When a change fails, the ones before it stay
// applied, the result changes returned cover them, and the error is a
// *ChangeError naming the change; the ones after it are not applied.
func (q *Query) ApplyBatch(batch []SourceChange) ([]ResultChange, error) {
	for i, c := range batch {
		if err := q.apply(c.Source, c.Change); err != nil {
			out, ferr := q.Flush()
			return out, errors.Join(&ChangeError{Index: i, Source: c.Source, Err: err}, ferr)
		}
	}
	return q.Flush()
}

func (q *Query) apply(source int, ch Change) error {
	if source < 0 || source >= len(q.sources) {
		return fmt.Errorf("source %d does not exist", source)
	}
	s := q.sources[source]
	if ch.Op == OpNone {
		return nil
	}
	if ch.Snapshot != NotSnapshot || s.resetting {
		return q.applySnapshotAware(s, ch)
	}
	return q.applyChange(s, ch)
}

// applySnapshotAware applies a snapshot read, or the first change after
// a new snapshot, noting where snapshots of the source's table begin and
// end (see the package documentation, "Snapshots").
//
// A snapshot is the run of snapshot reads with one source.lsn and txId
// (its position and transaction). One whose lsn is above the last
// snapshot's, or equal with another transaction (Debezium reads the WAL
// write position, which asynchronous commits may leave where it was),
// begins a new snapshot; when the
// source holds rows then (the capture was restarted in the middle of its
// snapshot, or snapshots again), the new snapshot is the whole table as of
// its position, and rows it does not write were deleted meanwhile,
// possibly with no delete on the topic. The source's generation advances,
// and every row the snapshot (or a later change) writes gets it. When the
// table's snapshot ends (its last record, marked last_in_data_collection
// or last, or else the first change that is not a snapshot read), the
// rows of older generations are retracted.
func (q *Query) applySnapshotAware(s *sourceState, ch Change) error {
	if ch.Snapshot == NotSnapshot {
		// The first change after the new snapshot: it has ended. A
		// truncate retracts every row anyway.
		if ch.Op != OpTruncate {
			if err := q.sweep(s); err != nil {
				return err
			}
		}
		s.resetting = false
		return q.applyChange(s, ch)
	}
	if ch.LSN > s.snapLSN || ch.LSN != 0 && ch.LSN == s.snapLSN && ch.TxID != s.snapTx {
		s.snapLSN, s.snapTx = ch.LSN, ch.TxID
		s.resetting = len(s.rows) > 0
		if s.resetting {
			s.gen++
		}
	}
	if err := q.applyChange(s, ch); err != nil {
		return err
	}
	if ch.Snapshot == SnapshotEnd && s.resetting && ch.LSN == s.snapLSN && ch.TxID == s.snapTx {
		if err := q.sweep(s); err != nil {
			return err
		}
		s.resetting = false
	}
	return nil
}

// sweep retracts and forgets the rows of the source that no record wrote
// since its generation last advanced.
func (q *Query) sweep(s *sourceState) error {
	var stale []string
	for k, r := range s.rows {
		if r.gen != s.gen {
			stale = append(stale, k)
		}
	}
	for _, k := range stale {
		r := s.rows[k]
		if err := q.retract(s, r); err != nil {
			return err
		}
		s.removeRow(k, r)
	}
	return nil
}

func (q *Query) applyChange(s *sourceState, ch Change) error {
	switch ch.Op {
	case OpTruncate:
		return q.truncate(s)
	case OpDelete:
		key, err := q.deleteKey(s, ch)
		if err != nil {
			return err
		}
		old := s.rows[string(key)]
		if old == nil {
			return nil // unknown key: already deleted, or never seen
		}
		if err := q.retract(s, old); err != nil {
			return err
		}
		s.removeRow(string(key), old)
		return nil
	case OpInsert, OpUpdate:
		return q.upsert(s, ch)
	}
	return fmt.Errorf("unknown op %d", ch.Op)
}

// rowKey appends the encoded primary key of a full row.
func (s *sourceState) rowKey(dst []byte, r Row) ([]byte, error) {
	for _, i := range s.pk {
		if r[i].IsNull() {
			return dst, fmt.Errorf("%s: primary key column %s is NULL", s.src.Alias, s.src.Columns[i].Name)
		}
		dst = appendKey(dst, r[i])
	}
	return dst, nil
}

// deleteKey returns the encoded primary key a delete names.
func (q *Query) deleteKey(s *sourceState, ch Change) ([]byte, error) {
	if ch.Before != nil {
		if len(ch.Before) != s.width {
			return nil, fmt.Errorf("%s: before image has %d values, the source has %d columns", s.src.Alias, len(ch.Before), s.width)
		}
		if k, err := s.rowKey(q.keyBuf[:0], ch.Before); err == nil {
			q.keyBuf = k
			return k, nil
		}
	}
	if len(ch.Key) != len(s.pk) {
		return nil, fmt.Errorf("%s: a delete needs a before image or the %d primary key values", s.src.Alias, len(s.pk))
	}
	b := q.keyBuf[:0]
	for i, v := range ch.Key {
		if v.IsNull() {
			return nil, fmt.Errorf("%s: primary key column %s is NULL", s.src.Alias, s.src.PrimaryKey[i])
		}
		b = appendKey(b, v)
	}
	q.keyBuf = b
	return b, nil
}

func (q *Query) upsert(s *sourceState, ch Change) error {
	row := ch.After
	if row == nil {
		return fmt.Errorf("%s: %s without an after image", s.src.Alias, ch.Op)
	}
	if len(row) != s.width {
		return fmt.Errorf("%s: after image has %d values, the source has %d columns", s.src.Alias, len(row), s.width)
	}
	nk, err := s.rowKey(q.keyBuf[:0], row)
	q.keyBuf = nk
	if err != nil {
		return err
	}
	current := s.rows[string(nk)] // the row stored under the new key
	var moved *srow               // the row stored under the old key, when the key changes
	var movedKey string
	if ch.Before != nil && len(ch.Before) == s.width {
		if ok, err := s.rowKey(q.oldKeyBuf[:0], ch.Before); err == nil {
			q.oldKeyBuf = ok
			if string(ok) != string(nk) {
				if moved = s.rows[string(ok)]; moved != nil {
					movedKey = string(ok)
				}
			}
		}
	}
	prev := current
	if prev == nil {
		prev = moved
	}
	// Unchanged TOASTed values keep the value the row had.
	for i, v := range row {
		if v.k != kindUnavailable {
			continue
		}
		if prev == nil {
			if q.skipUnseen {
				q.skippedUnseen++
				return nil // nothing changed yet
			}
			return fmt.Errorf("%s: column %s is unavailable (unchanged TOAST value) and the row was never seen", s.src.Alias, s.src.Columns[i].Name)
		}
		row[i] = prev.vals[i]
	}
	if moved == nil && current != nil && identicalRows(current.vals, row) {
		current.gen = s.gen
		return nil // nothing the query reads changed (or a replay)
	}

	// Compute the new row's contributions first: this is where an
	// expression can fail, and nothing has changed yet.
	nr := &q.newRow
	*nr = srow{vals: row, pass: true}
	q.env.rows[s.index] = nr
	if s.filter != nil {
		v, err := s.filter(&q.env)
		if err != nil {
			return err
		}
		nr.pass = !v.IsNull() && v.bool()
	}
	q.resetPending()
	if nr.pass {
		if err := q.enumerate(s, nr, q.collect); err != nil {
			return err
		}
	}
	pass := nr.pass
	*nr = srow{}
	for _, old := range [2]*srow{moved, current} {
		if old == nil {
			continue
		}
		if err := q.retract(s, old); err != nil {
			return err
		}
	}
	q.applyPending(1)
	if moved != nil {
		s.removeRow(movedKey, moved)
	}
	if current != nil {
		s.replaceRow(current, row, pass)
		current.gen = s.gen
	} else {
		s.insertRow(string(nk), &srow{vals: row, pass: pass, gen: s.gen})
	}
	return nil
}

// retract removes the contributions of a stored row.
func (q *Query) retract(s *sourceState, r *srow) error {
	if !r.pass {
		return nil
	}
	return q.enumerate(s, r, q.retractTuple)
}

func (q *Query) truncate(s *sourceState) error {
	for _, r := range s.rows {
		if err := q.retract(s, r); err != nil {
			return err
		}
	}
	s.clear()
	return nil
}

// enumerate calls visit for every joined tuple that includes row r of
// source s, with q.env.rows holding the tuple.
func (q *Query) enumerate(s *sourceState, r *srow, visit func() error) error {
	q.env.rows[s.index] = r
	return q.step(s.steps, 0, visit)
}

func (q *Query) step(steps []joinStep, k int, visit func() error) error {
	if k == len(steps) {
		return visit()
	}
	st := &steps[k]
	buf := q.probeBufs[k][:0]
	for _, p := range st.probe {
		v := q.env.rows[p.source].vals[p.col]
		if v.IsNull() {
			q.probeBufs[k] = buf
			return nil
		}
		if p.conv != nil {
			v = p.conv(v)
		}
		buf = appendKey(buf, v)
	}
	q.probeBufs[k] = buf
	for _, row := range st.index.buckets[string(buf)] {
		q.env.rows[st.target] = row
		if err := q.step(steps, k+1, visit); err != nil {
			return err
		}
	}
	return nil
}

// evalTuple evaluates the residual filter, the group key and the
// aggregate arguments of the tuple in q.env into the pending buffers. It
// returns false when the tuple does not pass the filter.
func (q *Query) evalTuple() (bool, error) {
	if q.residual != nil {
		v, err := q.residual(&q.env)
		if err != nil {
			return false, err
		}
		if v.IsNull() || !v.bool() {
			return false, nil
		}
	}
	c := contribution{keyStart: len(q.pendingKeys), valStart: len(q.pendingVals)}
	for _, g := range q.groupBy {
		v, err := g(&q.env)
		if err != nil {
			return false, err
		}
		q.pendingVals = append(q.pendingVals, v)
		q.pendingKeys = appendKey(q.pendingKeys, v)
	}
	for _, a := range q.args {
		v, err := a(&q.env)
		if err != nil {
			return false, err
		}
		q.pendingVals = append(q.pendingVals, v)
	}
	c.keyEnd = len(q.pendingKeys)
	q.pending = append(q.pending, c)
	return true, nil
}

func (q *Query) resetPending() {
	q.pending = q.pending[:0]
	q.pendingKeys = q.pendingKeys[:0]
	clear(q.pendingVals)
	q.pendingVals = q.pendingVals[:0]
}

// collect records the current tuple's contribution.
func (q *Query) collect() error {
	_, err := q.evalTuple()
	return err
}

// retractTuple removes the current tuple's contribution at once. The
// tuple was evaluated without error when it entered the result, and
// evaluation is deterministic, so this does not fail in practice.
func (q *Query) retractTuple() error {
	mark, keyMark, valMark := len(q.pending), len(q.pendingKeys), len(q.pendingVals)
	ok, err := q.evalTuple()
	if err != nil || !ok {
		return err
	}
	q.applyContribution(q.pending[mark], -1)
	q.pending = q.pending[:mark]
	q.pendingKeys = q.pendingKeys[:keyMark]
	clear(q.pendingVals[valMark:])
	q.pendingVals = q.pendingVals[:valMark]
	return nil
}

func (q *Query) applyPending(sign int64) {
	for _, c := range q.pending {
		q.applyContribution(c, sign)
	}
	q.resetPending()
}

func (q *Query) applyContribution(c contribution, sign int64) {
	key := q.pendingKeys[c.keyStart:c.keyEnd]
	vals := q.pendingVals[c.valStart:]
	g := q.groups[string(key)]
	if g == nil {
		if sign < 0 {
			return // cannot happen: a retracted tuple was added before
		}
		keys := make(Row, len(q.groupBy))
		for i := range keys {
			keys[i] = cloneValue(vals[i])
		}
		g = q.newGroup(string(key), keys)
		q.groups[g.key] = g
		q.groupsPeak = max(q.groupsPeak, len(q.groups))
	}
	g.rows += sign
	args := vals[len(q.groupBy):]
	for i, spec := range q.specs {
		if v := args[spec.arg]; !v.IsNull() {
			g.states[i].add(v, sign, q)
		}
	}
	q.markDirty(g)
}

// Flush returns the result changes not reported yet. Apply and ApplyBatch
// flush by themselves; call Flush after New to get the initial row of a
// query without GROUP BY (count 0 and NULL aggregates over no rows, which
// PostgreSQL returns for an empty table).
//
// When HAVING or an output fails to evaluate for a group (a division by
// zero, say), that group's row is left as it was last reported and the
// error is returned along with the other changes.
func (q *Query) Flush() ([]ResultChange, error) {
	if len(q.dirty) == 0 {
		return nil, nil
	}
	out := make([]ResultChange, 0, len(q.dirty))
	var errs []error
	for i, g := range q.dirty {
		q.dirty[i] = nil
		g.dirty = false
		var row Row
		if g.rows > 0 || g == q.global {
			r, err := q.resultRow(g)
			if err != nil {
				errs = append(errs, fmt.Errorf("ivm: group %s: %w", rowText(g.keys), err))
				continue
			}
			row = r
		} else {
			delete(q.groups, g.key)
		}
		switch {
		case row == nil && g.out != nil:
			out = append(out, ResultChange{Key: g.keys})
		case row != nil && !identicalRows(row, g.out):
			out = append(out, ResultChange{Key: g.keys, Row: row})
		default:
			continue
		}
		g.out = row
	}
	q.dirty = q.dirty[:0]
	q.groups = shrinkMap(q.groups, &q.groupsPeak)
	if len(out) == 0 {
		out = nil
	}
	return out, errors.Join(errs...)
}

// resultRow computes a group's output row, nil when HAVING rejects it.
func (q *Query) resultRow(g *group) (Row, error) {
	for i := range q.aggs {
		v, err := q.aggs[i].value(g)
		if err != nil {
			return nil, err
		}
		q.env.aggs[i] = v
	}
	copy(q.env.keys, g.keys)
	if q.having != nil {
		v, err := q.having(&q.env)
		if err != nil {
			return nil, err
		}
		if v.IsNull() || !v.bool() {
			return nil, nil
		}
	}
	row := make(Row, len(q.outputs))
	for i, o := range q.outputs {
		v, err := o(&q.env)
		if err != nil {
			return nil, err
		}
		row[i] = v
	}
	return row, nil
}

// Snapshot returns the rows of the current result (as last reported), in
// no particular order. The rows are shared with the engine: do not modify
// them.
func (q *Query) Snapshot() []ResultRow {
	out := make([]ResultRow, 0, len(q.groups))
	for _, g := range q.groups {
		if g.out != nil {
			out = append(out, ResultRow{Key: g.keys, Row: g.out})
		}
	}
	return out
}

// Rows returns the current result sorted by group key (NULLs last), for
// tests and inspection.
func (q *Query) Rows() []ResultRow {
	out := q.Snapshot()
	slices.SortFunc(out, func(a, b ResultRow) int {
		for i := range a.Key {
			if c := compareNullsLast(a.Key[i], b.Key[i]); c != 0 {
				return c
			}
		}
		return 0
	})
	return out
}

// Len returns the number of rows stored for plan.Sources[source].
func (q *Query) Len(source int) int { return len(q.sources[source].rows) }

// Groups returns the number of groups the engine keeps (including groups
// HAVING leaves out of the result).
func (q *Query) Groups() int { return len(q.groups) }
