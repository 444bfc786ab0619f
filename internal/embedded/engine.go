package embedded

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/cdcq/cdcq/internal/ivm"
	"github.com/cdcq/cdcq/internal/results"
	"github.com/cdcq/cdcq/internal/sqlplan"
)

// ivmEngine adapts internal/ivm to the runner: records are kept as they
// arrive, and decoded and applied in one batch when the runner asks for
// the changes, so that a group changed many times in a batch yields one
// result change. A large batch (a snapshot being caught up with) is
// decoded by several goroutines, each with decoders of its own; a record
// that cannot be decoded fails the batch before any of it is applied.
type ivmEngine struct {
	plan  *sqlplan.Plan
	q     *ivm.Query
	enc   *ivm.ResultEncoder
	raw   []rawRecord
	batch []ivm.SourceChange
	// helpers are the decoders of the goroutines beyond the first (which
	// uses the query's), per source; made when first needed.
	helpers [][]*ivm.Decoder
	// reserved are the tables Reserve sized the state for.
	reserved map[string]bool
}

type rawRecord struct {
	source     int
	key, value []byte
}

// parallelDecodeMin is the batch size from which decoding is split.
const parallelDecodeMin = 4096

// NewIVMEngine builds the incremental engine for a plan.
func NewIVMEngine(plan *sqlplan.Plan, queryID string) (Engine, error) {
	q, err := ivm.New(plan)
	if err != nil {
		return nil, err
	}
	return &ivmEngine{plan: plan, q: q, enc: q.ResultEncoder(queryID)}, nil
}

// Apply keeps the record for Changes; key and value must stay unchanged
// until then.
func (e *ivmEngine) Apply(source int, key, value []byte) error {
	e.raw = append(e.raw, rawRecord{source: source, key: key, value: value})
	return nil
}

// decode decodes the kept records into batch.
func (e *ivmEngine) decode() error {
	n := len(e.raw)
	if cap(e.batch) < n {
		e.batch = make([]ivm.SourceChange, n)
	}
	e.batch = e.batch[:n]
	workers := min(runtime.GOMAXPROCS(0), 4, max(n/(parallelDecodeMin/2), 1))
	if workers == 1 {
		return e.decodeRange(0, n, e.q.Decode)
	}
	for len(e.helpers) < workers-1 {
		ds := make([]*ivm.Decoder, len(e.plan.Sources))
		for i := range ds {
			d, err := ivm.NewDecoder(e.plan, i)
			if err != nil {
				return err
			}
			ds[i] = d
		}
		e.helpers = append(e.helpers, ds)
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		ds := e.helpers[w-1]
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = e.decodeRange(w*n/workers, (w+1)*n/workers, func(source int, key, value []byte) (ivm.Change, error) {
				if source < 0 || source >= len(ds) {
					return e.q.Decode(source, key, value) // its error
				}
				return ds[source].Decode(key, value)
			})
		}()
	}
	errs[0] = e.decodeRange(0, n/workers, e.q.Decode)
	wg.Wait()
	// The first failing record's error, in record order.
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// decodeRange decodes raw[from:to] into batch[from:to] and returns the
// first error.
func (e *ivmEngine) decodeRange(from, to int, decode func(int, []byte, []byte) (ivm.Change, error)) error {
	for i := from; i < to; i++ {
		r := e.raw[i]
		ch, err := decode(r.source, r.key, r.value)
		if err != nil {
			return err
		}
		if r.key == nil && ch.Op != ivm.OpNone && ch.Op != ivm.OpTruncate {
			// Every record of a table with a primary key has a key: this
			// table lost it.
			src := e.plan.Sources[r.source]
			table := src.Name
			if src.Schema != "public" {
				table = src.Schema + "." + src.Name
			}
			return &ivm.SchemaError{Topic: src.Topic, Table: table,
				Problem: "has no key: the table's primary key was dropped"}
		}
		e.batch[i] = ivm.SourceChange{Source: r.source, Change: ch}
	}
	return nil
}

func (e *ivmEngine) Changes() ([]results.Change, error) {
	err := e.decode()
	clear(e.raw)
	e.raw = e.raw[:0]
	if err != nil {
		clear(e.batch)
		e.batch = e.batch[:0]
		return nil, err
	}
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
