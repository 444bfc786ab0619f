package embedded

import (
	"fmt"

	"github.com/cdcq/cdcq/internal/ivm"
	"github.com/cdcq/cdcq/internal/results"
	"github.com/cdcq/cdcq/internal/sqlplan"
)

// ivmEngine adapts internal/ivm to the runner: records are decoded as they
// arrive and applied in one batch when the runner asks for the changes, so
// that a group changed many times in a batch yields one result change.
type ivmEngine struct {
	plan  *sqlplan.Plan
	q     *ivm.Query
	enc   *ivm.ResultEncoder
	batch []ivm.SourceChange
}

// NewIVMEngine builds the incremental engine for a plan.
func NewIVMEngine(plan *sqlplan.Plan, queryID string) (Engine, error) {
	q, err := ivm.New(plan)
	if err != nil {
		return nil, err
	}
	return &ivmEngine{plan: plan, q: q, enc: q.ResultEncoder(queryID)}, nil
}

func (e *ivmEngine) Apply(source int, key, value []byte) error {
	ch, err := e.q.Decode(source, key, value)
	if err != nil {
		return err
	}
	if key == nil && ch.Op != ivm.OpNone && ch.Op != ivm.OpTruncate {
		// Every record of a table with a primary key has a key: this
		// table lost it.
		src := e.plan.Sources[source]
		table := src.Name
		if src.Schema != "public" {
			table = src.Schema + "." + src.Name
		}
		return &ivm.SchemaError{Topic: src.Topic, Table: table,
			Problem: "has no key: the table's primary key was dropped"}
	}
	e.batch = append(e.batch, ivm.SourceChange{Source: source, Change: ch})
	return nil
}

func (e *ivmEngine) Changes() ([]results.Change, error) {
	res, err := e.q.ApplyBatch(e.batch)
	clear(e.batch)
	e.batch = e.batch[:0]
	out := make([]results.Change, len(res))
	for i, rc := range res {
		out[i] = results.Change{Key: e.enc.EncodeKey(rc), Row: e.enc.EncodeValue(rc)}
	}
	if err != nil {
		return out, fmt.Errorf("apply changes: %w", err)
	}
	return out, nil
}

func (e *ivmEngine) Rows() ([]results.Change, error) {
	if _, err := e.Changes(); err != nil {
		return nil, err
	}
	rows := e.q.Snapshot()
	out := make([]results.Change, len(rows))
	for i, r := range rows {
		rc := ivm.ResultChange(r)
		out[i] = results.Change{Key: e.enc.EncodeKey(rc), Row: e.enc.EncodeValue(rc)}
	}
	return out, nil
}
